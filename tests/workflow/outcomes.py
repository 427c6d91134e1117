"""What every finished job must look like: the record, the S3 object and exactly one event."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
from jsonschema import Draft202012Validator

from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED
from tests.workflow.harness import JobRun, WorkflowHarness

EVENT_SCHEMAS = {
    detail_type: Draft202012Validator(
        json.loads((Path(__file__).resolve().parents[2] / "docs" / "events" / name).read_text())
    )
    for detail_type, name in (
        (COMPLETED, "video-generation-completed.json"),
        (FAILED, "video-generation-failed.json"),
    )
}
"""The published schemas (docs/events/) that subscribers code against: every event a test sees must match."""


def assert_completed(workflow: WorkflowHarness, run: JobRun, *, attempt: int = 0) -> bytes:
    """Completed job: the record, the S3 video (the bytes the simulator served for the attempt's task), the
    manifest and exactly one Completed event. Returns the stored video."""
    record = run.record
    assert run.execution_status == "SUCCEEDED", run.describe()
    assert record.status == "completed", run.describe()
    assert record.error_code is None, run.describe()
    assert record.progress == 100
    assert len(record.attempts) == attempt + 1, run.describe()
    task_id = run.task_id(attempt)

    body = workflow.stored_video(record)
    served = workflow.simulator.video_bytes_for(task_id)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(served).hexdigest() == record.sha256
    assert record.bytes == len(served)
    assert record.s3_bucket == workflow.resources.bucket
    assert record.s3_key == workflow.video_key(run.job_id)
    assert record.content_type == "video/mp4"
    assert body[4:8] == b"ftyp"

    assert record.manifest_key is not None
    manifest = json.loads(
        boto3.client("s3").get_object(Bucket=workflow.resources.bucket, Key=record.manifest_key)["Body"].read()
    )
    assert manifest["provider_task_id"] == task_id
    assert manifest["video"]["sha256"] == record.sha256

    detail = only_event(run, COMPLETED)
    assert detail["status"] == "completed"
    assert detail["model"] == record.model
    assert detail["attempts"] == [a.model for a in record.attempts]
    assert detail["s3_uri"] == f"s3://{record.s3_bucket}/{record.s3_key}"
    assert detail["sha256"] == record.sha256
    assert detail["bytes"] == record.bytes
    assert detail["error"] is None
    return body


def assert_failed(workflow: WorkflowHarness, run: JobRun, code: str) -> dict[str, Any]:
    """Failed job: the record says ``code``, nothing at the video key, exactly one Failed event with ``code``.
    Returns the event's detail."""
    record = run.record
    assert run.execution_status == "SUCCEEDED", run.describe()  # every path ends in Finalize, which succeeds
    assert record.status == "failed", run.describe()
    assert record.error_code == code, run.describe()
    assert record.error_message, run.describe()
    assert record.finished_at is not None
    assert record.s3_key is None
    assert not workflow.object_exists(workflow.video_key(run.job_id))
    detail = only_event(run, FAILED)
    assert detail["status"] == "failed"
    assert detail["error"] == {"code": code, "message": record.error_message}
    assert detail["s3_uri"] is None
    return detail


def only_event(run: JobRun, detail_type: str) -> dict[str, Any]:
    assert [e["detail-type"] for e in run.events] == [detail_type], run.describe()
    event = run.events[0]
    assert event["source"] == EVENT_SOURCE
    assert event["detail"]["job_id"] == run.job_id
    detail: dict[str, Any] = event["detail"]
    assert detail["event_id"] == run.record.event_id
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in EVENT_SCHEMAS[detail_type].iter_errors(event)
    ]
    assert not problems, f"the {detail_type} event does not match docs/events/: {problems}"
    return detail
