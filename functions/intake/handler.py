"""Intake Lambdas (the logic is in logic.py):

- ``handler``: the target of two EventBridge rules: S3 "Object Created" under the inbox prefix (default bus)
  and "Video Generation Requested" (the product's bus). Starts a job, or a batch execution.
- ``batch_read_handler``, ``batch_line_handler``, ``batch_seal_handler``: the Task states of
  statemachine/video_batch.asl.json (ReadBatch, StartLine, Seal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common import workflow
from functions.common.aws_errors import aws_errors_as_transient
from functions.common.container import per_container
from functions.intake.logic import BatchInput, Intake, IntakeSettings, LineInput, SealInput

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

_built: list[tuple[workflow.WorkflowDeps, Intake]] = []


@per_container
def _sfn() -> SFNClient:
    return boto3.client("stepfunctions")


def intake() -> Intake:
    """Built on a container's first invocation and kept, for as long as the workflow's dependencies are (tests
    replace those through functions.common.workflow.workflow_dependencies)."""
    deps = workflow.workflow_dependencies()
    if not _built or _built[0][0] is not deps:
        _built[:] = [(deps, Intake(settings=IntakeSettings(), deps=deps, sfn=_sfn()))]
    return _built[0][1]


def _lambda(service: str, run: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    logger = Logger(service=service)

    @logger.inject_lambda_context(clear_state=True)
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        with aws_errors_as_transient():  # the batch Tasks retry TransientAwsError, as the job's do
            result = run(event)
        logger.info("done", extra={"result": result})
        return result

    return handle


handler = _lambda("videogen-intake", lambda event: intake().handle(event).model_dump(exclude_none=True))
batch_read_handler = _lambda("videogen-batch-read", lambda event: intake().read_batch(BatchInput.model_validate(event)))
batch_line_handler = _lambda("videogen-batch-line", lambda event: intake().start_line(LineInput.model_validate(event)))
batch_seal_handler = _lambda("videogen-batch-seal", lambda event: intake().seal(SealInput.model_validate(event)))
