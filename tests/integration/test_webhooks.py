"""Webhook delivery end to end in-process: the webhook handlers, moto's DynamoDB (jobs and API keys tables), and
a real HTTP receiver on 127.0.0.1 that verifies every signature with the standardwebhooks package, as a
customer's receiver would.

The receiver is plain http on loopback, which the delivery-time URL check rightly refuses; the happy-path tests
inject a check that allows exactly the receiver's address and applies the real rules to anything else. The SSRF
tests use the real check with an injected resolver.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws
from standardwebhooks import Webhook, WebhookVerificationError

from functions.api.keys import ApiKeyStore
from functions.common.errors import InvalidRequestError, RetryableError, WebhookDeliveryError
from functions.common.events import (
    COMPLETED,
    EVENT_SOURCE,
    FAILED,
    ErrorDetail,
    Timings,
    VideoEventDetail,
    event_detail_for,
)
from functions.common.jobs import JobRecord, JobRepository, JobStatus, from_dynamo
from functions.common.url_safety import Resolver
from functions.webhooks import handler as webhook_handler_module
from functions.webhooks.handler import Handler, webhook_handlers
from functions.webhooks.logic import (
    DeliveryPolicy,
    VideoEvent,
    WebhookDelivery,
    public_https_only,
)
from functions.webhooks.secrets import SECRET_BYTES, WebhookSecretStore, tenant_key
from infra.config import API_KEYS_TABLE_KEY, LOCAL_NAMES
from local.lambdas import LocalLambdaContext
from local.resources import create_tables
from tests.fixtures.aws import use_fake_aws

REGION = "us-east-1"
OWNER = "tenant-a"
CALLBACK_PATH = "/hooks/videogen?token=receiver-token"
PUBLIC_HOST = "hooks.example.test"
DOCS_WEBHOOKS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"

# --- the customer's receiver ---------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    location: str | None = None
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: Any
    """The payload standardwebhooks returned, or the WebhookVerificationError it raised."""


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True
    secret: str | None = None
    answers: list[Answer]
    received: list[Received]
    release: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: the timeout test's client hangs up before the answer."""


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Receiver

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified: Any
        try:
            assert self.server.secret, "the test did not give the receiver the tenant's secret"
            verified = Webhook(self.server.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            verified = exc
        self.server.received.append(Received(self.path, headers, body, verified))
        answer = self.server.answers.pop(0) if self.server.answers else Answer()
        if answer.delay:
            self.server.release.wait(answer.delay)
        self.close_connection = True
        self.send_response(answer.status)
        if answer.location:
            self.send_header("Location", answer.location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass
class Receiver:
    server: _Receiver

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = CALLBACK_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def received(self) -> list[Received]:
        return self.server.received

    def answer(self, *answers: Answer) -> None:
        self.server.answers.extend(answers)

    def trust(self, secret: str) -> None:
        self.server.secret = secret


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Receiver(("127.0.0.1", 0), _ReceiverHandler)
    server.answers, server.received, server.release = [], [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Receiver(server)
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- AWS (moto), jobs, events ------------------------------------------------------------------------------


@dataclass
class Aws:
    jobs_table: Any
    keys_table: Any

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(self.jobs_table)

    @property
    def secrets(self) -> WebhookSecretStore:
        return WebhookSecretStore(self.keys_table)

    def item(self, job_id: str) -> dict[str, Any]:
        return dict(from_dynamo(self.jobs_table.get_item(Key={"job_id": job_id}, ConsistentRead=True)["Item"]))


@functools.cache
def aws_session() -> boto3.Session:
    """One session for the module: building a resource from a fresh session reloads the service model (0.1 s)."""
    return boto3.Session(region_name=REGION)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    use_fake_aws(monkeypatch, REGION)
    with mock_aws():
        dynamodb = aws_session().resource("dynamodb")
        create_tables(dynamodb.meta.client)
        jobs = dynamodb.Table(LOCAL_NAMES["jobs_table"])
        keys = dynamodb.Table(LOCAL_NAMES["api_keys_table"])
        yield Aws(jobs, keys)


def finished_job(aws: Aws, callback_url: str | None, *, owner: str = OWNER, failed: bool = False) -> JobRecord:
    """A terminal job in the jobs table, as Finalize leaves it."""
    now = time.time()
    request: dict[str, Any] = {"model": "veo3-fast", "prompt": "a lighthouse at dusk", "seconds": 8}
    if callback_url is not None:
        request["callback_url"] = callback_url
    job_id = f"video_{uuid.uuid4().hex}"
    outcome: dict[str, Any] = (
        {"status": JobStatus.FAILED, "error_code": "content_filtered", "error_message": "Rephrase the prompt."}
        if failed
        else {
            "status": JobStatus.COMPLETED,
            "s3_bucket": "videogen-videos",
            "s3_key": f"videos/{job_id}/video.mp4",
            "bytes": 1234,
            "sha256": "ab" * 32,
        }
    )
    record = JobRecord(
        job_id=job_id,
        owner=owner,
        model="veo3-fast",
        request=request,
        created_at=now - 90,
        finished_at=now - 1,
        **outcome,
    )
    aws.jobs.create(record)
    return record


def bus_event(record: JobRecord, *, at: datetime | None = None) -> dict[str, Any]:
    """The job's terminal event as an EventBridge rule hands it to its target."""
    detail = event_detail_for(record, str(uuid.uuid4()))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail.detail_type,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": detail.model_dump(mode="json"),
    }


class Clock:
    """Real time (signatures are checked against it, 5 minutes either way), moved on by hand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def allow_receiver(receiver: Receiver) -> Callable[[str, Resolver], str]:
    """The delivery-time URL check, plus exactly the test receiver's loopback address."""

    def check(url: str, resolve: Resolver) -> str:
        parts = urlsplit(url)
        if (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", receiver.port):
            return url
        return public_https_only(url, resolve)

    return check


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
    return session


class NothingSentError(AssertionError):
    pass


class _RefusingAdapter(requests.adapters.BaseAdapter):
    def __init__(self, sent: list[str]) -> None:
        super().__init__()
        self.sent = sent

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(str(request.url))
        raise NothingSentError(f"a request was sent to {request.url}")

    def close(self) -> None:
        pass


def refusing_session(sent: list[str]) -> requests.Session:
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _RefusingAdapter(sent))
    return session


@dataclass
class Deliveries:
    aws: Aws
    receiver: Receiver
    clock: Clock = field(default_factory=Clock)
    policy: DeliveryPolicy = field(
        default_factory=lambda: DeliveryPolicy(connect_timeout_seconds=1, read_timeout_seconds=1)
    )

    def build(self, **overrides: Any) -> WebhookDelivery:
        collaborators: dict[str, Any] = {
            "http": loopback_session(),
            "clock": self.clock,
            "url_check": allow_receiver(self.receiver),
            "resolver": refuse_to_resolve,
            "policy": self.policy,
        } | overrides
        return WebhookDelivery(self.aws.jobs, self.aws.secrets, **collaborators)

    def handlers(self, **overrides: Any) -> tuple[Handler, Handler]:
        delivery = self.build(**overrides)
        return webhook_handlers(lambda: delivery)

    def handle(self, event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        handler, _ = self.handlers(**overrides)
        return dict(handler(event, lambda_context()))

    def trusted_receiver(self, owner: str = OWNER) -> None:
        """The receiver holds the tenant's secret, as a customer would after reading it once."""
        self.receiver.trust(self.aws.secrets.get_or_create(owner))


def lambda_context(name: str = "videogen-webhooks") -> LambdaContext:
    return cast(LambdaContext, LocalLambdaContext(function_name=name))


def refuse_to_resolve(hostname: str) -> list[str]:
    raise AssertionError(f"no lookup expected in this test (asked for {hostname})")


@pytest.fixture
def deliveries(aws: Aws, receiver: Receiver) -> Deliveries:
    return Deliveries(aws, receiver)


# --- delivered -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failed", [False, True], ids=["completed", "failed"])
def test_a_2xx_is_a_delivery_signed_per_standard_webhooks_with_the_detail_as_body(
    deliveries: Deliveries, failed: bool
) -> None:
    # Given a finished job whose request named the receiver, and a receiver holding the tenant's secret
    record = finished_job(deliveries.aws, deliveries.receiver.url(), failed=failed)
    event = bus_event(record)
    deliveries.trusted_receiver()

    # When the webhook Lambda gets the job's terminal event
    result = deliveries.handle(event)

    # Then one POST arrived, its signature verifies, its body is the event's detail, its id is the event id
    assert result == {
        "job_id": record.job_id,
        "event_id": event["detail"]["event_id"],
        "outcome": "delivered",
        "status": 200,
        "reason": None,
    }
    [received] = deliveries.receiver.received
    assert received.path == CALLBACK_PATH
    assert received.verified == event["detail"], received.verified
    assert json.loads(received.body) == event["detail"]
    assert received.headers["webhook-id"] == event["detail"]["event_id"]
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-signature"].startswith("v1,")
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 5
    assert event["detail-type"] == (FAILED if failed else COMPLETED)
    # And the attempt is recorded on the job
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "delivered"
    assert "webhook_error" not in item
    [attempt] = item["webhook_attempts"]
    assert attempt["status"] == 200
    assert attempt["error"] is None
    assert abs(attempt["at"] - time.time()) < 5
    # And the job record itself still reads (the extra attributes are ignored until JobRecord has them)
    assert deliveries.aws.jobs.require(record.job_id).status == record.status


def test_a_signature_made_with_one_tenants_secret_does_not_verify_with_anothers(deliveries: Deliveries) -> None:
    # Given a job of tenant A, and a receiver that holds tenant B's secret
    record = finished_job(deliveries.aws, deliveries.receiver.url(), owner="tenant-a")
    deliveries.trusted_receiver(owner="tenant-b")

    # When the event is delivered
    deliveries.handle(bus_event(record))

    # Then the receiver could not verify it: the signature is per tenant
    [received] = deliveries.receiver.received
    assert isinstance(received.verified, WebhookVerificationError)


def test_a_redelivered_event_is_not_posted_twice(deliveries: Deliveries) -> None:
    # Given an event that was delivered
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record)
    deliveries.trusted_receiver()
    deliveries.handle(event)

    # When the same event arrives again (EventBridge and Lambda deliver at least once)
    result = deliveries.handle(event)

    # Then nothing more is sent
    assert result["outcome"] == "skipped"
    assert result["reason"] == "already delivered"
    assert len(deliveries.receiver.received) == 1
    assert len(deliveries.aws.item(record.job_id)["webhook_attempts"]) == 1


# --- retried -------------------------------------------------------------------------------------------------


def test_a_500_raises_the_retryable_error_and_records_the_attempt(deliveries: Deliveries) -> None:
    # Given a receiver that answers 500
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    deliveries.trusted_receiver()
    deliveries.receiver.answer(Answer(status=500))

    # When the webhook Lambda gets the event / Then it raises the retryable error, whose name the retry matches
    with pytest.raises(WebhookDeliveryError) as raised:
        deliveries.handle(bus_event(record))
    assert isinstance(raised.value, RetryableError)
    assert raised.value.code == "webhook_failed"
    assert "HTTP 500" in raised.value.message
    assert "receiver-token" not in raised.value.message  # the callback URL's query is never quoted
    # And the attempt is recorded
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "retrying"
    assert item["webhook_error"] == "HTTP 500"
    assert [(a["status"], a["error"]) for a in item["webhook_attempts"]] == [(500, "HTTP 500")]


def test_the_retry_after_a_500_is_delivered_with_the_same_webhook_id_and_a_fresh_signature(
    deliveries: Deliveries,
) -> None:
    # Given a receiver that answers 500, then 200
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record)
    deliveries.trusted_receiver()
    deliveries.receiver.answer(Answer(status=500), Answer(status=200))
    with pytest.raises(WebhookDeliveryError):
        deliveries.handle(event)

    # When the same event is retried a minute later
    deliveries.clock.offset = 60
    result = deliveries.handle(event)

    # Then it is delivered, with the same webhook-id, a new timestamp, and a signature that verifies
    assert result["outcome"] == "delivered"
    first, retry = deliveries.receiver.received
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == event["detail"]["event_id"]
    assert int(retry.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) in (60, 61)
    assert first.verified == retry.verified == event["detail"]
    assert first.body == retry.body
    # And both attempts are on the job, which is now delivered
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "delivered"
    assert "webhook_error" not in item
    assert [a["status"] for a in item["webhook_attempts"]] == [500, 200]


def test_a_timeout_is_retryable(deliveries: Deliveries) -> None:
    # Given a receiver slower than the read timeout
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    deliveries.trusted_receiver()
    deliveries.receiver.answer(Answer(delay=3.0))
    policy = DeliveryPolicy(connect_timeout_seconds=1, read_timeout_seconds=0.2)

    # When the event is delivered / Then the attempt times out and raises the retryable error, promptly
    started = time.monotonic()
    with pytest.raises(WebhookDeliveryError):
        deliveries.handle(bus_event(record), policy=policy)
    assert time.monotonic() - started < 2
    [attempt] = deliveries.aws.item(record.job_id)["webhook_attempts"]
    assert attempt["status"] is None
    assert attempt["error"] == "no answer within 0.2 s"


def test_a_redirect_is_a_failure_and_is_not_followed(deliveries: Deliveries) -> None:
    # Given a receiver that redirects elsewhere
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    deliveries.trusted_receiver()
    deliveries.receiver.answer(Answer(status=307, location=deliveries.receiver.url("/elsewhere")))

    # When the event is delivered / Then it is retryable, and the redirect was not followed
    with pytest.raises(WebhookDeliveryError):
        deliveries.handle(bus_event(record))
    assert [r.path for r in deliveries.receiver.received] == [CALLBACK_PATH]
    [attempt] = deliveries.aws.item(record.job_id)["webhook_attempts"]
    assert attempt["status"] == 307
    assert "redirects are not followed" in attempt["error"]


def test_a_host_that_does_not_resolve_at_delivery_is_retried_not_given_up(deliveries: Deliveries) -> None:
    # Given a public https callback whose name does not resolve right now (a DNS outage)
    record = finished_job(deliveries.aws, f"https://{PUBLIC_HOST}/hook")
    sent: list[str] = []

    def dns_down(hostname: str) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    # When the event is delivered with the real URL check / Then nothing is sent and the attempt is retried
    with pytest.raises(WebhookDeliveryError):
        deliveries.handle(
            bus_event(record), url_check=public_https_only, resolver=dns_down, http=refusing_session(sent)
        )
    assert sent == []
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "retrying"
    assert PUBLIC_HOST in item["webhook_error"]


# --- given up ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "::1", "::ffff:169.254.169.254"])
def test_a_callback_that_now_resolves_to_a_private_address_is_given_up_unsent_and_not_retried(
    deliveries: Deliveries, address: str
) -> None:
    # Given a callback URL that was public at request time, and whose name now resolves to a private address
    record = finished_job(deliveries.aws, f"https://{PUBLIC_HOST}/hook?token=t")
    sent: list[str] = []
    resolver: Resolver = {PUBLIC_HOST: [address]}.__getitem__

    # When the event is delivered, with the real URL check
    result = deliveries.handle(
        bus_event(record), url_check=public_https_only, resolver=resolver, http=refusing_session(sent)
    )

    # Then nothing is sent, nothing is raised (no retry), and the job says why it was given up
    assert sent == []
    assert result["outcome"] == "given_up"
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "given_up"
    assert "non-public address" in item["webhook_error"]
    assert address in item["webhook_error"]
    [attempt] = item["webhook_attempts"]
    assert attempt["status"] is None


def test_an_event_older_than_the_retry_window_is_given_up_unsent(deliveries: Deliveries) -> None:
    # Given an event put on the bus 25 hours ago (its retries outlived the 24 h window)
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record, at=datetime.now(UTC) - timedelta(hours=25))

    # When it arrives once more
    result = deliveries.handle(event)

    # Then it is given up, without a request
    assert result["outcome"] == "given_up"
    assert deliveries.receiver.received == []
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "given_up"
    assert "24 h" in item["webhook_error"]


DEAD_LETTER_SHAPES = ("eventbridge-target-dlq", "lambda-dlq", "lambda-on-failure-destination", "step-functions-catch")


def dead_letter_shapes(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same dead event as each dead-letter source hands it over."""

    def sqs(body: dict[str, Any], attributes: dict[str, str]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "body": json.dumps(body),
                    "messageAttributes": {
                        name: {"stringValue": value, "dataType": "String"} for name, value in attributes.items()
                    },
                    "eventSource": "aws:sqs",
                }
            ]
        }

    message = "The callback of job x failed (HTTP 503)"
    shapes = {
        "eventbridge-target-dlq": sqs(event, {"ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": message}),
        "lambda-dlq": sqs(event, {"ErrorCode": "200", "ErrorMessage": message}),
        "lambda-on-failure-destination": sqs(
            {
                "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
                "requestPayload": event,
                "responsePayload": {"errorType": "WebhookDeliveryError", "errorMessage": message},
            },
            {},
        ),
        "step-functions-catch": event
        | {"error": {"Error": "WebhookDeliveryError", "Cause": json.dumps({"errorMessage": message})}},
    }
    assert sorted(shapes) == sorted(DEAD_LETTER_SHAPES)
    return shapes


@pytest.mark.parametrize("shape", DEAD_LETTER_SHAPES)
def test_the_dead_letter_handler_records_given_up_with_the_reason(deliveries: Deliveries, shape: str) -> None:
    # Given a delivery that was retrying
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record)
    deliveries.trusted_receiver()
    deliveries.receiver.answer(Answer(status=503))
    with pytest.raises(WebhookDeliveryError):
        deliveries.handle(event)

    # When its event reaches the dead-letter handler
    _, dead_letter_handler = deliveries.handlers()
    answer = dead_letter_handler(dead_letter_shapes(event)[shape], lambda_context("videogen-webhooks-dead-letters"))

    # Then the job says the delivery was given up, and why
    assert [r["outcome"] for r in answer["results"]] == ["given_up"]
    item = deliveries.aws.item(record.job_id)
    assert item["webhook_state"] == "given_up"
    assert "retries ran out" in item["webhook_error"]
    assert "HTTP 503" in item["webhook_error"]
    assert [a["status"] for a in item["webhook_attempts"]] == [503]


def test_a_dead_letter_never_overwrites_a_delivery(deliveries: Deliveries) -> None:
    # Given a delivered event (say a duplicate invocation failed while another one delivered)
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record)
    deliveries.trusted_receiver()
    deliveries.handle(event)

    # When the event also reaches the dead-letter handler
    _, dead_letter_handler = deliveries.handlers()
    answer = dead_letter_handler(
        dead_letter_shapes(event)["lambda-dlq"], lambda_context("videogen-webhooks-dead-letters")
    )

    # Then the job stays delivered
    assert [r["outcome"] for r in answer["results"]] == ["skipped"]
    assert deliveries.aws.item(record.job_id)["webhook_state"] == "delivered"


# --- nothing to do -------------------------------------------------------------------------------------------


def test_without_a_callback_url_nothing_is_sent_by_the_deployed_handler(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed handler's environment, and a job whose request has no callback_url
    monkeypatch.setenv("JOBS_TABLE_NAME", LOCAL_NAMES["jobs_table"])
    monkeypatch.setenv("API_KEYS_TABLE_NAME", LOCAL_NAMES["api_keys_table"])
    webhook_handler_module.delivery_from_environment.cache_clear()
    record = finished_job(aws, None)

    # When the module's handler gets the job's event
    try:
        result = webhook_handler_module.handler(bus_event(record), lambda_context())
    finally:
        webhook_handler_module.delivery_from_environment.cache_clear()

    # Then nothing was sent or recorded, and no secret was made for the tenant
    assert result["outcome"] == "skipped"
    assert result["reason"] == "the request has no callback_url"
    assert "webhook_state" not in aws.item(record.job_id)
    assert "Item" not in aws.keys_table.get_item(Key=tenant_key(OWNER))


def test_other_events_on_the_bus_are_ignored(deliveries: Deliveries) -> None:
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record) | {"detail-type": "Video Generation Requested"}

    result = deliveries.handle(event)

    assert result["outcome"] == "skipped"
    assert deliveries.receiver.received == []


def test_a_rejected_request_has_no_job_and_gets_no_webhook(deliveries: Deliveries) -> None:
    # Given the Failed event of a request rejected before it became a job (job_id null)
    detail = VideoEventDetail(
        event_id=str(uuid.uuid4()),
        job_id=None,
        status="failed",
        model=None,
        attempts=[],
        timings=Timings(created_at=time.time()),
        error=ErrorDetail(code="invalid_request", message="prompt: is required", param="prompt"),
    )
    record = JobRecord(job_id="unused", model="m", request={}, status=JobStatus.FAILED)
    event = bus_event(record) | {"detail-type": FAILED, "detail": detail.model_dump(mode="json")}

    # When the webhook Lambda gets it / Then nothing is sent or written
    result = deliveries.handle(event)
    assert result["outcome"] == "skipped"
    assert result["job_id"] is None
    assert deliveries.receiver.received == []


def test_the_handler_settings_name_a_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBS_TABLE_NAME", raising=False)
    monkeypatch.setenv("API_KEYS_TABLE_NAME", "keys")
    with pytest.raises(ValueError, match="jobs_table_name"):
        webhook_handler_module.WebhookSettings()


# --- the per-tenant secret -----------------------------------------------------------------------------------


def test_a_tenants_secret_is_made_on_first_use_kept_and_its_own(aws: Aws) -> None:
    # Given no secret yet / When tenants ask for theirs
    store = aws.secrets
    assert store.get(OWNER) is None
    first = store.get_or_create(OWNER)
    again = WebhookSecretStore(aws.keys_table).get_or_create(OWNER)
    other = store.get_or_create("tenant-b")

    # Then it is a Standard Webhooks secret (whsec_ + base64 of 32 random bytes), stable, and per tenant
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == SECRET_BYTES
    assert again == first
    assert other != first
    # And it lives in the API keys table under tenant#{owner}
    item = aws.keys_table.get_item(Key={API_KEYS_TABLE_KEY: f"tenant#{OWNER}"})["Item"]
    assert item["webhook_secret"] == first
    # And the standardwebhooks package accepts it
    Webhook(first)


def test_the_documented_receiver_code_verifies_a_delivery(deliveries: Deliveries) -> None:
    # Given a delivered webhook, and the receiver function docs/webhooks.md shows
    record = finished_job(deliveries.aws, deliveries.receiver.url())
    event = bus_event(record)
    deliveries.trusted_receiver()
    deliveries.handle(event)
    [received] = deliveries.receiver.received
    blocks = re.findall(r"```python\n(.*?)```", DOCS_WEBHOOKS.read_text(encoding="utf-8"), flags=re.DOTALL)
    [code] = [block for block in blocks if "def verified_video_event" in block]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - our own documentation's example
    verified_video_event = namespace["verified_video_event"]
    secret = deliveries.aws.secrets.get_or_create(OWNER)

    # When it checks the request as received, and a tampered copy / Then it accepts only the genuine one
    assert verified_video_event(secret, received.body, received.headers) == event["detail"]
    assert verified_video_event(secret, received.body.replace(b"completed", b"failed"), received.headers) is None


def test_api_key_listing_still_works_once_a_tenant_has_a_webhook_secret(aws: Aws) -> None:
    # Given an API key and its tenant's webhook secret in the same table
    keys = ApiKeyStore(aws.keys_table)
    _, created = keys.create(OWNER, name="ci")
    aws.secrets.get_or_create(OWNER)

    # When the keys are listed / Then only the API key is
    assert [record.key_id for record in keys.list()] == [created.key_id]


def test_request_time_and_delivery_time_checks_are_the_same_rules() -> None:
    # The delivery check refuses what the request-time check refuses (plain http, credentials, private hosts)
    public: Resolver = {PUBLIC_HOST: ["93.184.216.34"]}.__getitem__
    assert public_https_only(f"https://{PUBLIC_HOST}/hook", public) == f"https://{PUBLIC_HOST}/hook"
    for url in (f"http://{PUBLIC_HOST}/hook", f"https://user:pw@{PUBLIC_HOST}/hook", "https://169.254.169.254/x"):
        with pytest.raises(InvalidRequestError, match="callback_url"):
            public_https_only(url, public)


def test_the_envelope_parses_as_eventbridge_sends_it() -> None:
    record = JobRecord(job_id="j", model="m", request={}, status=JobStatus.COMPLETED, finished_at=1.0)
    event = VideoEvent.model_validate(bus_event(record))
    assert event.is_terminal_job_event
    assert event.time is not None


def test_queue_retries_back_off_exponentially_up_to_an_hour() -> None:
    from functions.webhooks.handler import queue_url, retry_delay_seconds

    # Given the n-th failed attempt / Then the next one waits 30 s doubling, never more than an hour
    assert [retry_delay_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay_seconds(40) == 3600
    # And the partial-batch handler finds the queue from the record's ARN
    assert queue_url("arn:aws:sqs:eu-west-1:123456789012:videogen-webhooks") == (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/videogen-webhooks"
    )


def test_a_failed_queue_delivery_stays_on_the_queue_with_its_visibility_pushed_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from functions.webhooks import handler as module

    # Given a terminal event on the webhooks queue, and a receiver that keeps failing
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="videogen-webhooks")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    record = JobRecord(job_id="video_q", model="veo3-fast", request={}, status=JobStatus.COMPLETED, finished_at=1.0)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(bus_event(record)))
    message = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]

    class Failing:
        def deliver(self, event: VideoEvent) -> None:
            raise WebhookDeliveryError("the receiver answered HTTP 500")

    monkeypatch.setattr(module, "delivery_from_environment", Failing)
    monkeypatch.setattr(module, "queue_url", lambda arn: url)
    sqs_event = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
            }
        ]
    }
    # When the queue handler processes it
    answer = module.queue_handler(sqs_event, LocalLambdaContext(function_name="videogen-webhooks"))  # type: ignore[arg-type]
    # Then the message is reported failed (SQS keeps it) and is not visible again before its backoff
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
