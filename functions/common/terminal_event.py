"""A job's one terminal event: claimed in the job record (with a lease), then emitted, then marked.

Shared by Finalize and by cancellation, which may run side by side: the claim decides which one emits.
"""

from __future__ import annotations

import uuid

from functions.common.errors import TransientAwsError
from functions.common.events import event_detail_for
from functions.common.jobs import JobRecord, JobStatus
from functions.common.metrics import TERMINAL_STATUS_METRICS, emit_metrics
from functions.common.workflow import WorkflowDeps


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
    emit_metrics(terminal_metrics(record))
    return True


def terminal_metrics(record: JobRecord) -> dict[str, float]:
    """Counted with the one terminal event, so each job counts once whichever path ended it."""
    values: dict[str, float] = {TERMINAL_STATUS_METRICS[record.status.value]: 1}
    if record.finished_at is not None:
        values["JobDuration"] = record.finished_at - record.created_at
    if record.status is JobStatus.COMPLETED and record.cost_usd is not None:
        values["CostUsd"] = record.cost_usd
    return values


def release_slots(record: JobRecord, deps: WorkflowDeps) -> None:
    """A finished job holds no provider slot, whatever path it took to its end (idempotent).

    Every dialect the job could have taken a slot on is freed, not only those of its recorded attempts: Submit
    takes the slot before it records the attempt, so a step that died in between leaves no trace of it.
    Giving back a slot the job does not hold changes nothing.
    """
    requested = record.request.get("model")
    fallbacks = record.request.get("fallback_models") or []
    models = {attempt.model for attempt in record.attempts} | {record.model, requested, *fallbacks}
    dialects = {spec.dialect.value for model in models if isinstance(model, str) and (spec := deps.catalog.get(model))}
    for dialect in sorted(dialects):
        deps.slots.release(dialect, record.job_id)
