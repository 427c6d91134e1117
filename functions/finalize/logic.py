"""Finalize: write the terminal record and emit exactly one event per terminal job.

Every execution ends here, whatever happened. The emission is claimed in the job record first (a
conditional write with a short lease), so a retried Finalize, or the API's cancel running beside it, never
emits twice, and a Finalize that died after claiming does not lose the event.
"""

from __future__ import annotations

import uuid
from typing import Any

from functions.common.errors import InternalError, JobCancelledError, TransientAwsError
from functions.common.events import event_detail_for
from functions.common.jobs import JobRecord, JobStatus, StaleTransitionError
from functions.common.workflow import StepState, WorkflowDeps


def finalize_job(state: StepState, deps: WorkflowDeps) -> StepState:
    record = deps.jobs.require(state.job_id)
    if not record.status.is_terminal:
        record = _finish(state, record, deps)
    emit_terminal_event(record, deps)
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


def event_id_for(job_id: str) -> str:
    """One id per job, the same on every retry, so consumers can de-duplicate too."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"videogen:job:{job_id}"))


def emit_terminal_event(record: JobRecord, deps: WorkflowDeps) -> bool:
    """Emit the job's one terminal event unless it was already emitted. True if this call emitted it."""
    if record.event_emitted_at is not None:
        return False
    event_id = event_id_for(record.job_id)
    if not deps.jobs.claim_event(record.job_id, event_id, now=deps.clock()):
        if deps.jobs.require(record.job_id).event_emitted_at is not None:
            return False
        raise TransientAwsError(f"another finalizer is emitting the event of job {record.job_id}; retrying")
    deps.events.publish(event_detail_for(record, event_id))
    deps.jobs.mark_event_emitted(record.job_id)
    return True
