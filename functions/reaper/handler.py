"""Reaper Lambda: an EventBridge rule on Step Functions execution status changes invokes it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.workflow import workflow_dependencies
from functions.reaper.logic import reap_execution

logger = Logger(service="videogen-reaper")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    logger.append_keys(job_id=detail.get("name"), execution_status=detail.get("status"))
    result = reap_execution(detail, workflow_dependencies())
    return {"reaped": result is not None}
