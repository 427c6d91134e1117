"""Every product metric the dashboard reads is emitted by the jobs themselves, once per job where it counts jobs."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from functions.common.metrics import METRICS
from tests.workflow.harness import WorkflowHarness
from tests.workflow.outcomes import assert_completed, assert_failed


def emitted(text: str) -> dict[str, list[float]]:
    """Every value of every metric in the EMF records printed on stdout."""
    values: dict[str, list[float]] = defaultdict(list)
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[metric["Name"]] += record[metric["Name"]]
    return values


def test_a_completed_and_a_failed_job_emit_every_metric_the_dashboard_reads(
    workflow: WorkflowHarness, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    capfd.readouterr()
    # Given a job that completes and one whose download is not a video (Store gives up)
    completed = workflow.run({"model": "veo3-fast", "prompt": "A paper kite over a wheat field"})
    failed = workflow.run({"model": "veo3-fast", "prompt": "A paper kite [sim:wrong-type]"})
    assert_completed(workflow, completed)
    assert_failed(workflow, failed, "output_invalid")

    # When the metrics they printed are read as CloudWatch would
    values = emitted(capfd.readouterr().out)

    # Then each job was counted once, by its outcome, and the completed one's figures are its record's
    assert (values["JobsCreated"], values["JobsCompleted"], values["JobsFailed"]) == ([1, 1], [1], [1])
    assert values["StoredBytes"] == [completed.record.bytes]
    assert values["CostUsd"] == [completed.record.cost_usd]
    assert len(values["JobDuration"]) == 2
    assert len(values["ProviderDuration"]) == 2
    assert values["StoreFailures"] == [1]
    assert all(v >= 0 for name in ("JobDuration", "ProviderDuration", "StoreDuration") for v in values[name])
    # And every metric but the cancellations (tests/api covers DELETE) was among them
    assert set(METRICS) - set(values) == {"JobsCancelled"}
