"""Webhook Lambda: ``handler`` delivers one terminal event (an EventBridge event) to the job's callback URL;
``dead_letter_handler`` records the deliveries whose retries ran out. The logic is in logic.py.

A failed attempt raises WebhookDeliveryError out of ``handler``: the invoker retries (docs/webhooks.md, "Retries").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.common.jobs import JobRepository
from functions.webhooks.logic import (
    DeliveryPolicy,
    VideoEvent,
    WebhookDelivery,
    WebhookDeliveryError,
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


@cache
def delivery_from_environment() -> WebhookDelivery:
    """Built on a container's first invocation and kept (clients, HTTP session)."""
    import boto3  # noqa: PLC0415 - only needed when deployed; tests inject their own WebhookDelivery

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
            logger.warning(
                "webhook " + result.outcome, extra={"job_id": result.job_id, "reason": result.reason}
            )
        return {"results": [result.model_dump(mode="json") for result in results]}

    return handler, dead_letter_handler


handler, dead_letter_handler = webhook_handlers(delivery_from_environment)
