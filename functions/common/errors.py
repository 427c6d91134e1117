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
    """CometAPI or the provider is rate limiting (HTTP 429, Kling 1302–1304). Retried with backoff; the job waits, it
    does not fail.
    """

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, concurrency: bool = False, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.concurrency = concurrency
        """The account is over its concurrency limit (Kling 1303): the job waits for a slot, it never fails."""


class ProviderUnavailableError(RetryableError):
    """CometAPI or the provider is unreachable or answered 5xx, or a download was cut short. Retried with backoff; if
    it persists the job fails with this code: try again later.
    """

    code = "provider_unavailable"
    http_status = 503


class TransientAwsError(RetryableError):
    """An AWS call of ours failed in a way worth retrying (throttling, a refused EventBridge entry)."""

    code = "aws_unavailable"
    http_status = 503


class WebhookDeliveryError(RetryableError):
    """The callback URL did not answer 2xx (an error status, a redirect, a timeout, no connection). Retried with
    backoff, with the same webhook-id, for up to 24 h; then given up and recorded on the job.
    """

    code = "webhook_failed"
    http_status = 502


# --- permanent -------------------------------------------------------------------------------------------


class InvalidRequestError(VideogenError):
    """The request itself is wrong: the message names the field and what is allowed. Nothing was sent to a provider."""

    code = "invalid_request"
    http_status = 400


class UnauthorizedError(VideogenError):
    """CometAPI refused the API key. Set a valid key: COMETAPI_KEY locally, the CometAPI key secret when deployed."""

    code = "unauthorized"
    http_status = 401


class ContentFilteredError(VideogenError):
    """The provider's content filter refused the prompt or image (often without a reason). Rephrase the prompt or use
    another image.
    """

    code = "content_filtered"
    http_status = 400


class ProviderError(VideogenError):
    """The provider failed the job for a reason it gave (in the message) that has no finer code."""

    code = "provider_error"


class SubmitAmbiguousError(VideogenError):
    """A create call got no answer: the provider may have accepted (and be billing for) the job. Never retried
    blindly; check the CometAPI dashboard before submitting again."""

    code = "submit_ambiguous"


class GenerationTimeoutError(VideogenError):
    """The model did not finish within its max wait (the catalog's, or the request's max_wait_seconds). Try again, or a
    faster model.
    """

    code = "timeout"
    http_status = 504


class StuckInQueueError(VideogenError):
    """The provider left the job queued past the model's stuck threshold (10 min). Falls back to the next fallback
    model if the request named one.
    """

    code = "stuck_in_queue"
    http_status = 504


class OutputExpiredError(VideogenError):
    """The provider's temporary download link had expired before the video could be stored. Generate the video again."""

    code = "output_expired"


class OutputInvalidError(VideogenError):
    """What the provider served is not a video (an HTML or JSON page, a wrong type, no MP4 signature, too large).
    Generate again; report it if it repeats.
    """

    code = "output_invalid"


class JobCancelledError(VideogenError):
    """The job was cancelled (DELETE on a running job, or Ctrl-C in the CLI)."""

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
    WebhookDeliveryError,
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
