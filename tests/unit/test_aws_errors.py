"""AWS SDK errors worth retrying become TransientAwsError (the name the ASL retries); the rest stay as they are."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from functions.common import workflow as workflow_module
from functions.common.aws_errors import transient_aws_error
from functions.common.errors import TransientAwsError
from functions.common.workflow import StepState, WorkflowDeps, step_handler
from local.lambdas import LocalLambdaContext


def client_error(code: str, status: int = 400, operation: str = "UpdateItem") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "whatever the service says"}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),  # DynamoDB, EventBridge
        ("ProvisionedThroughputExceededException", 400),  # DynamoDB
        ("RequestLimitExceeded", 400),  # DynamoDB
        ("InternalServerError", 500),  # DynamoDB
        ("SlowDown", 503),  # S3
        ("InternalError", 500),  # S3
        ("ServiceUnavailable", 503),  # S3
        ("InternalException", 500),  # EventBridge
        ("SomethingNew", 503),  # any 5xx, whatever its code
        ("SomethingElse", 429),
    ],
)
def test_throttling_and_server_errors_become_transient(code: str, status: int) -> None:
    # Given an AWS error for throttling or a server-side failure
    error = client_error(code, status)
    # When it is mapped
    mapped = transient_aws_error(error)
    # Then it is a TransientAwsError that names the operation and the code
    assert isinstance(mapped, TransientAwsError)
    assert code in mapped.message
    assert "UpdateItem" in mapped.message


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationException", 400),
        ("ConditionalCheckFailedException", 400),
        ("ResourceNotFoundException", 400),
        ("AccessDeniedException", 400),
        ("NoSuchKey", 404),
    ],
)
def test_client_mistakes_are_not_transient(code: str, status: int) -> None:
    # Given an AWS error that retrying cannot fix
    # When it is mapped / Then there is no transient error for it
    assert transient_aws_error(client_error(code, status)) is None


def test_a_code_is_matched_exactly_never_by_its_message() -> None:
    # Given a validation error whose message talks about throttling
    error = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "ThrottlingException SlowDown"}}, "PutItem"
    )
    # When it is mapped / Then it is still not transient
    assert transient_aws_error(error) is None


def test_connection_failures_to_aws_become_transient() -> None:
    # Given the SDK could not reach AWS, or gave up waiting for an answer
    errors = [
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com"),
    ]
    # When they are mapped / Then both are transient
    assert all(isinstance(transient_aws_error(error), TransientAwsError) for error in errors)


def test_other_exceptions_are_not_transient() -> None:
    assert transient_aws_error(ValueError("ThrottlingException")) is None


# -- the one place every workflow Lambda goes through


def handler_raising(error: Exception, monkeypatch: pytest.MonkeyPatch) -> Any:
    def step(state: StepState, deps: WorkflowDeps) -> StepState:
        raise error

    monkeypatch.setattr(workflow_module, "workflow_dependencies", lambda: None)
    return step_handler(step, "videogen-test")


def test_a_step_throttled_by_aws_raises_transient_aws_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a workflow step whose DynamoDB write is throttled
    throttled = client_error("ThrottlingException")
    handler = handler_raising(throttled, monkeypatch)
    # When its Lambda handler runs
    with pytest.raises(TransientAwsError) as raised:
        handler({"job_id": "video_abc"}, LocalLambdaContext(function_name="videogen-test"))
    # Then Step Functions sees TransientAwsError (which every Task's Retry names), caused by the SDK's error
    assert type(raised.value).__name__ == "TransientAwsError"
    assert raised.value.__cause__ is throttled


def test_a_step_failing_on_a_validation_error_keeps_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a workflow step whose AWS call is refused as invalid
    invalid = client_error("ValidationException")
    handler = handler_raising(invalid, monkeypatch)
    # When its Lambda handler runs / Then the ClientError itself is raised: caught into Finalize, not retried
    with pytest.raises(ClientError) as raised:
        handler({"job_id": "video_abc"}, LocalLambdaContext(function_name="videogen-test"))
    assert raised.value is invalid


def test_the_batch_state_machines_lambdas_map_throttling_too() -> None:
    # Given one of the intake's handlers (the inbox batch's Task states) whose DynamoDB write is throttled
    from functions.intake.handler import _lambda

    throttled = client_error("ProvisionedThroughputExceededException")

    def run(event: dict[str, Any]) -> dict[str, Any]:
        raise throttled

    handler: Any = _lambda("videogen-test", run)
    # When it runs / Then Step Functions sees TransientAwsError, which the batch's Tasks retry
    with pytest.raises(TransientAwsError):
        handler({}, LocalLambdaContext(function_name="videogen-test"))
