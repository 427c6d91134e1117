"""The embedded stack runs the event-driven paths too, as EventBridge and SQS do when deployed: an object in
the S3 inbox and a "Video Generation Requested" event start jobs, and a terminal event reaches the webhook
function through the webhook queue."""

from __future__ import annotations

import json
import uuid
from typing import Any

from functions.common.job_start import start_job
from functions.common.video_request import parse_video_request
from tests.api.conftest import OWNER_A, ApiStack, wait_for

UNRESOLVABLE_CALLBACK = "https://hooks.videogen.invalid/jobs"
"""`.invalid` never resolves (RFC 2606): nothing can leave this machine whatever the resolver does."""


def job_with_prompt(api: ApiStack, prompt: str, *, status: str = "completed") -> dict[str, Any] | None:
    return next((j for j in api.job_items() if j["request"]["prompt"] == prompt and j["status"] == status), None)


def test_a_request_dropped_in_the_inbox_becomes_a_completed_job(api: ApiStack) -> None:
    # Given a request object in an owner's inbox folder
    prompt = f"A kite from the inbox {uuid.uuid4()}"
    body = json.dumps({"model": "veo3-fast", "prompt": prompt}).encode()
    api.stack.client("s3").put_object(Bucket=api.stack.resources.bucket, Key=f"inbox/{OWNER_A}/kite.json", Body=body)

    # When the stack runs, Then S3 -> EventBridge -> the intake started a job for that owner, and it completed
    job = wait_for(lambda: job_with_prompt(api, prompt), timeout=30, what="the inbox job to complete")
    assert job["owner"] == OWNER_A
    assert api.s3_object(f"s3://{job['s3_bucket']}/{job['s3_key']}")


def test_a_requested_event_on_the_bus_becomes_a_completed_job(api: ApiStack) -> None:
    # Given a "Video Generation Requested" event from the user's own application
    prompt = f"A lighthouse requested by event {uuid.uuid4()}"
    detail = {"model": "veo3-fast", "prompt": prompt, "owner": OWNER_A}
    api.stack.client("events").put_events(
        Entries=[
            {
                "Source": "my.cms",
                "DetailType": "Video Generation Requested",
                "EventBusName": api.stack.resources.bus,
                "Detail": json.dumps(detail),
            }
        ]
    )
    # Then the job ran to completion for the owner the event named
    job = wait_for(lambda: job_with_prompt(api, prompt), timeout=30, what="the requested job to complete")
    assert job["owner"] == OWNER_A


def test_a_terminal_event_reaches_the_webhook_function_which_checks_the_url_again(api: ApiStack) -> None:
    # Given a job whose callback host resolved to a public address when it was requested
    prompt = f"A kite with a webhook {uuid.uuid4()}"
    request = parse_video_request(
        {"model": "veo3-fast", "prompt": prompt, "callback_url": UNRESOLVABLE_CALLBACK},
        resolve=lambda host: ["93.184.216.34"],
    )
    record = start_job(
        request,
        jobs=api.stack.jobs,
        sfn=api.stack.client("stepfunctions"),
        state_machine_arn=api.stack.resources.state_machine_arn,
        owner=OWNER_A,
    )

    # When the job completes, Then its event went bus -> webhook queue -> webhook function, which resolved the
    # host again at delivery (DNS may change), found nothing, and recorded the attempt to retry later
    def attempted() -> dict[str, Any] | None:
        job = next((j for j in api.job_items() if j["job_id"] == record.job_id), None)
        return job if job is not None and job.get("webhook_attempts") else None

    job = wait_for(attempted, timeout=30, what="a webhook delivery attempt")
    assert job["status"] == "completed", (job.get("error_code"), job.get("error_message"))
    assert job["webhook_state"] == "retrying"
    assert "does not resolve" in job["webhook_attempts"][0]["error"]
    # And the event stays on the queue for the retry (the handler pushed its visibility out by the backoff)
    sqs = api.stack.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=api.stack.resources.webhook_queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) >= 1
