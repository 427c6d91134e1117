"""The product metrics as CloudWatch receives them: one EMF record per emission, in the dashboard's namespace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.common.metrics import METRICS, METRICS_DIMENSIONS, METRICS_NAMESPACE, emit_metrics


def emf_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_an_emission_is_one_emf_record_with_the_dashboards_namespace_dimensions_and_units(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # When two product metrics are emitted together
    emit_metrics({"StoreDuration": 1.5, "StoredBytes": 8418})

    # Then stdout holds one EMF record that CloudWatch turns into exactly the metrics the dashboard reads
    (record,) = emf_records(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert directive["Dimensions"] == [list(METRICS_DIMENSIONS)]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {"StoreDuration": "Seconds", "StoredBytes": "Bytes"}
    assert (record["StoreDuration"], record["StoredBytes"], record["service"]) == ([1.5], [8418], "videogen")


def test_disabled_metrics_print_nothing_and_leave_nothing_for_the_next_emission(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given metrics disabled (the local stack, whose stdout is the CLI's)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    emit_metrics({"JobsFailed": 1})
    assert emf_records(capsys.readouterr().out) == []

    # When metrics are enabled again and another one is emitted
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    emit_metrics({"JobsCreated": 1})

    # Then only that one is in the record: Powertools' process-wide set did not keep the disabled one
    (record,) = emf_records(capsys.readouterr().out)
    assert [m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["JobsCreated"]


def test_a_metric_the_dashboard_does_not_know_is_refused() -> None:
    with pytest.raises(KeyError, match="JobsExploded"):
        emit_metrics({"JobsExploded": 1})
    assert "JobsExploded" not in METRICS
