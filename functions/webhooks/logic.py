"""Webhook delivery: a job's terminal event POSTed to the request's callback_url, signed per Standard Webhooks.

One delivery attempt per call. The body is the event's ``detail`` exactly as it is on the bus; the headers are
``webhook-id`` (the event id: the same on every retry, so receivers de-duplicate), ``webhook-timestamp`` and
``webhook-signature`` (``v1,`` + HMAC-SHA256 under the tenant's secret, made by the standardwebhooks package).

- The callback URL is checked again before every attempt (DNS may have changed since the request): a URL that
  now resolves to a non-public address is given up at once, with the reason, and nothing is sent.
- A 2xx answer is a delivery. Anything else (a 3xx too: redirects are never followed), a timeout or a failed
  connection records the attempt and raises WebhookDeliveryError, so that whatever invoked us retries.
- An event older than the retry window (24 h) is given up instead of tried again; so is one that reaches the
  dead-letter queue.

Every attempt is recorded on the job item (``webhook_attempts``, ``webhook_state``, ``webhook_error``), written
with conditional updates: a late failure never overwrites a delivery.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import requests
from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks import Webhook

from functions.common.errors import InvalidRequestError, WebhookDeliveryError
from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED, VideoEventDetail
from functions.common.jobs import JobRecord, JobRepository, from_dynamo, to_dynamo
from functions.common.url_safety import Resolver, check_public_https_url, resolve_host

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

WebhookState = Literal["delivered", "retrying", "given_up"]
Outcome = Literal["delivered", "given_up", "skipped"]
UrlCheck = Callable[[str, Resolver], str]
"""(callback URL, resolver) -> the URL if it may be called; InvalidRequestError if not."""

USER_AGENT = "videogen-webhooks/1"
MAX_ERROR_CHARS = 300


class WebhookAttempt(BaseModel):
    """One try, as recorded on the job: when, the HTTP status (None: no answer, or nothing sent), what went wrong."""

    at: float
    status: int | None = None
    error: str | None = None


class VideoEvent(BaseModel):
    """The EventBridge envelope of a videogen event (what a rule hands its target)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime | None = None
    detail: dict[str, Any]

    @property
    def is_terminal_job_event(self) -> bool:
        return self.source == EVENT_SOURCE and self.detail_type in (COMPLETED, FAILED)


class DeliveryResult(BaseModel):
    job_id: str | None = None
    event_id: str | None = None
    outcome: Outcome
    status: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _EventOfJob:
    job_id: str
    event_id: str

    def result(self, outcome: Outcome, *, status: int | None = None, reason: str | None = None) -> DeliveryResult:
        return DeliveryResult(job_id=self.job_id, event_id=self.event_id, outcome=outcome, status=status, reason=reason)


class SecretSource(Protocol):
    def get_or_create(self, owner: str) -> str: ...


@dataclass(frozen=True)
class DeliveryPolicy:
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    max_age_seconds: float = 24 * 3600
    """After this long since the event, an attempt is not made: the delivery is given up."""


def public_https_only(url: str, resolve: Resolver) -> str:
    """The delivery-time URL check: the same rules as at request time (check_public_https_url)."""
    return check_public_https_url(url, field="callback_url", resolve=resolve)


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


class _HostUnresolvedError(Exception):
    """DNS did not answer for the callback's host: maybe a passing outage, so retried rather than given up."""


def _resolving(resolve: Resolver) -> Resolver:
    """``resolve``, with a failed lookup raised as _HostUnresolvedError (check_public_https_url would make it an
    InvalidRequestError, which at delivery time means "give up")."""

    def resolve_or_raise(hostname: str) -> list[str]:
        try:
            addresses = resolve(hostname)
        except OSError as exc:
            raise _HostUnresolvedError(hostname) from exc
        if not addresses:
            raise _HostUnresolvedError(hostname)
        return addresses

    return resolve_or_raise


class WebhookLog:
    """The delivery record on the job item, written with update_item so nothing else on the record is touched.

    Attributes: ``webhook_state`` (delivered | retrying | given_up), ``webhook_attempts`` (a list of
    WebhookAttempt, appended to), ``webhook_error`` (why the last attempt failed, or why it was given up).
    """

    def __init__(self, table: Table):
        self.table = table

    def load(self, job_id: str) -> tuple[JobRecord, WebhookState | None] | None:
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        if not item:
            return None
        data = from_dynamo(item)
        return JobRecord.model_validate(data), data.get("webhook_state")

    def record(
        self, job_id: str, state: WebhookState, *, attempt: WebhookAttempt | None = None, error: str | None = None
    ) -> bool:
        """Write ``state`` (and append ``attempt``). False, and nothing written, if the job has no record or was
        already delivered (a failure never overwrites a delivery)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        names = {"#state": "webhook_state", "#error": "webhook_error"}
        values: dict[str, Any] = {":state": state}
        sets = ["#state = :state"]
        if attempt is not None:
            names["#attempts"] = "webhook_attempts"
            values[":attempt"] = [to_dynamo(attempt.model_dump(mode="json"))]
            values[":empty"] = []
            sets.append("#attempts = list_append(if_not_exists(#attempts, :empty), :attempt)")
        if error is not None:
            values[":error"] = error
            sets.append("#error = :error")
        expression = "SET " + ", ".join(sets) + ("" if error is not None else " REMOVE #error")
        condition = "attribute_exists(job_id)"
        if state != "delivered":
            values[":delivered"] = "delivered"
            condition += " AND (attribute_not_exists(#state) OR #state <> :delivered)"
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


class WebhookDelivery:
    """Delivers a job's terminal event to its callback URL. Collaborators are injected; see handler.py for the
    deployed ones."""

    def __init__(
        self,
        jobs: JobRepository,
        secrets: SecretSource,
        http: requests.Session,
        *,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = resolve_host,
        url_check: UrlCheck = public_https_only,
        policy: DeliveryPolicy | None = None,
    ):
        self.log = WebhookLog(jobs.table)
        self.secrets = secrets
        self.http = http
        self.clock = clock
        self.resolver = resolver
        self.url_check = url_check
        self.policy = policy or DeliveryPolicy()

    def deliver(self, event: VideoEvent) -> DeliveryResult:
        """One attempt. Returns delivered, given_up or skipped; raises WebhookDeliveryError to be retried."""
        if not event.is_terminal_job_event:
            return DeliveryResult(outcome="skipped", reason=f"not a job's terminal event ({event.detail_type})")
        detail = VideoEventDetail.model_validate(event.detail)
        if detail.job_id is None:
            return DeliveryResult(event_id=detail.event_id, outcome="skipped", reason="a rejected request: no job")
        job = _EventOfJob(detail.job_id, detail.event_id)
        loaded = self.log.load(job.job_id)
        if loaded is None:
            return job.result("skipped", reason="the job has no record")
        record, state = loaded
        url = record.request.get("callback_url")
        if not url:
            return job.result("skipped", reason="the request has no callback_url")
        if state == "delivered":
            return job.result("skipped", reason="already delivered")

        now = self.clock()
        if self._age(event, detail, now) > self.policy.max_age_seconds:
            hours = self.policy.max_age_seconds / 3600
            return self._give_up(job, f"no 2xx answer within {hours:g} h of the event; delivery given up")
        try:
            self.url_check(str(url), _resolving(self.resolver))
        except _HostUnresolvedError as exc:
            return self._retry(job, WebhookAttempt(at=now, error=f"the callback host {exc} does not resolve"))
        except InvalidRequestError as exc:
            reason = f"refused at delivery: {exc.message}"[:MAX_ERROR_CHARS]
            return self._give_up(job, reason, WebhookAttempt(at=now, error=reason))

        body = json.dumps(event.detail, separators=(",", ":"))
        headers = self.signed_headers(job.event_id, self.secrets.get_or_create(record.owner), body, now)
        status, error = self._post(str(url), body, headers)
        attempt = WebhookAttempt(at=now, status=status, error=error)
        if error is not None:
            return self._retry(job, attempt)
        self.log.record(job.job_id, "delivered", attempt=attempt)
        return job.result("delivered", status=status)

    def give_up(self, event: VideoEvent, reason: str) -> DeliveryResult:
        """Record that the delivery was abandoned (its retries ran out), unless it was delivered after all."""
        detail = VideoEventDetail.model_validate(event.detail)
        if detail.job_id is None:
            return DeliveryResult(event_id=detail.event_id, outcome="skipped", reason="a rejected request: no job")
        job = _EventOfJob(detail.job_id, detail.event_id)
        loaded = self.log.load(job.job_id)
        if loaded is None or not loaded[0].request.get("callback_url"):
            return job.result("skipped", reason="no callback_url")
        return self._give_up(job, reason)

    @staticmethod
    def signed_headers(msg_id: str, secret: str, body: str, now: float) -> dict[str, str]:
        """Standard Webhooks headers; the signature covers ``{id}.{timestamp}.{body}``."""
        seconds = math.floor(now)
        signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(seconds, tz=UTC), body)
        return {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(seconds),
            "webhook-signature": signature,
        }

    def _post(self, url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """(status, None) for a 2xx; (status or None, what went wrong) otherwise. Errors never quote the URL (its
        query may hold the receiver's token)."""
        policy = self.policy
        try:
            response = self.http.post(
                url,
                data=body.encode("utf-8"),
                headers=headers,
                timeout=(policy.connect_timeout_seconds, policy.read_timeout_seconds),
                allow_redirects=False,
                stream=True,  # the answer's body is never read
            )
        except requests.ConnectTimeout:
            return None, f"no connection within {policy.connect_timeout_seconds:g} s"
        except requests.Timeout:
            return None, f"no answer within {policy.read_timeout_seconds:g} s"
        except requests.RequestException as exc:
            return None, f"the request failed ({type(exc).__name__})"
        with response:
            status = response.status_code
        if 200 <= status < 300:
            return status, None
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirects are not followed; answer 2xx at the callback URL itself"
        return status, f"HTTP {status}"

    def _retry(self, job: _EventOfJob, attempt: WebhookAttempt) -> DeliveryResult:
        error = attempt.error or "failed"
        if not self.log.record(job.job_id, "retrying", attempt=attempt, error=error):
            return job.result("skipped", reason="delivered")
        raise WebhookDeliveryError(
            f"The callback of job {job.job_id} failed ({error}); it is retried with the same webhook-id "
            f"({job.event_id}) for up to {self.policy.max_age_seconds / 3600:g} h.",
            details={"job_id": job.job_id, "status": attempt.status},
        )

    def _give_up(self, job: _EventOfJob, reason: str, attempt: WebhookAttempt | None = None) -> DeliveryResult:
        if not self.log.record(job.job_id, "given_up", attempt=attempt, error=reason):
            return job.result("skipped", reason="delivered")
        return job.result("given_up", reason=reason)

    @staticmethod
    def _age(event: VideoEvent, detail: VideoEventDetail, now: float) -> float:
        """Seconds since the event was put on the bus (or, without an envelope time, since the job finished)."""
        if event.time is not None:
            return now - event.time.timestamp()
        finished = detail.timings.finished_at
        return now - finished if finished is not None else 0.0


# --- dead letters ------------------------------------------------------------------------------------------

DEFAULT_GIVE_UP_REASON = "the delivery's retries ran out (dead-letter queue)"


def dead_letters(event: dict[str, Any]) -> list[tuple[VideoEvent, str]]:
    """The events, and why they were given up, from what the dead-letter entry point receives.

    - an SQS event whose records hold the EventBridge event: an EventBridge target's DLQ (reason in the
      ERROR_MESSAGE attribute) or a Lambda function's DLQ (ErrorMessage), or a Lambda on-failure destination's
      invocation record (the event under ``requestPayload``, the error under ``responsePayload``);
    - one EventBridge event with ``error`` ({Error, Cause}) added: a Step Functions Catch with ResultPath $.error.
    """
    if "Records" not in event:
        return [(VideoEvent.model_validate(event), _reason_from_catch(event.get("error")))]
    letters: list[tuple[VideoEvent, str]] = []
    for message in event["Records"]:
        body = json.loads(message["body"])
        reason = _attribute(message, "ERROR_MESSAGE") or _attribute(message, "ErrorMessage")
        if "requestPayload" in body:
            response = body.get("responsePayload") or {}
            condition = (body.get("requestContext") or {}).get("condition")
            reason = response.get("errorMessage") or condition or reason
            body = body["requestPayload"]
        letters.append((VideoEvent.model_validate(body), _given_up_because(reason)))
    return letters


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = (message.get("messageAttributes") or {}).get(name) or {}
    text = value.get("stringValue")
    return str(text) if text else None


def _reason_from_catch(error: Any) -> str:
    if not isinstance(error, dict):
        return DEFAULT_GIVE_UP_REASON
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else cause
    return _given_up_because(str(message or error.get("Error") or ""))


def _given_up_because(last_error: str | None) -> str:
    if not last_error:
        return DEFAULT_GIVE_UP_REASON
    return f"{DEFAULT_GIVE_UP_REASON}; last error: {last_error}"[:MAX_ERROR_CHARS]
