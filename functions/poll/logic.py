"""Poll: ask the provider how the current attempt is doing, and decide what the workflow does next.

running -> wait again (the adaptive policy picks how long); succeeded -> store; failed or stuck in the queue
with a fallback model left -> submit the next model (cancelling the abandoned task where the dialect can);
otherwise -> finalize as failed. Deadlines: the model's (or the request's) max wait -> ``timeout``; queued
longer than the model's stuck threshold -> ``stuck_in_queue``, except while the provider says the task is
throttled by the account's concurrency limit (that wait ends when another task of ours does).
"""

from __future__ import annotations

import logging

from functions.common.errors import (
    ContentFilteredError,
    GenerationTimeoutError,
    JobCancelledError,
    ProviderError,
    StuckInQueueError,
    VideogenError,
)
from functions.common.jobs import JobRecord, JobStatus, StaleTransitionError
from functions.common.metrics import emit_metrics
from functions.common.poll_policy import next_wait_seconds
from functions.common.video_request import VideoRequest
from functions.common.workflow import OutputLocation, StepError, StepState, WorkflowDeps
from functions.providers.base import ProviderTask, TaskStatus, VideoProvider

logger = logging.getLogger(__name__)

FAILURE_ERRORS: dict[str, type[VideogenError]] = {
    "content_filtered": ContentFilteredError,
    "cancelled": JobCancelledError,
}


def poll_job(state: StepState, deps: WorkflowDeps) -> StepState:
    record = deps.jobs.require(state.job_id)
    if record.status.is_terminal:
        return state.next(outcome="finished")
    attempt = record.attempts[state.attempt]
    assert attempt.task is not None, "Poll runs only after Submit recorded the task"
    task = ProviderTask.model_validate(attempt.task)
    request = deps.stored_request(record.request)
    spec = deps.catalog.models[task.model]
    provider = deps.providers.for_model(task.model)
    now = deps.clock()
    elapsed = now - task.submitted_at

    try:
        task_state = provider.poll(task)
    except ProviderError as exc:  # permanent: the provider lost or refused the task
        return _attempt_failed(state, deps, record, request, provider, task, exc)

    if task_state.status.is_terminal:
        deps.slots.release(spec.dialect.value, state.job_id)  # the provider's task no longer holds a slot
    if task_state.status is TaskStatus.SUCCEEDED:
        try:
            deps.jobs.transition(
                state.job_id,
                JobStatus.STORING,
                progress=100,
                provider_completed_at=now,
                poll_count=record.poll_count + 1,
                next_poll_at=None,
            )
        except StaleTransitionError:
            return state.next(outcome="finished")
        emit_metrics({"ProviderDuration": elapsed})
        assert task_state.output_url is not None
        return state.next(
            outcome="succeeded",
            output=OutputLocation(url=task_state.output_url, needs_auth=task_state.output_needs_auth),
        )
    if task_state.status.is_terminal:
        error_class = FAILURE_ERRORS.get(task_state.error_code or "", ProviderError)
        message = task_state.error_message or f"{spec.id} failed without a reason"
        return _attempt_failed(state, deps, record, request, provider, task, error_class(message))

    deadline = request.max_wait_seconds or spec.polling.max_wait_seconds
    if elapsed > deadline:
        provider.abandon(task)
        return _finish_failed(
            state,
            GenerationTimeoutError(
                f"{spec.id} did not finish within {deadline} s; the job was stopped. Try again, or a faster model."
            ),
        )
    if (
        task_state.status is TaskStatus.QUEUED
        and not task_state.not_found_yet
        and not task_state.throttled  # held back by the account's limit, not the provider: wait (max wait holds)
        and elapsed > spec.polling.stuck_queue_seconds
    ):
        stuck = StuckInQueueError(
            f"{spec.id} left the job queued for {elapsed:.0f} s (more than {spec.polling.stuck_queue_seconds} s): "
            "the provider is overloaded. Try again later or with another model."
        )
        return _attempt_failed(state, deps, record, request, provider, task, stuck)

    fixed = deps.fixed_poll_interval(request)
    wait = next_wait_seconds(spec, elapsed_seconds=elapsed, progress=task_state.progress, fixed_interval=fixed)
    try:
        deps.jobs.transition(
            state.job_id,
            JobStatus.IN_PROGRESS,
            progress=task_state.progress if task_state.progress is not None else record.progress,
            poll_count=record.poll_count + 1,
            next_poll_at=now + wait,
        )
    except StaleTransitionError:
        return state.next(outcome="finished")
    return state.next(outcome="running", wait_seconds=wait)


def _attempt_failed(
    state: StepState,
    deps: WorkflowDeps,
    record: JobRecord,
    request: VideoRequest,
    provider: VideoProvider,
    task: ProviderTask,
    error: VideogenError,
) -> StepState:
    """Fall back to the next model if the request named one, else fail the job with this error."""
    attempts = list(record.attempts)
    attempts[state.attempt] = attempts[state.attempt].model_copy(
        update={"error_code": error.code, "error_message": error.message}
    )
    deps.slots.release(deps.catalog.models[task.model].dialect.value, state.job_id)
    has_fallback = state.attempt < len(request.fallback_models)
    falls_back = has_fallback and not isinstance(error, JobCancelledError)
    try:
        deps.jobs.update(state.job_id, expect=record.status, attempts=attempts, poll_count=record.poll_count + 1)
    except StaleTransitionError:
        return state.next(outcome="finished")
    if not falls_back:
        return _finish_failed(state, error)
    provider.abandon(task)
    next_model = request.fallback_models[state.attempt]
    logger.warning(
        "attempt %d on %s failed (%s); falling back to %s", state.attempt, task.model, error.code, next_model
    )
    return state.next(outcome="fallback", attempt=state.attempt + 1, wait_seconds=None, output=None)


def _finish_failed(state: StepState, error: VideogenError) -> StepState:
    return state.next(outcome="failed", error=StepError.of(error))
