"""Cancelling a job (API DELETE, Ctrl-C in the CLI): one way, shared by every entry point.

The record moves to cancelled first, so any step still running finds it terminal and stops; then the
execution is stopped, the provider task cancelled where the dialect can, and the one terminal event (code
``cancelled``) emitted through the same claim Finalize uses, so it is never emitted twice.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from functions.common.batches import job_finished
from functions.common.errors import JobCancelledError
from functions.common.jobs import JobRecord, JobStatus, StaleTransitionError
from functions.common.terminal_event import emit_terminal_event, release_slots
from functions.common.workflow import WorkflowDeps
from functions.providers.base import ProviderTask

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{job_id}"


def cancel_job(
    job_id: str, *, deps: WorkflowDeps, sfn: SFNClient, state_machine_arn: str, reason: str = "Cancelled by the user."
) -> JobRecord:
    record = deps.jobs.require(job_id)
    if record.status.is_terminal:
        return record
    try:
        record = deps.jobs.transition(
            job_id,
            JobStatus.CANCELLED,
            finished_at=deps.clock(),
            next_poll_at=None,
            error_code=JobCancelledError.code,
            error_message=reason,
        )
    except StaleTransitionError:
        return deps.jobs.require(job_id)  # it finished first
    with contextlib.suppress(sfn.exceptions.ExecutionDoesNotExist):
        sfn.stop_execution(executionArn=execution_arn(state_machine_arn, job_id), cause=reason)
    _cancel_provider_task(record, deps)
    release_slots(record, deps)
    emit_terminal_event(record, deps)
    if record.batch_id is not None:
        job_finished(record, deps)
    return deps.jobs.require(job_id)


def _cancel_provider_task(record: JobRecord, deps: WorkflowDeps) -> None:
    attempt = record.current_attempt
    if attempt is None or attempt.task is None:
        return
    task = ProviderTask.model_validate(attempt.task)
    deps.providers.for_model(task.model).abandon(task)
