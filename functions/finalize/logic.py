"""Finalize: write the terminal record and emit exactly one event per terminal job.

Every execution ends here, whatever happened. The emission is claimed in the job record first (a
conditional write with a short lease), so a retried Finalize, or the API's cancel running beside it, never
emits twice, and a Finalize that died after claiming does not lose the event.
"""

from __future__ import annotations

from typing import Any

from functions.common.batches import job_finished
from functions.common.errors import InternalError, JobCancelledError
from functions.common.jobs import JobRecord, JobStatus, StaleTransitionError
from functions.common.terminal_event import emit_terminal_event, release_slots
from functions.common.workflow import StepState, WorkflowDeps


def finalize_job(state: StepState, deps: WorkflowDeps) -> StepState:
    record = deps.jobs.require(state.job_id)
    if not record.status.is_terminal:
        record = _finish(state, record, deps)
    release_slots(record, deps)
    emit_terminal_event(record, deps)
    if record.batch_id is not None:
        job_finished(record, deps)
    return state.next(outcome="finished", output=None)


def _finish(state: StepState, record: JobRecord, deps: WorkflowDeps) -> JobRecord:
    changes: dict[str, Any]
    if state.error is not None:
        code, message = state.error.as_user_error()
        to = JobStatus.CANCELLED if code == JobCancelledError.code else JobStatus.FAILED
        changes = {"error_code": code, "error_message": message}
    elif record.status is JobStatus.STORING and record.sha256:
        to, changes = JobStatus.COMPLETED, {"progress": 100}
    else:
        to = JobStatus.FAILED
        changes = {
            "error_code": InternalError.code,
            "error_message": f"The workflow ended with the job still {record.status.value} and no video stored.",
        }
    try:
        return deps.jobs.transition(state.job_id, to, finished_at=deps.clock(), next_poll_at=None, **changes)
    except StaleTransitionError:
        return deps.jobs.require(state.job_id)  # finished meanwhile (e.g. cancelled through the API)
