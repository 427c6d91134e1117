"""Reaper: a job whose execution ended without reaching Finalize (timed out, aborted by hand, or failed in
Finalize itself) still ends exactly once, with a reason and its one event.

Fed by Step Functions' "Execution Status Change" events for the workflow state machine (TIMED_OUT, ABORTED,
FAILED). For a job already terminal it only makes sure the event went out; Finalize's claim keeps it single.
"""

from __future__ import annotations

from typing import Any

from functions.common.errors import GenerationTimeoutError, InternalError, JobCancelledError, VideogenError
from functions.common.workflow import StepError, StepState, WorkflowDeps
from functions.finalize.logic import finalize_job

REASONS: dict[str, VideogenError] = {
    "TIMED_OUT": GenerationTimeoutError(
        "The job's workflow ran past its overall time limit and was stopped; the video was not stored."
    ),
    "ABORTED": JobCancelledError("The job's workflow was stopped before it finished."),
    "FAILED": InternalError("The job's workflow failed before it could record the result; see its execution."),
}


def reap_execution(detail: dict[str, Any], deps: WorkflowDeps) -> StepState | None:
    """Finish the job of an execution that ended abnormally. None for a status that needs nothing."""
    status = str(detail.get("status", ""))
    job_id = str(detail.get("name", ""))
    reason = REASONS.get(status)
    if reason is None or not job_id or deps.jobs.get(job_id) is None:
        return None
    return finalize_job(StepState(job_id=job_id, error=StepError.of(reason)), deps)
