"""AWS throttling our own calls (DynamoDB, S3, EventBridge) delays a job; it never fails it."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from functions.common.jobs import JobRecord, JobRepository, JobStatus
from tests.fixtures.images import png_bytes
from tests.workflow.harness import ShiftedClock, WorkflowHarness
from tests.workflow.outcomes import assert_completed


def throttled(operation: str) -> ClientError:
    response: Any = {
        "Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the allowed throughput."},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return ClientError(response, operation)


class FirstSubmittingWriteThrottled(JobRepository):
    """DynamoDB throttles the write that moves the job to submitting, once."""

    throttled = False

    def transition(self, job_id: str, to: JobStatus, **changes: Any) -> JobRecord:
        if to is JobStatus.SUBMITTING and not self.throttled:
            self.throttled = True
            raise throttled("UpdateItem")
        return super().transition(job_id, to, **changes)


class MarkEmittedThrottled(JobRepository):
    """DynamoDB throttles the write that marks the event emitted (after EventBridge took it), once."""

    throttled = False

    def mark_event_emitted(self, job_id: str) -> None:
        if not self.throttled:
            self.throttled = True
            raise throttled("UpdateItem")
        super().mark_event_emitted(job_id)


def test_a_throttled_job_record_write_is_retried_and_the_job_completes(
    workflow: WorkflowHarness, sfn_retry_waits: list[float]
) -> None:
    # Given DynamoDB throttles Submit's first write of the job record
    table = boto3.resource("dynamodb").Table(workflow.resources.table)
    workflow.use_dependencies(jobs=FirstSubmittingWriteThrottled(table))
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A tram in the rain"})
    # Then Submit failed once as TransientAwsError, Step Functions retried it, and the job completed
    assert_completed(workflow, run)
    assert [c.error_type for c in workflow.registry.calls("videogen-submit")] == ["TransientAwsError", None]
    assert len(sfn_retry_waits) == 1
    assert len(workflow.simulator.creates()) == 1


class FirstImageReadThrottled:
    """S3 slows down the first read of an uploaded input image (HTTP 503 SlowDown); everything else passes."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.throttled = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)

    def get_object(self, **kwargs: Any) -> Any:
        if not self.throttled and str(kwargs.get("Key", "")).startswith("inputs/"):
            self.throttled = True
            response: Any = {
                "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                "ResponseMetadata": {"HTTPStatusCode": 503},
            }
            raise ClientError(response, "GetObject")
        return self.s3.get_object(**kwargs)


def test_a_throttled_image_read_before_the_create_is_retried_not_taken_for_an_unknown_create(
    workflow: WorkflowHarness, sfn_retry_waits: list[float]
) -> None:
    # Given a Runway image-to-video job (a dialect that cannot reconcile a lost create) whose uploaded image S3
    # refuses to serve once (SlowDown)
    workflow.use_dependencies(s3=FirstImageReadThrottled(boto3.client("s3")))
    image = workflow.upload_image(png_bytes(640, 384, (90, 160, 60)))
    # When the job runs
    run = workflow.run({"model": "gen3a_turbo", "prompt": "A lantern on a jetty", "images": [image]})
    # Then Submit was retried and created the task once: no create had been sent, so none was in doubt
    assert_completed(workflow, run)
    assert [c.error_type for c in workflow.registry.calls("videogen-submit")] == ["TransientAwsError", None]
    assert len(workflow.simulator.creates()) == 1


def test_a_throttled_event_mark_after_the_event_went_out_does_not_fail_the_execution(
    workflow: WorkflowHarness, sfn_retry_waits: list[float]
) -> None:
    # Given DynamoDB throttles the write marking the terminal event emitted, once, after EventBridge took the
    # event; and a clock that moves past the emission's 60 s lease before each retried Finalize
    clock = ShiftedClock()
    table = boto3.resource("dynamodb").Table(workflow.resources.table)
    workflow.use_dependencies(jobs=MarkEmittedThrottled(table, clock=clock), clock=clock)
    workflow.intercept("finalize", before=lambda event, calls: clock.advance(61) if calls > 1 else None)
    # When the job runs
    job_id = workflow.start({"model": "veo3-fast", "prompt": "A tram in the snow"})
    status = workflow.wait(job_id)
    # Then Finalize was retried instead of failing the execution, and the event is marked emitted
    assert status == "SUCCEEDED", "\n".join(workflow.history(job_id))
    record = workflow.jobs.require(job_id)
    assert record.status is JobStatus.COMPLETED
    assert record.event_emitted_at is not None
    assert [c.error_type for c in workflow.registry.calls("videogen-finalize")] == ["TransientAwsError", None]
    # And the event may have gone out again, always under the same id, so consumers de-duplicate it
    events = workflow.events_for(job_id)
    assert {event["detail"]["event_id"] for event in events} == {record.event_id}
