"""Webhook Lambda: ``handler`` delivers one terminal event (an EventBridge event) to the job's callback URL;
``dead_letter_handler`` records the deliveries whose retries ran out. The logic is in logic.py.

A failed attempt raises WebhookDeliveryError out of ``handler``: the invoker retries (docs/webhooks.md, "Retries").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.common.container import per_container
from functions.common.errors import WebhookDeliveryError
from functions.common.jobs import JobRepository
from functions.webhooks.logic import (
    DeliveryPolicy,
    VideoEvent,
    WebhookDelivery,
    dead_letters,
    new_session,
)
from functions.webhooks.secrets import WebhookSecretStore

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    jobs_table_name: str
    api_keys_table_name: str
    """The per-tenant webhook secrets live in the API keys table (functions/webhooks/secrets.py)."""
    webhook_connect_timeout_seconds: float = 5.0
    webhook_read_timeout_seconds: float = 10.0
    webhook_max_age_seconds: float = 24 * 3600


@per_container
def delivery_from_environment() -> WebhookDelivery:
    """Built on a container's first invocation and kept (clients, HTTP session)."""
    settings = WebhookSettings()
    dynamodb = boto3.resource("dynamodb")
    return WebhookDelivery(
        jobs=JobRepository(dynamodb.Table(settings.jobs_table_name)),
        secrets=WebhookSecretStore(dynamodb.Table(settings.api_keys_table_name)),
        http=new_session(),
        policy=DeliveryPolicy(
            connect_timeout_seconds=settings.webhook_connect_timeout_seconds,
            read_timeout_seconds=settings.webhook_read_timeout_seconds,
            max_age_seconds=settings.webhook_max_age_seconds,
        ),
    )


def webhook_handlers(delivery: Callable[[], WebhookDelivery]) -> tuple[Handler, Handler]:
    """The two entry points around one source of WebhookDelivery (the environment's, or a test's)."""
    logger = Logger(service="videogen-webhooks")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        video_event = VideoEvent.model_validate(event)
        logger.append_keys(job_id=video_event.detail.get("job_id"), event_id=video_event.detail.get("event_id"))
        try:
            result = delivery().deliver(video_event)
        except WebhookDeliveryError as exc:
            logger.warning("webhook attempt failed; to be retried", extra={"status": exc.details.get("status")})
            raise
        logger.info("webhook " + result.outcome, extra={"reason": result.reason, "status": result.status})
        return result.model_dump(mode="json")

    @logger.inject_lambda_context(clear_state=True)
    def dead_letter_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        results = [delivery().give_up(video_event, reason) for video_event, reason in dead_letters(event)]
        for result in results:
            logger.warning("webhook " + result.outcome, extra={"job_id": result.job_id, "reason": result.reason})
        return {"results": [result.model_dump(mode="json") for result in results]}

    return handler, dead_letter_handler


handler, dead_letter_handler = webhook_handlers(delivery_from_environment)

RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600


def retry_delay_seconds(receive_count: int) -> int:
    """Exponential backoff for the n-th failed attempt: 30 s, 60 s, ... capped at an hour. With the 24 h age
    limit in deliver(), that is about 30 attempts."""
    return int(min(RETRY_BASE_SECONDS * 2 ** max(receive_count - 1, 0), RETRY_MAX_SECONDS))


def queue_url(queue_arn: str) -> str:
    _, _, _, region, account, name = queue_arn.split(":", 5)
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


@per_container
def sqs() -> Any:
    return boto3.client("sqs")


def queue_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Deployed entry point: EventBridge rule -> SQS queue -> this. A failed attempt stays on the queue, its
    visibility pushed out by the backoff, so SQS redelivers it; after 24 h deliver() gives it up (recorded)
    and the message is deleted. The queue's own dead-letter queue (maxReceiveCount) is the last safety net,
    drained by dead_letter_handler."""
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: PLC0415

    def deliver(record: SQSRecord) -> None:
        video_event = VideoEvent.model_validate(json.loads(record.body))
        try:
            delivery_from_environment().deliver(video_event)
        except WebhookDeliveryError:
            sqs().change_message_visibility(
                QueueUrl=queue_url(record.event_source_arn),
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=retry_delay_seconds(int(record.attributes.approximate_receive_count)),
            )
            raise

    answer = process_partial_response(
        event=event,
        record_handler=deliver,
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )
    return dict(answer)
