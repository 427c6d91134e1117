"""The S3 inbox and "Video Generation Requested" events, on the workflow harness.

Objects are put into the real (moto) bucket, whose EventBridge notifications and the intake's real rules put
the events on a queue (moto cannot invoke a Lambda rule target); ``deliver`` hands each one to the intake
handler through the Lambda registry, as EventBridge would (local/event_delivery.py). The batch state machine's
Task states run the real handlers through the same registry. Events on the product's bus are collected from
the harness's queue (every ``videogen`` event) into ``seen``. moto's DynamoDB is serialised for these tests
(``serialize_moto_dynamodb``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from functions.common.events import REQUESTED
from functions.common.jobs import JobRecord
from infra.config import INTAKE_FUNCTIONS
from local.event_delivery import Delivery, deliver_intake_events
from tests.workflow.harness import WorkflowHarness

INTAKE = INTAKE_FUNCTIONS["intake"].local_name


def serialize_moto_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """One DynamoDB call at a time in moto (for this test).

    moto's in-process DynamoDB is not thread-safe: it updates an item's attributes in place, so another
    thread serialising the same item meanwhile fails with "dictionary changed size during iteration" (seen on
    Seal's reads while 17 jobs of a batch update their records). DynamoDB itself has no such failure, so the
    inbox tests make moto's DynamoDB handler take one lock per request.
    """
    from moto.dynamodb.responses import DynamoHandler

    assert "call_action" in vars(DynamoHandler.__mro__[1]), "moto's BaseResponse.call_action moved: re-check"
    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@dataclass
class Inbox:
    workflow: WorkflowHarness
    seen: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.workflow.monkeypatch is not None, "the workflow fixture passes its monkeypatch"
        serialize_moto_dynamodb(self.workflow.monkeypatch)

    @property
    def bucket(self) -> str:
        return self.workflow.resources.bucket

    # -- what a user does

    def put(self, key: str, body: bytes | str | dict[str, Any], content_type: str = "application/json") -> str:
        """Put an object in the bucket; returns its ETag (unquoted)."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        data = data.encode() if isinstance(data, str) else data
        answer = boto3.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return str(answer["ETag"]).strip('"')

    def request_event(self, detail: dict[str, Any], *, source: str = "my.app") -> str:
        """``aws events put-events`` of a "Video Generation Requested" event on the product's bus; its id."""
        answer = boto3.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": REQUESTED,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.workflow.resources.bus,
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0, answer
        return str(answer["Entries"][0]["EventId"])

    # -- EventBridge -> intake

    def deliver(self) -> list[Delivery]:
        """Invoke the intake with every event its rules caught so far."""
        return deliver_intake_events(self.workflow.registry, self.workflow.resources.intake_queue_url)

    def deliver_for(self, key: str) -> tuple[Delivery, list[Delivery]]:
        """Deliver everything; the delivery of ``key``'s Object Created event, and the others (e.g. the event
        of the error object the intake wrote meanwhile)."""
        deliveries = self.deliver()
        assert all(d.error_type is None for d in deliveries), [d.result for d in deliveries]
        mine = [d for d in deliveries if d.event.get("detail", {}).get("object", {}).get("key") == key]
        assert len(mine) == 1, [d.event for d in deliveries]
        return mine[0], [d for d in deliveries if d is not mine[0]]

    def redeliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """The same event again (EventBridge delivers at least once); the intake's answer."""
        answer, error_type = self.workflow.registry.invoke(INTAKE, json.dumps(event))
        assert error_type is None, answer
        result: dict[str, Any] = json.loads(answer)
        return result

    # -- what happened

    def events(self) -> list[dict[str, Any]]:
        """Every videogen event on the bus so far (the queue is drained into ``seen``)."""
        sqs = boto3.client("sqs")
        queue = self.workflow.resources.events_queue_url
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return self.seen
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    def details(self, detail_type: str, where: Callable[[dict[str, Any]], bool] = lambda d: True) -> list[Any]:
        return [e["detail"] for e in self.events() if e["detail-type"] == detail_type and where(e["detail"])]

    def wait_for_event(self, detail_type: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.details(detail_type)
            if found:
                return found[0]  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise TimeoutError(f"no {detail_type!r} event within {timeout}s; seen: {[e['detail-type'] for e in self.seen]}")

    def run_job(self, job_id: str, timeout: float = 30.0) -> JobRecord:
        status = self.workflow.wait(job_id, timeout)
        assert status == "SUCCEEDED", "\n".join(self.workflow.history(job_id))
        return self.workflow.jobs.require(job_id)

    def wait_batch(self, batch_id: str, timeout: float = 30.0) -> str:
        sfn = boto3.client("stepfunctions")
        arn = self.batch_execution_arn(batch_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = str(sfn.describe_execution(executionArn=arn)["status"])
            if status == "SUCCEEDED":
                return status
            assert status == "RUNNING", f"batch {batch_id} {status}:\n{self.batch_history(batch_id)}"
            time.sleep(0.05)
        raise TimeoutError(f"batch {batch_id} still running after {timeout}s")

    def batch_history(self, batch_id: str) -> str:
        """The batch execution's history, one line per event (for assertion messages)."""
        sfn = boto3.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=self.batch_execution_arn(batch_id), maxResults=1000)["events"]
        lines = []
        for event in events:
            fields: dict[str, Any] = dict(event)
            details: dict[str, Any] = next((v for k, v in fields.items() if k.endswith("EventDetails")), {})
            shown = {k: str(v)[:300] for k, v in details.items() if k in ("name", "error", "cause", "output")}
            lines.append(f"{event['type']} {shown}")
        return "\n".join(lines)

    def batch_execution_arn(self, batch_id: str) -> str:
        arn = self.workflow.resources.batch_state_machine_arn
        return arn.replace(":stateMachine:", ":execution:") + f":{batch_id}"

    def read(self, key: str) -> bytes:
        body: bytes = boto3.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def keys(self, prefix: str = "") -> list[str]:
        answer = boto3.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in answer.get("Contents", [])]

    def job_records(self) -> list[JobRecord]:
        """Every job record in the table (the batch's own items are not jobs)."""
        table = boto3.resource("dynamodb").Table(self.workflow.resources.table)
        items = table.scan()["Items"]
        return [
            self.workflow.jobs.require(str(item["job_id"]))
            for item in items
            if str(item["job_id"]).startswith("video_")
        ]
