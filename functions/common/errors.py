"""The one error hierarchy.

The class name is the error name Step Functions matches in Retry/Catch, so renaming a class is an interface
change: statemachine/video_generation.asl.json names the retryable ones. Every error a user can see carries a
stable ``code`` and a message that says what happened and what to do.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VideogenError(Exception):
    """Base of every error this product raises on purpose."""

    code: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False
    http_status: ClassVar[int] = 502

    def __init__(self, message: str, *, param: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The user-facing shape: stable code, message, and the field at fault where there is one."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        return body


# --- retryable: Step Functions retries these names with backoff -------------------------------------------


class RetryableError(VideogenError):
    """A transient condition; trying the same step again later is safe."""

    retryable = True


class ProviderRateLimitedError(RetryableError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailableError(RetryableError):
    code = "provider_unavailable"
    http_status = 503


class TransientAwsError(RetryableError):
    """An AWS call of ours failed in a way worth retrying (throttling, a refused EventBridge entry)."""

    code = "aws_unavailable"
    http_status = 503


# --- permanent -------------------------------------------------------------------------------------------


class InvalidRequestError(VideogenError):
    """The request itself is wrong. ``param`` names the field; nothing was sent to a provider."""

    code = "invalid_request"
    http_status = 400


class UnauthorizedError(VideogenError):
    code = "unauthorized"
    http_status = 401


class ContentFilteredError(VideogenError):
    code = "content_filtered"
    http_status = 400


class ProviderError(VideogenError):
    """The provider answered with a permanent failure we have no finer name for."""

    code = "provider_error"


class SubmitAmbiguousError(VideogenError):
    """A create call whose outcome is unknown: it may have been accepted (and billed). Never retried blindly."""

    code = "submit_ambiguous"


class GenerationTimeoutError(VideogenError):
    code = "timeout"
    http_status = 504


class StuckInQueueError(VideogenError):
    code = "stuck_in_queue"
    http_status = 504


class OutputExpiredError(VideogenError):
    code = "output_expired"


class OutputInvalidError(VideogenError):
    code = "output_invalid"


class JobCancelledError(VideogenError):
    code = "cancelled"
    http_status = 409


class DuplicateJobError(VideogenError):
    """A job with this id already exists (a second create of the same job is refused, never run twice)."""

    code = "duplicate_job"
    http_status = 409


class InternalError(VideogenError):
    """Something we did not anticipate stopped the job. The message says what; the logs say why."""

    code = "internal_error"
    http_status = 500


ERROR_CLASSES: tuple[type[VideogenError], ...] = (
    ProviderRateLimitedError,
    ProviderUnavailableError,
    TransientAwsError,
    InvalidRequestError,
    UnauthorizedError,
    ContentFilteredError,
    ProviderError,
    SubmitAmbiguousError,
    GenerationTimeoutError,
    StuckInQueueError,
    OutputExpiredError,
    OutputInvalidError,
    JobCancelledError,
    DuplicateJobError,
    InternalError,
)

ERRORS_BY_NAME: dict[str, type[VideogenError]] = {cls.__name__: cls for cls in ERROR_CLASSES}
"""Every concrete error; its class name is what Step Functions sees as the error name."""

ERROR_CODES: frozenset[str] = frozenset(cls.code for cls in ERROR_CLASSES)
