"""The HTTP policy for every CometAPI call, in one place.

- Connect and read timeouts on every call.
- Retries with exponential backoff and full jitter, honouring Retry-After, for 429/500/502/503/504/524 and for
  connection errors that happened before the request was sent.
- Reads (polls) may be retried freely. A create is different: one that timed out or lost its connection
  *after* the request went out may have been accepted and billed, so it is never retried; it raises
  SubmitAmbiguousError. A create answered 502/504/524 is ambiguous for the same reason (a gateway gave up
  waiting on an origin that may have accepted it).
- Redirects are not followed (a 301 would turn a POST into a GET) and non-JSON answers are errors.
- The key lives in a SecretStr and only ever leaves it in the Authorization header.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import requests
from pydantic import SecretStr
from urllib3.exceptions import MaxRetryError, NewConnectionError

from functions.common.errors import (
    InvalidRequestError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    SubmitAmbiguousError,
    UnauthorizedError,
    VideogenError,
)

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
GATEWAY_TIMEOUT_STATUSES = frozenset({502, 504, 524})
"""A create answered with one of these may have reached the origin: its outcome is unknown."""

UNAUTHORIZED_MESSAGE = (
    "CometAPI refused the API key (HTTP 401). Check COMETAPI_KEY (locally) or the CometAPI key secret "
    "(deployed) holds a valid key."
)


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 4
    backoff_base: float = 1.0
    backoff_cap: float = 20.0
    max_retry_after: float = 60.0


@dataclass(frozen=True)
class ProviderAnswer:
    """One HTTP answer from the provider. ``body`` is the parsed JSON, or None when it was not JSON."""

    status: int
    headers: Mapping[str, str]
    body: Any
    text: str
    method: str
    path: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; anything else (HTML, a bare string, a list) is an error."""
        if not isinstance(self.body, dict):
            raise ProviderError(
                f"CometAPI answered {self.method} {self.path} with HTTP {self.status} and "
                f"{describe_non_json(self)} instead of a JSON object; check COMETAPI_BASE_URL.",
                details={"status": self.status, "snippet": self.text[:200]},
            )
        return self.body


def describe_non_json(answer: ProviderAnswer) -> str:
    content_type = answer.headers.get("content-type", "no content type")
    if "html" in content_type or answer.text.lstrip().lower().startswith(("<!doctype", "<html")):
        return "an HTML page"
    return f"a non-JSON body ({content_type})"


def retry_after_seconds(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds, from either of its two forms (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def error_message_of(body: Any) -> str:
    """The human message of a provider error body, whatever its envelope."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if body.get("message"):
            return str(body["message"])
    return ""


def error_code_of(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("code"):
            return str(error["code"])
        if body.get("code") not in (None, "", 0):
            return str(body["code"])
    return ""


def classify_cometapi_error(answer: ProviderAnswer) -> VideogenError:
    """CometAPI's generic error classification, by HTTP status and error code (never by message text)."""
    status = answer.status
    message = error_message_of(answer.body) or answer.text[:200] or f"HTTP {status}"
    where = f"{answer.method} {answer.path}"
    details = {"status": status, "provider_code": error_code_of(answer.body)}
    if status == 401:
        return UnauthorizedError(UNAUTHORIZED_MESSAGE, details=details)
    if status == 429:
        return ProviderRateLimitedError(
            f"CometAPI is rate limiting ({where}): {message}",
            retry_after=retry_after_seconds(answer.headers),
            details=details,
        )
    if status == 500 and error_code_of(answer.body) == "invalid_request":
        return ProviderError(f"CometAPI rejected {where} as invalid: {message}", details=details)
    if status in RETRYABLE_STATUSES:
        return ProviderUnavailableError(f"CometAPI is unavailable ({where}, HTTP {status}): {message}", details=details)
    if 300 <= status < 400:
        return ProviderError(
            f"CometAPI redirected {where} to {answer.headers.get('location', '?')}; check COMETAPI_BASE_URL.",
            details=details,
        )
    if status in (400, 422):
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        param = error.get("param") if isinstance(error, dict) else None
        return InvalidRequestError(
            f"The provider rejected the request: {message}", param=param or None, details=details
        )
    if answer.body is None and 200 <= status < 300:
        return ProviderError(
            f"CometAPI answered {where} with {describe_non_json(answer)}; check COMETAPI_BASE_URL.",
            details=details,
        )
    return ProviderError(f"CometAPI answered {where} with HTTP {status}: {message}", details=details)


def unexpected_poll_answer(answer: ProviderAnswer) -> ProviderError:
    """A poll answered 400/404 without saying task_not_exist: the task is unknown to the provider."""
    return ProviderError(
        f"CometAPI answered {answer.method} {answer.path} with HTTP {answer.status}: "
        f"{error_message_of(answer.body) or answer.text[:200]}",
        details={"status": answer.status, "provider_code": error_code_of(answer.body)},
    )


def _failed_before_sending(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (so even a create may be retried)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        cause = exc.args[0]
        return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)
    return False


Classifier = Callable[[ProviderAnswer], VideogenError]


@dataclass
class ProviderHttp:
    """A requests session bound to the CometAPI base URL, the key and the retry policy."""

    base_url: str
    api_key: SecretStr
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"ProviderHttp(base_url={self.base_url!r}, api_key=SecretStr('**********'))"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def read(
        self,
        method: str,
        path: str,
        *,
        classify: Classifier = classify_cometapi_error,
        accept_statuses: frozenset[int] = frozenset(),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> ProviderAnswer:
        """A call that changes nothing (or is idempotent, like a cancel): retried freely.

        Statuses in ``accept_statuses`` are handed back to the caller instead of raising (a poll's 404 may
        mean task_not_exist, which the dialect decides).
        """
        return self._send(method, path, True, classify, accept_statuses, headers=headers, params=params)

    def create(
        self,
        path: str,
        *,
        classify: Classifier = classify_cometapi_error,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
    ) -> ProviderAnswer:
        """A call that starts paid work: never retried once it may have reached the provider."""
        return self._send(
            "POST", path, False, classify, frozenset(), headers=headers, json=json, data=data, files=files
        )

    def _send(
        self,
        method: str,
        path: str,
        idempotent: bool,
        classify: Classifier,
        accept_statuses: frozenset[int],
        **kwargs: Any,
    ) -> ProviderAnswer:
        headers = {"Accept": "application/json", **(kwargs.pop("headers") or {}), **self.auth_headers()}
        for attempt in range(1, self.policy.max_attempts + 1):
            last_attempt = attempt == self.policy.max_attempts
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    headers=headers,
                    timeout=(self.policy.connect_timeout, self.policy.read_timeout),
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.RequestException as exc:
                if not idempotent and not _failed_before_sending(exc):
                    raise SubmitAmbiguousError(
                        f"The create call {method} {path} was sent but no answer came back "
                        f"({type(exc).__name__}); the provider may have accepted it and may be billing for it.",
                        details={"exception": type(exc).__name__},
                    ) from exc
                logger.warning("%s %s failed on attempt %d: %s", method, path, attempt, type(exc).__name__)
                if last_attempt:
                    raise ProviderUnavailableError(
                        f"Could not reach CometAPI at {self.base_url} ({type(exc).__name__}) after {attempt} attempts.",
                    ) from exc
                self.sleep(self._backoff(attempt))
                continue

            answer = _answer_of(response, method, path)
            logger.debug("%s %s -> %d", method, path, answer.status)
            if (
                (answer.ok and isinstance(answer.body, dict))
                or answer.status in accept_statuses
                or answer.status == 204
            ):
                return answer
            if answer.ok:
                answer.json_object()  # raises: a 2xx that is not a JSON object is never success
            error = classify(answer)
            if not idempotent and answer.status in GATEWAY_TIMEOUT_STATUSES:
                raise SubmitAmbiguousError(
                    f"The create call {method} {path} got a gateway HTTP {answer.status}: the provider may "
                    "have accepted it and may be billing for it.",
                    details={"status": answer.status},
                )
            if not error.retryable or last_attempt:
                raise error
            delay = self._backoff(attempt, retry_after_seconds(answer.headers))
            logger.warning("%s %s answered %d; retrying in %.1fs", method, path, answer.status, delay)
            self.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return float(min(retry_after, self.policy.max_retry_after))
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2.0 ** (attempt - 1))
        return self.jitter() * ceiling


def _answer_of(response: requests.Response, method: str, path: str) -> ProviderAnswer:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    return ProviderAnswer(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=body,
        text=response.text[:2000] if body is None else "",
        method=method,
        path=path,
    )
