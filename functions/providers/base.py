"""The one provider interface and its normalized vocabulary.

Each CometAPI dialect has one adapter that turns its quirks (status words, envelopes, field names) into
``TaskState``. Nothing outside ``providers/`` ever sees a provider's own status word except as
``TaskState.provider_status``, kept for logs.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from functions.common.errors import ProviderError, VideogenError
from functions.common.video_request import VideoRequest
from functions.providers.catalog import Catalog, Dialect, ModelSpec
from functions.providers.http import ProviderHttp

logger = logging.getLogger(__name__)

TASK_NOT_EXIST = "task_not_exist"


class TaskStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class ProviderTask(BaseModel):
    """What a create call gave back: enough to poll, cancel and reconcile the task later."""

    model_config = ConfigDict(extra="forbid")

    task_id: str
    model: str
    dialect: Dialect
    route: str | None = None
    """Dialect-specific path segment the task lives under (Kling: text2video or image2video)."""
    submitted_at: float
    raw: dict[str, Any] = {}


class TaskState(BaseModel):
    """A poll's answer in our vocabulary."""

    model_config = ConfigDict(extra="forbid")

    status: TaskStatus
    provider_status: str | None = None
    progress: int | None = None
    output_url: str | None = None
    output_needs_auth: bool = False
    """True when output_url is CometAPI's /content endpoint, which needs the Bearer key."""
    error_code: str | None = None
    """One of our stable codes (content_filtered, provider_error, cancelled) when the task failed."""
    error_message: str | None = None
    provider_error_code: str | None = None
    not_found_yet: bool = False
    """The provider said task_not_exist and we are still inside the grace period."""
    throttled: bool = False
    """QUEUED because the account is over its concurrency limit (Runway's THROTTLED), not because the provider
    is slow: the task starts once another of ours ends, so the job waits for it and is never called stuck."""
    raw: dict[str, Any] = {}


CONTENT_FILTER_MESSAGE = (
    "The provider rejected the job without a reason; this usually means the prompt or image tripped its "
    "content filter. Rephrase the prompt (or use another image) and try again."
)


def failed_state(
    provider_status: str | None,
    provider_code: str | None,
    message: str | None,
    raw: dict[str, Any],
    *,
    filtered: bool = False,
) -> TaskState:
    """A FAILED state with a stable code. ``filtered`` is the dialect's reading of its own error code; a
    failure with no message at all is, in practice, the provider's content filter too."""
    message = (message or "").strip()
    if filtered or not message:
        return TaskState(
            status=TaskStatus.FAILED,
            provider_status=provider_status,
            error_code="content_filtered",
            error_message=f"{CONTENT_FILTER_MESSAGE} (provider said: {message})" if message else CONTENT_FILTER_MESSAGE,
            provider_error_code=provider_code,
            raw=raw,
        )
    return TaskState(
        status=TaskStatus.FAILED,
        provider_status=provider_status,
        error_code="provider_error",
        error_message=message,
        provider_error_code=provider_code,
        raw=raw,
    )


def unknown_status_state(provider_status: str, raw: dict[str, Any]) -> TaskState:
    """An unknown status word counts as RUNNING (the poll deadline still applies) and is logged."""
    logger.warning("unknown provider status %r, treating it as running", provider_status)
    return TaskState(status=TaskStatus.RUNNING, provider_status=provider_status, raw=raw)


def clamp_progress(value: float | None) -> int | None:
    if value is None:
        return None
    return max(0, min(100, round(value)))


class VideoProvider(ABC):
    """One CometAPI dialect."""

    dialect: ClassVar[Dialect]
    supports_cancel: ClassVar[bool] = False
    supports_reconcile: ClassVar[bool] = False

    def __init__(
        self,
        http: ProviderHttp,
        catalog: Catalog,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.catalog = catalog
        self.clock = clock

    def spec(self, model_id: str) -> ModelSpec:
        spec = self.catalog.get(model_id)
        if spec is None or spec.dialect != self.dialect:
            raise ProviderError(f"model {model_id!r} is not a {self.dialect} model")
        return spec

    @abstractmethod
    def submit(self, request: VideoRequest, create_key: str) -> ProviderTask:
        """Create the provider task. Raises SubmitAmbiguousError when the outcome is unknown.

        ``create_key`` names this create of this job's attempt, unique per attempt (the job id for the first,
        see submit's ``create_key_for``); dialects that can tag a task with the caller's id send it."""

    @abstractmethod
    def poll(self, task: ProviderTask) -> TaskState:
        """The task's current state, normalized."""

    def cancel(self, task: ProviderTask) -> bool:
        """Ask the provider to stop the task. False where the dialect has no cancel."""
        return False

    def abandon(self, task: ProviderTask) -> None:
        """Stop paying for a task we no longer want, where the dialect can; never raises (our side has moved on)."""
        if not self.supports_cancel:
            logger.warning("task %s cannot be cancelled on %s; it may render to the end", task.task_id, self.dialect)
            return
        try:
            self.cancel(task)
        except VideogenError as exc:
            logger.warning("could not cancel task %s: %s", task.task_id, exc.code)

    def reconcile(self, create_key: str, request: VideoRequest) -> ProviderTask | None:
        """After an ambiguous create: the task the provider made under ``create_key`` (the same key the create
        sent), if any. None if unknowable."""
        return None

    def download_headers(self, needs_auth: bool) -> dict[str, str]:
        """Headers needed to fetch the output (the /content endpoint needs the key; provider URLs don't)."""
        return self.http.auth_headers() if needs_auth else {}

    def not_found_state(self, task: ProviderTask, raw: dict[str, Any]) -> TaskState:
        """task_not_exist: still initialising inside the model's grace period, an error after it."""
        grace = self.spec(task.model).polling.not_found_grace_seconds
        age = self.clock() - task.submitted_at
        if age <= grace:
            return TaskState(status=TaskStatus.QUEUED, provider_status=TASK_NOT_EXIST, not_found_yet=True, raw=raw)
        raise ProviderError(
            f"The provider still says task {task.task_id} does not exist {age:.0f}s after it was created "
            f"(grace period {grace}s); the task was lost upstream. Submit the job again."
        )


STATUS_WORDS: dict[str, TaskStatus] = {
    # the reference's /v1/videos words, the tutorial's, Kling's and Runway's (bare, wrapped and lower-case)
    "queued": TaskStatus.QUEUED,
    "pending": TaskStatus.QUEUED,
    "submitted": TaskStatus.QUEUED,
    "throttled": TaskStatus.QUEUED,
    "not_start": TaskStatus.QUEUED,
    "in_progress": TaskStatus.RUNNING,
    "processing": TaskStatus.RUNNING,
    "running": TaskStatus.RUNNING,
    "completed": TaskStatus.SUCCEEDED,
    "succeeded": TaskStatus.SUCCEEDED,
    "succeed": TaskStatus.SUCCEEDED,
    "success": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
    "failure": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
    "canceled": TaskStatus.CANCELLED,
}


THROTTLED_WORDS = frozenset({"throttled"})
"""Queued-over-the-account's-limit words (Runway's THROTTLED, which CometAPI's wrapper shows as QUEUED)."""


def is_throttled(word: str | None) -> bool:
    return (word or "").strip().lower() in THROTTLED_WORDS


def status_of(word: str | None) -> TaskStatus | None:
    """Our status for a provider's status word, in any case; None for a word we do not know."""
    return STATUS_WORDS.get((word or "").strip().lower())


def mentions_task_not_exist(body: Any) -> bool:
    """task_not_exist, wherever the provider puts it: a status, code or message field, top level or nested."""
    if not isinstance(body, dict):
        return False
    candidates: list[Any] = [body.get("status"), body.get("code"), body.get("message")]
    for nested_key in ("error", "data"):
        nested = body.get(nested_key)
        if isinstance(nested, dict):
            candidates += [
                nested.get("status"),
                nested.get("code"),
                nested.get("message"),
                nested.get("fail_reason"),
            ]
        elif isinstance(nested, str):
            candidates.append(nested)
    return any(isinstance(value, str) and TASK_NOT_EXIST in value.lower() for value in candidates)
