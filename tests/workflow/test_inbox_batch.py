"""A batch dropped into the S3 inbox (inbox/**/*.jsonl): one job per line, a results file, one batch event."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from functions.common.batches import batch_key, line_job_id
from functions.common.cancel import cancel_job
from functions.common.events import BATCH_COMPLETED, COMPLETED, FAILED
from functions.common.workflow import WorkflowDeps
from tests.workflow.harness import WorkflowHarness
from tests.workflow.inbox import Inbox

BAD_LINES = {
    4: "not valid JSON",
    9: "unknown model",
    15: "seconds",
}


def batch_lines() -> list[str]:
    lines = []
    for number in range(1, 21):
        request: dict[str, Any] = {"model": "veo3-fast", "prompt": f"Shot {number}: a kite over a field"}
        if number == 4:
            lines.append('{"model": "veo3-fast", "prompt": "broken"')  # cut short
            continue
        if number == 9:
            request["model"] = "veo-9000"
        if number == 15:
            request["seconds"] = 7
        request["metadata"] = {"line": str(number)}
        lines.append(json.dumps(request))
    return lines


def results_of(inbox: Inbox, detail: dict[str, Any]) -> list[dict[str, Any]]:
    bucket, key = detail["results_uri"].removeprefix("s3://").split("/", 1)
    assert bucket == inbox.bucket
    return [json.loads(line) for line in inbox.read(key).decode().splitlines()]


def test_a_batch_of_twenty_with_three_bad_lines_runs_seventeen_jobs_and_reports_once(
    workflow: WorkflowHarness,
) -> None:
    inbox = Inbox(workflow)
    # Given a 20-line JSONL batch in acme's inbox, three of whose lines are bad
    inbox.put("inbox/acme/shots.jsonl", "\n".join(batch_lines()) + "\n", content_type="application/x-ndjson")
    # When its Object Created event reaches the intake
    delivery, _ = inbox.deliver_for("inbox/acme/shots.jsonl")
    assert delivery.result["outcome"] == "batch_started", delivery.result
    batch_id = delivery.result["batch_id"]
    # Then the batch execution succeeds, and exactly one batch event arrives once every job has ended
    assert inbox.wait_batch(batch_id) == "SUCCEEDED"
    batch = inbox.wait_for_event(BATCH_COMPLETED)
    assert {k: batch[k] for k in ("batch_id", "owner", "total", "completed", "failed", "rejected")} == {
        "batch_id": batch_id,
        "owner": "acme",
        "total": 20,
        "completed": 17,
        "failed": 0,
        "rejected": 3,
    }
    assert batch["source"] == {"bucket": inbox.bucket, "key": "inbox/acme/shots.jsonl"}
    assert batch["results_uri"] == f"s3://{inbox.bucket}/batches/{batch_id}/results.jsonl"

    # And 17 normal jobs ran, each with its own record, execution and event, the batch id and line attached
    jobs = {record.batch_line or 0: record for record in inbox.job_records()}
    good = [n for n in range(1, 21) if n not in BAD_LINES]
    assert sorted(jobs) == good
    for number, record in jobs.items():
        assert record.job_id == line_job_id(batch_id, number)
        assert record.batch_id == batch_id
        assert record.owner == "acme"
        assert record.status == "completed", record.error_message
        assert record.request["metadata"] == {"line": str(number)}
        assert workflow.wait(record.job_id) == "SUCCEEDED"
    completed = inbox.details(COMPLETED)
    assert sorted(d["source"]["line"] for d in completed) == good
    assert {d["source"]["batch_id"] for d in completed} == {batch_id}
    assert len(workflow.simulator.creates()) == 17

    # And the results file has one line per input line, in order: the S3 URI or the reason
    results = results_of(inbox, batch)
    assert [r["line"] for r in results] == list(range(1, 21))
    for result in results:
        number = result["line"]
        if number in BAD_LINES:
            assert result["job_id"] is None
            assert result["status"] == "rejected"
            assert result["error"]["code"] == "invalid_request"
            assert BAD_LINES[number] in result["error"]["message"], result
            assert "param" in result["error"]
            assert "s3_uri" not in result
        else:
            assert result == {
                "line": number,
                "job_id": jobs[number].job_id,
                "status": "completed",
                "s3_uri": jobs[number].s3_uri,
            }
    assert next(r for r in results if r["line"] == 15)["error"]["param"] == "seconds"

    # And each bad line was reported as a rejected request, with its line number
    rejected = inbox.details(FAILED)
    assert sorted(d["source"]["line"] for d in rejected) == sorted(BAD_LINES)
    assert all(d["job_id"] is None and d["source"]["batch_id"] == batch_id for d in rejected)

    # And, a moment later, still exactly one batch event; the lines index is gone, the results stay
    assert len(inbox.details(BATCH_COMPLETED)) == 1
    assert inbox.keys(f"batches/{batch_id}/") == [f"batches/{batch_id}/results.jsonl"]


def test_a_redelivered_batch_event_starts_nothing_new(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    inbox.put("inbox/twice.jsonl", json.dumps({"model": "veo3-fast", "prompt": "One line"}) + "\n")
    first, _ = inbox.deliver_for("inbox/twice.jsonl")
    batch_id = first.result["batch_id"]
    assert inbox.wait_batch(batch_id) == "SUCCEEDED"
    detail = inbox.wait_for_event(BATCH_COMPLETED)
    assert detail["owner"] == "inbox"
    # When the same event arrives again
    again = inbox.redeliver(first.event)
    # Then the batch's execution name refuses it: no second batch, no second job, no second event
    assert again == {"outcome": "duplicate", "batch_id": batch_id}
    assert len(inbox.job_records()) == 1
    assert len(inbox.details(BATCH_COMPLETED)) == 1


def test_a_line_whose_step_gives_up_is_rejected_by_seal_and_the_batch_still_completes(
    workflow: WorkflowHarness,
) -> None:
    inbox = Inbox(workflow)
    # Given a StartLine that fails on line 2 with an error no Retry covers
    registry = workflow.registry
    original = registry.handlers["videogen-batch-line"]

    def flaky(event: dict[str, Any], context: Any) -> Any:
        if event["line"] == 2:
            raise RuntimeError("the line's Lambda crashed")
        return original(event, context)

    registry.handlers["videogen-batch-line"] = flaky
    lines = [json.dumps({"model": "veo3-fast", "prompt": f"Line {n}"}) for n in (1, 2, 3)]
    inbox.put("inbox/ops/three.jsonl", "\n".join(lines))  # no final newline
    delivery, _ = inbox.deliver_for("inbox/ops/three.jsonl")
    batch_id = delivery.result["batch_id"]
    # When the batch runs
    assert inbox.wait_batch(batch_id) == "SUCCEEDED"
    batch = inbox.wait_for_event(BATCH_COMPLETED)
    # Then line 2 is rejected as an internal error (nothing was started for it), the others completed
    assert (batch["total"], batch["completed"], batch["rejected"]) == (3, 2, 1)
    results = results_of(inbox, batch)
    assert [r["status"] for r in results] == ["completed", "rejected", "completed"]
    assert results[1]["error"]["code"] == "internal_error"
    assert "could not be started" in results[1]["error"]["message"]
    assert workflow.jobs.get(line_job_id(batch_id, 2)) is None


def test_a_cancelled_batch_job_is_accounted_and_reported_as_cancelled(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given a batch whose second job would stay queued at the provider
    lines = [{"model": "veo3-fast", "prompt": "Quick"}, {"model": "veo3-fast", "prompt": "Slow [sim:stuck]"}]
    inbox.put("inbox/ops/two.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    delivery, _ = inbox.deliver_for("inbox/ops/two.jsonl")
    batch_id = delivery.result["batch_id"]
    slow = line_job_id(batch_id, 2)
    deadline = time.monotonic() + 20
    while (record := workflow.jobs.get(slow)) is None or record.status.value != "in_progress":
        assert time.monotonic() < deadline, "the slow job never started"
        time.sleep(0.05)
    # When it is cancelled (DELETE /v1/videos/{id}, Ctrl-C)
    cancel_job(
        slow,
        deps=WorkflowDeps.from_environment(),
        sfn=boto3.client("stepfunctions"),
        state_machine_arn=workflow.resources.state_machine_arn,
    )
    # Then the batch completes once, its line cancelled (counted as failed)
    assert inbox.wait_batch(batch_id) == "SUCCEEDED"
    batch = inbox.wait_for_event(BATCH_COMPLETED)
    assert (batch["total"], batch["completed"], batch["failed"], batch["rejected"]) == (2, 1, 1, 0)
    results = results_of(inbox, batch)
    assert [r["status"] for r in results] == ["completed", "cancelled"]
    assert results[1]["error"]["code"] == "cancelled"
    assert len(inbox.details(BATCH_COMPLETED)) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\n  \n\n", "holds no requests"),
        (b"", "holds no requests"),
    ],
)
def test_a_batch_with_no_requests_is_rejected_as_a_whole(workflow: WorkflowHarness, body: bytes, reason: str) -> None:
    inbox = Inbox(workflow)
    inbox.put("inbox/empty.jsonl", body)
    delivery, _ = inbox.deliver_for("inbox/empty.jsonl")
    assert inbox.wait_batch(delivery.result["batch_id"]) == "SUCCEEDED"
    report = json.loads(inbox.read("inbox/empty.error.json"))
    assert reason in report["error"]["message"]
    (detail,) = inbox.details(FAILED)
    assert detail["source"]["key"] == "inbox/empty.jsonl"
    assert inbox.details(BATCH_COMPLETED) == []
    table = boto3.resource("dynamodb").Table(workflow.resources.table)
    assert "Item" not in table.get_item(Key={"job_id": batch_key(delivery.result["batch_id"])})
