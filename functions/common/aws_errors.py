"""AWS SDK errors, classified by error code and HTTP status (never by message text): the transient ones become
our TransientAwsError, the name every workflow Task's Retry matches.

boto3 already retries these a few times inside one call; what gets out is a throttle or an outage that outlasted
those retries. Left as a ClientError, Step Functions would catch it into Finalize and fail the job with
internal_error; as TransientAwsError the step is retried with backoff, and every step is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError

from functions.common.errors import TransientAwsError

TRANSIENT_CODES: frozenset[str] = frozenset(
    {
        # throttling, as botocore's standard retry mode knows it (DynamoDB, S3, EventBridge, ...)
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "BandwidthLimitExceeded",
        "SlowDown",
        "EC2ThrottledException",
        # the service failed or timed out on its side
        "InternalServerError",
        "InternalError",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "TransactionConflictException",
    }
)
TRANSIENT_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


def transient_aws_error(error: BaseException) -> TransientAwsError | None:
    """The TransientAwsError ``error`` stands for, or None when retrying cannot help (a bad request, a missing
    resource, a failed condition, or not an AWS error at all)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code") or "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in TRANSIENT_CODES or status in TRANSIENT_STATUSES:
            return TransientAwsError(
                f"AWS {error.operation_name} failed with {code or 'no code'} (HTTP {status}); the step will be retried",
                details={"aws_code": code, "http_status": status, "operation": error.operation_name},
            )
        return None
    if isinstance(error, AwsConnectionError | HTTPClientError):  # no answer from AWS: refused, reset, timed out
        return TransientAwsError(
            f"could not reach AWS ({type(error).__name__}); the step will be retried",
            details={"aws_error": type(error).__name__},
        )
    return None


@contextmanager
def aws_errors_as_transient() -> Iterator[None]:
    """Re-raise a transient AWS SDK error as TransientAwsError (chained to it); anything else unchanged."""
    try:
        yield
    except (ClientError, AwsConnectionError, HTTPClientError) as error:
        transient = transient_aws_error(error)
        if transient is None:
            raise
        raise transient from error
