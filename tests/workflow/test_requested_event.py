"""Jobs started by a "Video Generation Requested" event on the product's bus (any source)."""

from __future__ import annotations

from functions.common.events import COMPLETED, FAILED
from functions.intake.logic import event_job_id
from tests.workflow.harness import WorkflowHarness
from tests.workflow.inbox import Inbox


def test_a_requested_event_starts_a_job(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given an application that puts the request on the bus, as `aws events put-events` would
    detail = {"model": "veo3-fast", "prompt": "A lighthouse at dusk", "owner": "team-a", "metadata": {"order": "77"}}
    event_id = inbox.request_event(detail, source="my.app")
    # When the intake's rule hands the event to the intake
    (delivery,) = inbox.deliver()
    assert delivery.event["source"] == "my.app"
    # Then a job named after the event's id runs to completion, owned by the detail's owner
    assert delivery.result == {"outcome": "started", "job_id": event_job_id(event_id)}
    record = inbox.run_job(event_job_id(event_id))
    assert record.status == "completed", record.error_message
    assert record.owner == "team-a"
    assert "owner" not in record.request
    (done,) = inbox.details(COMPLETED)
    assert done["job_id"] == record.job_id
    assert done["metadata"] == {"order": "77"}
    # And the same event delivered again starts nothing
    assert inbox.redeliver(delivery.event) == {"outcome": "duplicate", "job_id": record.job_id}
    assert len(workflow.simulator.creates()) == 1


def test_without_an_owner_the_job_belongs_to_events(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    event_id = inbox.request_event({"model": "veo3-fast", "prompt": "A harbour"}, source="com.example.orders")
    (delivery,) = inbox.deliver()
    assert delivery.result["outcome"] == "started"
    assert inbox.run_job(event_job_id(event_id)).owner == "events"


def test_an_invalid_requested_event_is_reported_as_failed_and_starts_nothing(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    # Given a request with a field the API does not know
    event_id = inbox.request_event({"model": "veo3-fast", "prompt": "x", "colour": "red"}, source="my.app")
    # When it reaches the intake
    (delivery,) = inbox.deliver()
    # Then it is rejected with a Failed event naming the event and the field, and nothing else happens
    assert delivery.result["outcome"] == "rejected"
    (detail,) = inbox.details(FAILED)
    assert detail["job_id"] is None
    assert detail["source"] == {"event_id": event_id, "event_source": "my.app"}
    assert detail["error"]["code"] == "invalid_request"
    assert detail["error"]["param"] == "colour"
    assert inbox.job_records() == []
    assert workflow.simulator.received == []


def test_other_events_on_the_bus_do_not_reach_the_intake(workflow: WorkflowHarness) -> None:
    inbox = Inbox(workflow)
    inbox.request_event({"model": "veo3-fast", "prompt": "x"}, source="my.app")
    (delivery,) = inbox.deliver()  # the requested one
    assert delivery.result["outcome"] == "started"
    # The intake's own events (source videogen, other detail-types) never match its rule
    inbox.run_job(delivery.result["job_id"])
    assert inbox.deliver() == []
