"""The HTTP policy: what is retried and how long it waits, what is never retried, and how errors are named.

A fake session answers with prepared ``requests.Response`` objects or raises the exceptions requests raises;
sleeps are recorded, never slept, and the jitter is a fixed function.
"""

from __future__ import annotations

import json
import socket
from http.client import RemoteDisconnected
from typing import Any, NoReturn, cast

import pytest
import requests
from pydantic import SecretStr
from urllib3 import HTTPSConnectionPool
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from functions.common.errors import (
    ContentFilteredError,
    InvalidRequestError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    SubmitAmbiguousError,
    UnauthorizedError,
    VideogenError,
)
from functions.common.video_request import VideoRequest, parse_video_request
from functions.providers.base import ProviderTask
from functions.providers.catalog import Dialect
from functions.providers.factory import provider_for
from functions.providers.http import (
    HttpPolicy,
    ProviderAnswer,
    ProviderHttp,
    classify_cometapi_error,
    retry_after_seconds,
)
from functions.providers.kling import classify_kling_error
from tests.fixtures.fake_http import FakeSession, json_response, raw_response

BASE_URL = "https://api.example.test"
KEY = "sk-test"
POLL_PATH = "/v1/videos/video_69b2"
CREATE_PATH = "/v1/videos"
PARTS = [("model", (None, "veo3-fast", None)), ("prompt", (None, "a fox", None)), ("size", (None, "16x9", None))]
JITTER = 0.5
CREATED = {"id": "video_69b2", "object": "video", "status": "queued", "progress": 0}
QUEUED = {"id": "video_69b2", "status": "queued", "progress": 0}


@pytest.fixture(autouse=True)
def _module_blocks_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may resolve a name or open a connection (named apart from conftest's guard: both apply)."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("network access is blocked in unit tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def error_body(message: str, code: str = "") -> dict[str, Any]:
    """CometAPI's error envelope."""
    return {"error": {"message": message, "type": "comet_api_error", "param": "", "code": code}}


def _kling_request() -> VideoRequest:
    return parse_video_request({"model": "kling-v1-6", "prompt": "A red fox in snow"}, resolve=lambda host: [])


def make_http(
    *answers: requests.Response | Exception, policy: HttpPolicy | None = None
) -> tuple[ProviderHttp, FakeSession, list[float]]:
    session = FakeSession(*answers)
    sleeps: list[float] = []
    http = ProviderHttp(
        base_url=BASE_URL,
        api_key=SecretStr(KEY),
        policy=policy or HttpPolicy(max_attempts=4, backoff_base=1.0, backoff_cap=20.0),
        session=cast(requests.Session, session),
        sleep=sleeps.append,
        jitter=lambda: JITTER,
    )
    return http, session, sleeps


def poll(http: ProviderHttp) -> ProviderAnswer:
    return http.read("GET", POLL_PATH)


def create(http: ProviderHttp) -> ProviderAnswer:
    return http.create(CREATE_PATH, files=PARTS)


def new_connection_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the TCP connection could not be opened (nothing was sent)."""
    reason = NewConnectionError(HTTPSConnection("api.example.test"), "Failed to establish a new connection")
    return requests.exceptions.ConnectionError(
        MaxRetryError(HTTPSConnectionPool("api.example.test"), CREATE_PATH, reason=reason)
    )


def dropped_connection_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the server closed the connection after the request went out."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection without response"))
    )


# --- Retry-After and backoff -----------------------------------------------------------------------------


def test_poll_429_with_retry_after_seconds_waits_that_long() -> None:
    # Given a poll answered 429 with Retry-After: 2, then the task
    http, session, sleeps = make_http(
        json_response(429, error_body("rate limited"), {"Retry-After": "2"}), json_response(200, QUEUED)
    )
    # When it is polled
    answer = poll(http)
    # Then it waited exactly 2 seconds once and got the task
    assert answer.body == QUEUED
    assert sleeps == [2.0]
    assert len(session.calls) == 2


def test_poll_429_with_retry_after_http_date_is_honoured() -> None:
    # Given a 429 whose Retry-After is an HTTP date far in the future, then the task
    far_future = "Fri, 01 Jan 2100 00:00:00 GMT"
    http, _, sleeps = make_http(
        json_response(429, error_body("rate limited"), {"Retry-After": far_future}), json_response(200, QUEUED)
    )
    # When it is polled
    poll(http)
    # Then the date was read (not the jittered backoff) and capped at max_retry_after
    assert sleeps == [http.policy.max_retry_after]


def test_poll_429_with_retry_after_http_date_in_the_past_retries_at_once() -> None:
    # Given a 429 whose Retry-After date has already passed
    http, _, sleeps = make_http(
        json_response(429, error_body("slow down"), {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        json_response(200, QUEUED),
    )
    # When it is polled
    poll(http)
    # Then the wait is zero (not the jittered backoff of 0.5)
    assert sleeps == [0.0]


@pytest.mark.parametrize(
    ("value", "now", "want"),
    [
        pytest.param("2", 0.0, 2.0, id="delta-seconds"),
        pytest.param("0", 0.0, 0.0, id="zero"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 1445412475.0, 5.0, id="http-date"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 1445412485.0, 0.0, id="http-date-past"),
        pytest.param("soon", 0.0, None, id="garbage"),
    ],
)
def test_retry_after_seconds_reads_both_forms(value: str, now: float, want: float | None) -> None:
    # Given a Retry-After header and a fixed clock
    headers = {"retry-after": value}
    # When it is read
    seconds = retry_after_seconds(headers, now=lambda: now)
    # Then it is a number of seconds from now (or None when unreadable)
    assert seconds == want


def test_retry_after_above_the_cap_is_capped() -> None:
    # Given a 429 asking for an hour
    http, _, sleeps = make_http(
        json_response(429, error_body("rate limited"), {"Retry-After": "3600"}), json_response(200, QUEUED)
    )
    # When it is polled
    poll(http)
    # Then the wait is bounded by the policy
    assert sleeps == [60.0]


def test_poll_429_without_retry_after_backs_off_exponentially_up_to_the_cap() -> None:
    # Given a policy with a 3 s cap and a poll rate limited four times without Retry-After
    policy = HttpPolicy(max_attempts=5, backoff_base=1.0, backoff_cap=3.0)
    limited = [json_response(429, error_body("rate limited")) for _ in range(4)]
    http, session, sleeps = make_http(*limited, json_response(200, QUEUED), policy=policy)
    # When it is polled
    poll(http)
    # Then each wait is jitter x min(cap, base x 2^(n-1)), never above the cap
    assert sleeps == [JITTER * 1.0, JITTER * 2.0, JITTER * 3.0, JITTER * 3.0]
    assert all(delay <= policy.backoff_cap for delay in sleeps)
    assert len(session.calls) == 5


def test_backoff_with_full_jitter_never_exceeds_the_cap() -> None:
    # Given jitter at its maximum and a poll rate limited until the last attempt
    policy = HttpPolicy(max_attempts=6, backoff_base=2.0, backoff_cap=5.0)
    session = FakeSession(
        *[json_response(429, error_body("rate limited")) for _ in range(5)], json_response(200, QUEUED)
    )
    sleeps: list[float] = []
    http = ProviderHttp(
        base_url=BASE_URL,
        api_key=SecretStr(KEY),
        policy=policy,
        session=cast(requests.Session, session),
        sleep=sleeps.append,
        jitter=lambda: 1.0,
    )
    # When it is polled
    poll(http)
    # Then the waits grow and stop at the cap
    assert sleeps == [2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524])
def test_poll_server_errors_are_retried_then_succeed(status: int) -> None:
    # Given a poll answered with a transient server error, then the task
    http, session, sleeps = make_http(json_response(status, error_body("upstream busy")), json_response(200, QUEUED))
    # When it is polled
    answer = poll(http)
    # Then it was retried once after a backoff and succeeded
    assert answer.status == 200
    assert len(session.calls) == 2
    assert sleeps == [JITTER * 1.0]


def test_retries_stop_after_max_attempts_with_provider_unavailable() -> None:
    # Given a poll answered 503 every time
    http, session, sleeps = make_http(
        *[json_response(503, error_body("down")) for _ in range(3)], policy=HttpPolicy(max_attempts=3)
    )
    # When it is polled
    # Then it gives up after max_attempts with a retryable ProviderUnavailableError
    with pytest.raises(ProviderUnavailableError) as raised:
        poll(http)
    assert raised.value.retryable is True
    assert len(session.calls) == 3
    assert len(sleeps) == 2


def test_rate_limit_that_never_lifts_raises_rate_limited_with_retry_after() -> None:
    # Given a poll answered 429 (Retry-After: 7) every time
    http, session, sleeps = make_http(
        *[json_response(429, error_body("rate limited"), {"Retry-After": "7"}) for _ in range(3)],
        policy=HttpPolicy(max_attempts=3),
    )
    # When it is polled
    # Then it gives up after max_attempts with ProviderRateLimitedError carrying the provider's wait
    with pytest.raises(ProviderRateLimitedError) as raised:
        poll(http)
    assert raised.value.retryable is True
    assert raised.value.retry_after == 7.0
    assert len(session.calls) == 3
    assert sleeps == [7.0, 7.0]


# --- creates: retried only when nothing can have been accepted --------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_create_answered_429_or_503_is_retried(status: int) -> None:
    # Given a create refused with 429 or 503 (nothing was accepted), then accepted
    http, session, sleeps = make_http(json_response(status, error_body("busy")), json_response(200, CREATED))
    # When it is created
    answer = create(http)
    # Then it was sent twice and the second answer is the task
    assert answer.body == CREATED
    assert len(session.calls) == 2
    assert [c.method for c in session.calls] == ["POST", "POST"]
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [502, 504, 524])
def test_create_answered_gateway_timeout_is_ambiguous_at_once(status: int) -> None:
    # Given a create answered by a gateway that gave up on an origin that may have accepted it
    http, session, sleeps = make_http(json_response(status, error_body("gateway timeout")), json_response(200, CREATED))
    # When it is created
    # Then it is not retried: the outcome is unknown and may be billed
    with pytest.raises(SubmitAmbiguousError):
        create(http)
    assert len(session.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), id="read-timeout"),
        pytest.param(dropped_connection_error(), id="connection-dropped-after-send"),
    ],
)
def test_create_lost_after_sending_is_ambiguous_after_one_call(exc: Exception) -> None:
    # Given a create whose request went out but whose answer never came back
    http, session, sleeps = make_http(exc, json_response(200, CREATED))
    # When it is created
    # Then it raises SubmitAmbiguousError after exactly one call
    with pytest.raises(SubmitAmbiguousError) as raised:
        create(http)
    assert len(session.calls) == 1
    assert sleeps == []
    assert raised.value.retryable is False


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(requests.exceptions.ConnectTimeout("connect timed out"), id="connect-timeout"),
        pytest.param(new_connection_error(), id="new-connection-error"),
    ],
)
def test_create_that_never_left_is_retried(exc: Exception) -> None:
    # Given a create that could not even connect (so nothing was sent), then a good connection
    http, session, sleeps = make_http(exc, json_response(200, CREATED))
    # When it is created
    answer = create(http)
    # Then it was safely sent again
    assert answer.body == CREATED
    assert len(session.calls) == 2
    assert sleeps == [JITTER * 1.0]


def test_create_that_never_connects_gives_up_as_unavailable() -> None:
    # Given a create that cannot connect at all
    http, session, _ = make_http(*[new_connection_error() for _ in range(3)], policy=HttpPolicy(max_attempts=3))
    # When it is created
    # Then it ends as ProviderUnavailableError (retryable: nothing was sent), not as ambiguous
    with pytest.raises(ProviderUnavailableError, match=BASE_URL):
        create(http)
    assert len(session.calls) == 3


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), id="read-timeout"),
        pytest.param(dropped_connection_error(), id="connection-dropped"),
    ],
)
def test_poll_lost_answer_is_retried(exc: Exception) -> None:
    # Given a poll whose answer was lost, then the task
    http, session, sleeps = make_http(exc, json_response(200, QUEUED))
    # When it is polled
    answer = poll(http)
    # Then it was retried (a poll changes nothing)
    assert answer.body == QUEUED
    assert len(session.calls) == 2
    assert sleeps == [JITTER * 1.0]


def test_every_call_has_timeouts_and_does_not_follow_redirects() -> None:
    # Given a policy with its own timeouts
    http, session, _ = make_http(json_response(200, QUEUED), policy=HttpPolicy(connect_timeout=3.0, read_timeout=11.0))
    # When a call is made
    poll(http)
    # Then the session was given both timeouts and told not to follow redirects
    kwargs = session.calls[0].kwargs
    assert kwargs["timeout"] == (3.0, 11.0)
    assert kwargs["allow_redirects"] is False


# --- non-JSON, redirects, auth, permanent errors -----------------------------------------------------------


@pytest.mark.parametrize("call", [poll, create], ids=["poll", "create"])
def test_200_html_page_is_an_error_naming_the_base_url_setting(call: Any) -> None:
    # Given a wrong base URL answering 200 with an HTML page
    page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>Hello</body></html>"
    http, session, _ = make_http(raw_response(200, page, "text/html; charset=utf-8"))
    # When it is called
    # Then it is never success: the error names HTML and COMETAPI_BASE_URL
    with pytest.raises(ProviderError) as raised:
        call(http)
    assert "HTML" in raised.value.message
    assert "COMETAPI_BASE_URL" in raised.value.message
    assert len(session.calls) == 1


def test_200_html_without_content_type_is_still_recognised() -> None:
    # Given an HTML page served with no content type
    http, _, _ = make_http(raw_response(200, b"<html><body>Not the API</body></html>", None))
    # When it is polled
    # Then it is still named an HTML page
    with pytest.raises(ProviderError, match="HTML"):
        poll(http)


@pytest.mark.parametrize("call", [poll, create], ids=["poll", "create"])
def test_301_is_not_followed_and_is_an_error(call: Any) -> None:
    # Given a base URL that redirects
    http, session, sleeps = make_http(
        raw_response(301, b"", None, {"Location": "https://www.example.test/v1/videos"}), json_response(200, QUEUED)
    )
    # When it is called
    # Then the redirect is an error naming the setting, after one call made with allow_redirects=False
    with pytest.raises(ProviderError, match="COMETAPI_BASE_URL"):
        call(http)
    assert len(session.calls) == 1
    assert session.calls[0].kwargs["allow_redirects"] is False
    assert sleeps == []


@pytest.mark.parametrize("call", [poll, create], ids=["poll", "create"])
def test_401_is_unauthorized_naming_the_variable_never_the_key(call: Any) -> None:
    # Given CometAPI refusing the key
    http, session, _ = make_http(json_response(401, error_body("Invalid token")))
    # When it is called
    # Then UnauthorizedError names COMETAPI_KEY and nowhere shows the key
    with pytest.raises(UnauthorizedError) as raised:
        call(http)
    error = raised.value
    assert "COMETAPI_KEY" in error.message
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert KEY not in json.dumps(error.to_dict())
    assert KEY not in json.dumps(error.details)
    assert error.retryable is False
    assert len(session.calls) == 1


def test_500_invalid_request_is_not_retried() -> None:
    # Given a 500 whose error code says the request itself is invalid
    http, session, sleeps = make_http(
        json_response(500, error_body("invalid size", code="invalid_request")), json_response(200, QUEUED)
    )
    # When it is polled
    # Then it is a permanent ProviderError after one call
    with pytest.raises(ProviderError) as raised:
        poll(http)
    assert type(raised.value) is ProviderError
    assert raised.value.retryable is False
    assert len(session.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(400, InvalidRequestError, id="400"),
        pytest.param(403, ProviderError, id="403-blocked"),
        pytest.param(404, ProviderError, id="404"),
    ],
)
def test_client_errors_are_not_retried(status: int, error: type[VideogenError]) -> None:
    # Given a poll answered with a client error
    http, session, sleeps = make_http(json_response(status, error_body("nope")), json_response(200, QUEUED))
    # When it is polled
    # Then the error is raised after one call
    with pytest.raises(error) as raised:
        poll(http)
    assert raised.value.retryable is False
    assert len(session.calls) == 1
    assert sleeps == []


def test_400_names_the_param_the_provider_blamed() -> None:
    # Given CometAPI's error envelope naming a param
    body = {
        "error": {
            "message": "size must be 720x1280 or 1280x720",
            "type": "comet_api_error",
            "param": "size",
            "code": "",
        }
    }
    http, _, _ = make_http(json_response(400, body))
    # When it is created
    # Then the InvalidRequestError carries the provider's message and param
    with pytest.raises(InvalidRequestError) as raised:
        create(http)
    assert raised.value.param == "size"
    assert "size must be 720x1280 or 1280x720" in raised.value.message


def test_classify_cometapi_error_reads_the_retry_after_into_rate_limited() -> None:
    # Given a 429 answer with a Retry-After header
    answer = ProviderAnswer(
        status=429, headers={"retry-after": "3"}, body=error_body("too many"), text="", method="GET", path=POLL_PATH
    )
    # When it is classified
    error = classify_cometapi_error(answer)
    # Then it is a retryable rate limit carrying the wait
    assert isinstance(error, ProviderRateLimitedError)
    assert error.retry_after == 3.0


# --- Kling's envelope codes --------------------------------------------------------------------------------


def kling_answer(status: int, code: int, message: str) -> ProviderAnswer:
    return ProviderAnswer(
        status=status,
        headers={},
        body={"code": code, "message": message},
        text="",
        method="POST",
        path="/kling/v1/videos/text2video",
    )


@pytest.mark.parametrize(
    ("status", "code", "message", "error", "retryable"),
    [
        pytest.param(429, 1303, "parallel task over resource pack limit", ProviderRateLimitedError, True, id="1303"),
        pytest.param(429, 1102, "account balance not enough", ProviderError, False, id="1102"),
        pytest.param(400, 1301, "content blocked", ContentFilteredError, False, id="1301"),
        pytest.param(400, 1201, "invalid model name", InvalidRequestError, False, id="1201"),
        pytest.param(401, 1001, "authorization failed", UnauthorizedError, False, id="1001"),
        pytest.param(
            200, 1303, "parallel task over resource pack limit", ProviderRateLimitedError, True, id="1303-200"
        ),
        pytest.param(200, 1301, "content blocked", ContentFilteredError, False, id="1301-200"),
    ],
)
def test_kling_envelope_codes_decide_the_error(
    status: int, code: int, message: str, error: type[VideogenError], retryable: bool
) -> None:
    # Given a Kling envelope error with an HTTP status
    answer = kling_answer(status, code, message)
    # When it is classified
    classified = classify_kling_error(answer)
    # Then the envelope code decides its class and whether it is retried
    assert type(classified) is error
    assert classified.retryable is retryable
    assert classified.details["provider_code"] == code


def test_kling_unauthorized_names_the_variable() -> None:
    # Given Kling refusing the key
    # When it is classified
    error = classify_kling_error(kling_answer(401, 1001, "authorization failed"))
    # Then the message says which variable to fix
    assert "COMETAPI_KEY" in error.message


def test_kling_create_over_concurrency_is_retried() -> None:
    # Given a Kling create answered 429 code 1303 (too many tasks in flight), then accepted
    accepted = {"code": 0, "message": "success", "data": {"task_id": "2032273942220931072", "task_status": "submitted"}}
    http, session, sleeps = make_http(
        json_response(429, {"code": 1303, "message": "parallel task over resource pack limit"}),
        json_response(200, accepted),
    )
    adapter = provider_for("kling-v1-6", http)
    # When it is submitted
    task = adapter.submit(_kling_request(), "job-1")
    # Then it was sent again after a backoff and the task came back
    assert task.task_id == "2032273942220931072"
    assert len(session.calls) == 2
    assert len(sleeps) == 1


def test_kling_create_out_of_credit_is_not_retried() -> None:
    # Given a Kling create answered 429 code 1102 (the account is out of credit)
    http, session, sleeps = make_http(
        json_response(429, {"code": 1102, "message": "account balance not enough"}),
        json_response(200, {"code": 0, "data": {"task_id": "x"}}),
    )
    adapter = provider_for("kling-v1-6", http)
    # When it is submitted
    # Then the ProviderError says to top up, after one call
    with pytest.raises(ProviderError, match="top up") as raised:
        adapter.submit(_kling_request(), "job-1")
    assert raised.value.retryable is False
    assert len(session.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "error"),
    [
        pytest.param(1301, ContentFilteredError, id="1301"),
        pytest.param(1303, ProviderRateLimitedError, id="1303"),
        pytest.param(1102, ProviderError, id="1102"),
    ],
)
def test_kling_error_with_http_200_is_raised_by_the_adapter(code: int, error: type[VideogenError]) -> None:
    # Given Kling answering a create with HTTP 200 and a non-zero code
    http, session, _ = make_http(json_response(200, {"code": code, "message": "refused", "data": None}))
    adapter = provider_for("kling-v1-6", http)
    # When it is submitted
    # Then the adapter raises the envelope's error
    with pytest.raises(error) as raised:
        adapter.submit(_kling_request(), "job-1")
    assert type(raised.value) is error
    assert len(session.calls) == 1


def test_kling_poll_error_with_http_200_is_raised_by_the_adapter() -> None:
    # Given Kling answering a poll with HTTP 200 and code 1303
    http, _, _ = make_http(json_response(200, {"code": 1303, "message": "parallel task over resource pack limit"}))
    adapter = provider_for("kling-v1-6", http)
    task = ProviderTask(task_id="2032273942220931072", model="kling-v1-6", dialect=Dialect.KLING, submitted_at=0.0)
    # When it is polled
    # Then the rate limit is raised, not taken for a task state
    with pytest.raises(ProviderRateLimitedError):
        adapter.poll(task)
