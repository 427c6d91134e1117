"""One request dropped into the S3 inbox (inbox/**/*.json): the job it starts, or the error object it earns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.common.events import COMPLETED, FAILED
from functions.intake import handler as intake_handler
from functions.intake.logic import inbox_job_id
from tests.fixtures.images import png_bytes
from tests.workflow.harness import WorkflowHarness
from tests.workflow.inbox import Inbox


def test_a_request_object_starts_a_job_owned_by_its_folder(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given a request in alice's inbox folder
    request = {"model": "veo3-fast", "prompt": "A paper kite above a wheat field", "metadata": {"ref": "k-1"}}
    etag = inbox.put("inbox/alice/kite.json", request)
    # When S3's Object Created event reaches the intake
    delivery, others = inbox.deliver_for("inbox/alice/kite.json")
    assert others == []
    # Then it started one job, named after the object's version, owned by alice
    assert delivery.result["outcome"] == "started"
    job_id = delivery.result["job_id"]
    assert job_id == inbox_job_id(inbox.bucket, "inbox/alice/kite.json", etag)
    record = inbox.run_job(job_id)
    assert record.status == "completed", record.error_message
    assert record.owner == "alice"
    assert record.batch_id is None
    assert record.request["prompt"] == request["prompt"]
    assert inbox.read(f"videos/{job_id}.mp4")[4:8] == b"ftyp"
    # And its one event is the usual Completed event (no source: not a batch job, not rejected)
    (detail,) = inbox.details(COMPLETED)
    assert detail["job_id"] == job_id
    assert detail["metadata"] == {"ref": "k-1"}
    assert "source" not in detail
    assert not inbox.keys("inbox/alice/kite.error")


def test_an_invalid_request_gets_an_error_object_and_a_failed_event_and_nothing_is_submitted(
    workflow: WorkflowHarness,
) -> None:
    inbox = Inbox(workflow)
    # Given a request veo3-fast cannot take (7 seconds)
    inbox.put("inbox/alice/bad.json", {"model": "veo3-fast", "prompt": "A kite", "seconds": 7, "metadata": {"r": "9"}})
    # When its event reaches the intake
    delivery, others = inbox.deliver_for("inbox/alice/bad.json")
    # Then it is rejected: the error object sits next to it, saying which field and what is allowed
    assert delivery.result["outcome"] == "rejected"
    report = json.loads(inbox.read("inbox/alice/bad.error.json"))
    assert report["source"] == {"bucket": inbox.bucket, "key": "inbox/alice/bad.json"}
    assert report["error"]["code"] == "invalid_request"
    assert report["error"]["param"] == "seconds"
    assert "allowed" in report["error"]["message"]
    # And one Failed event says what was rejected, with no job
    (detail,) = inbox.details(FAILED)
    assert detail["job_id"] is None
    assert detail["status"] == "failed"
    assert detail["model"] == "veo3-fast"
    assert detail["error"] == report["error"]
    assert detail["source"] == {"bucket": inbox.bucket, "key": "inbox/alice/bad.json"}
    assert detail["metadata"] == {"r": "9"}
    # And nothing was created or sent: no job record, no execution, no request at the simulator
    assert inbox.job_records() == []
    assert workflow.simulator.received == []
    # And the error object's own Object Created event is ignored (no loop)
    assert [d.result for d in others] == [{"outcome": "ignored", "reason": "an error report"}]
    assert inbox.details(FAILED) == [detail]


def test_a_redelivered_invalid_request_is_not_reported_twice(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    inbox.put("inbox/bad.json", b"{not json")
    first, _ = inbox.deliver_for("inbox/bad.json")
    assert first.result["outcome"] == "rejected"
    assert "not valid JSON" in json.loads(inbox.read("inbox/bad.error.json"))["error"]["message"]
    # When EventBridge delivers the same event again
    again = inbox.redeliver(first.event)
    # Then the intake sees its report already written, and emits nothing more
    assert again == {"outcome": "rejected", "reason": "already reported"}
    assert len(inbox.details(FAILED)) == 1


def test_an_image_uploaded_alongside_is_validated_and_sent(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given an image uploaded to bob's inbox, then a request referring to it by key
    image = png_bytes(640, 360, (30, 120, 200))
    inbox.put("inbox/bob/frame.png", image, content_type="image/png")
    request = {
        "model": "veo3-fast",
        "prompt": "The scene slowly comes alive",
        "size": "1280x720",
        "input_reference": {"s3_key": "inbox/bob/frame.png"},
    }
    inbox.put("inbox/bob/frame.json", request)
    # When both events reach the intake (the image's is ignored)
    request_event, (image_event,) = inbox.deliver_for("inbox/bob/frame.json")
    assert image_event.result["outcome"] == "ignored"
    assert request_event.result["outcome"] == "started", request_event.result
    # Then the job ran image-to-video with those bytes, copied under inputs/ like the API's uploads
    job_id = request_event.result["job_id"]
    record = inbox.run_job(job_id)
    assert record.status == "completed", record.error_message
    (stored,) = record.request["images"]
    assert stored["s3_key"] == f"inputs/{job_id}/0.png"
    assert inbox.read(stored["s3_key"]) == image
    (create,) = workflow.simulator.creates()
    assert [(name, data) for name, _, _, data in create.files] == [("input_reference", image)]


def test_an_image_outside_the_owners_inbox_folder_is_refused(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given carol's request pointing at an image in bob's folder
    inbox.put("inbox/bob/private.png", png_bytes(640, 360), content_type="image/png")
    inbox.put(
        "inbox/carol/take.json",
        {"model": "veo3-fast", "prompt": "x", "input_reference": {"s3_key": "inbox/bob/private.png"}},
    )
    # When it reaches the intake
    delivery, _ = inbox.deliver_for("inbox/carol/take.json")
    # Then it is rejected before anything is read or copied
    assert delivery.result["outcome"] == "rejected"
    report = json.loads(inbox.read("inbox/carol/take.error.json"))
    assert report["error"]["param"] == "input_reference[0].s3_key"
    assert "inbox/carol/" in report["error"]["message"]
    assert not inbox.keys("inputs/")


def test_a_redelivered_object_event_starts_no_second_job(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given a request whose job was started
    inbox.put("inbox/dave/once.json", {"model": "veo3-fast", "prompt": "Only once"})
    first, _ = inbox.deliver_for("inbox/dave/once.json")
    job_id = first.result["job_id"]
    inbox.run_job(job_id)
    # When EventBridge delivers the same event again
    again = inbox.redeliver(first.event)
    # Then the intake finds the job and starts nothing
    assert again == {"outcome": "duplicate", "job_id": job_id}
    assert [r.job_id for r in inbox.job_records()] == [job_id]
    assert len(workflow.simulator.creates()) == 1
    assert len(inbox.details(COMPLETED)) == 1


def test_objects_that_are_not_requests_are_ignored(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    inbox.put("inbox/notes.txt", b"hello", content_type="text/plain")
    inbox.put("elsewhere/request.json", {"model": "veo3-fast", "prompt": "not in the inbox"})
    # The rule only matches the inbox prefix: the object outside it never reaches the intake
    delivery, others = inbox.deliver_for("inbox/notes.txt")
    assert others == []
    assert delivery.result["outcome"] == "ignored"
    assert inbox.job_records() == []


def test_a_job_whose_execution_could_not_start_is_reported_on_the_retried_delivery(
    workflow: WorkflowHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox(workflow)
    # Given Step Functions refusing the job's StartExecution (the intake's first attempt)
    service = intake_handler.intake()
    real = service.sfn

    class Refusing:
        exceptions = real.exceptions

        def start_execution(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "StartExecution")

    monkeypatch.setattr(service, "sfn", Refusing())
    inbox.put("inbox/erin/unlucky.json", {"model": "veo3-fast", "prompt": "Unlucky"})
    # When the event is delivered, and retried as Lambda's asynchronous invoke does
    delivery, _ = inbox.deliver_for("inbox/erin/unlucky.json")
    # Then the first attempt failed the job (nothing was sent) and raised; the retry found it and reported it
    assert delivery.attempts == 2
    assert delivery.result["outcome"] == "duplicate"
    record = workflow.jobs.require(delivery.result["job_id"])
    assert record.status == "failed"
    assert record.error_code == "aws_unavailable"
    (detail,) = inbox.details(FAILED)
    assert detail["job_id"] == record.job_id
    assert detail["error"]["code"] == "aws_unavailable"
    assert workflow.simulator.received == []
