from __future__ import annotations

import hashlib

import boto3

from tests.workflow.harness import WorkflowHarness


def test_veo_text_job_is_stored_and_announced_once(workflow: WorkflowHarness) -> None:
    # Given a text-to-video request for veo3-fast
    # When it runs through the real state machine
    run = workflow.run({"model": "veo3-fast", "prompt": "A paper kite drifting above a wheat field"})
    # Then the execution succeeds, the job is completed and the video in S3 is what the simulator served
    assert run.execution_status == "SUCCEEDED"
    assert run.record.status == "completed", run.record.error_message
    task_id = run.record.attempts[0].task["task_id"]  # type: ignore[index]
    assert run.record.s3_bucket
    assert run.record.s3_key
    body = boto3.client("s3").get_object(Bucket=run.record.s3_bucket, Key=run.record.s3_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == run.record.sha256
    assert body == workflow.simulator.video_bytes_for(task_id)
    assert [e["detail-type"] for e in run.events] == ["Video Generation Completed"]
