"""EventBridge -> the intake Lambda, and the webhook queue -> the webhook Lambda, locally.

moto does the rest of the path as AWS does: S3 sends "Object Created" events to EventBridge (the bucket's
EventBridgeConfiguration), and the intake's rules match them and "Video Generation Requested" events with
their real patterns. What moto cannot do is invoke a Lambda target (a rule whose target is a function raises
NotImplementedError in moto 5.2.5), so locally both rules target a queue (local/resources.py) and this module
hands each queued event, unchanged, to the intake handler through the Lambda registry, as EventBridge's
asynchronous invoke would: a failed invocation is tried twice more, then dropped with a warning (deployed, it
would go to the function's on-failure destination).

The webhook queue is an SQS queue in AWS too (rule -> queue -> function); moto has no event source mappings,
so this module is one: it hands each message to the webhook handler as a one-record SQS event (batch size 1,
as deployed), deletes it when the handler succeeded, and leaves a failed one on the queue, whose visibility the
handler has pushed out by its backoff, to be received again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from infra.config import INTAKE_FUNCTIONS, WEBHOOK_FUNCTIONS
from local.lambdas import LambdaRegistry

logger = logging.getLogger(__name__)

INTAKE_FUNCTION = INTAKE_FUNCTIONS["intake"].local_name
WEBHOOK_FUNCTION = WEBHOOK_FUNCTIONS["webhook"].local_name
ASYNC_INVOKE_ATTEMPTS = 3
"""Lambda's asynchronous invocation: the first try and two retries."""


@dataclass
class Delivery:
    event: dict[str, Any]
    result: Any
    error_type: str | None
    attempts: int


def deliver_intake_events(
    registry: LambdaRegistry,
    queue_url: str,
    *,
    sqs: Any = None,
    retry_pause: float = 0.05,
) -> list[Delivery]:
    """Invoke the intake with every event waiting in the queue (until it is empty); each is then deleted."""
    sqs = sqs or boto3.client("sqs")
    deliveries: list[Delivery] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return deliveries
        for message in messages:
            deliveries.append(_invoke(registry, json.loads(message["Body"]), retry_pause))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _invoke(registry: LambdaRegistry, event: dict[str, Any], retry_pause: float) -> Delivery:
    payload = json.dumps(event)
    for attempt in range(1, ASYNC_INVOKE_ATTEMPTS + 1):
        answer, error_type = registry.invoke(INTAKE_FUNCTION, payload)
        if error_type is None or attempt == ASYNC_INVOKE_ATTEMPTS:
            if error_type is not None:
                logger.warning("intake gave up on event %s after %d attempts: %s", event.get("id"), attempt, answer)
            return Delivery(event, json.loads(answer), error_type, attempt)
        time.sleep(retry_pause * attempt)
    raise AssertionError("unreachable")


def deliver_webhook_events(registry: LambdaRegistry, queue_url: str, *, sqs: Any = None) -> list[Delivery]:
    """Hand every visible message of the webhook queue to the webhook handler; delete those it delivered."""
    sqs = sqs or boto3.client("sqs")
    deliveries: list[Delivery] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return deliveries
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        queue_arn = attributes["QueueArn"]
        for message in messages:
            event = {"Records": [_sqs_record(message, queue_arn)]}
            answer, error_type = registry.invoke(WEBHOOK_FUNCTION, json.dumps(event))
            result = json.loads(answer)
            deliveries.append(Delivery(event, result, error_type, 1))
            if error_type is None and not result.get("batchItemFailures"):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received message as Lambda's SQS event source hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


class QueuePump:
    """Drains one local queue into its handler in the background while the local stack runs."""

    def __init__(
        self,
        deliver: Callable[..., list[Delivery]],
        registry: LambdaRegistry,
        queue_url: str,
        *,
        interval: float = 0.2,
    ):
        self.deliver = deliver
        self.registry = registry
        self.queue_url = queue_url
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"videogen-pump-{deliver.__name__}", daemon=True)

    def __enter__(self) -> QueuePump:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        sqs = boto3.client("sqs")
        while not self._stop.wait(self.interval):
            try:
                self.deliver(self.registry, self.queue_url, sqs=sqs)
            except Exception:  # keep delivering; the local stack logs what went wrong
                logger.exception("delivering events from %s failed", self.queue_url)
