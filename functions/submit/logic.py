"""Submit: create the provider task for a job's current attempt, exactly once.

Idempotent per job and attempt. Before the create call the attempt records ``create_started_at``; after it,
the task. A retry (Lambda's or Step Functions') that finds the task returns it; one that finds only
``create_started_at`` knows a previous create may have been accepted and billed, so it reconciles where the
dialect can (Kling, by the attempt's external_task_id: ``create_key_for``) and otherwise fails the job with
``submit_ambiguous`` instead of creating a second, billed task.
"""

from __future__ import annotations

from functions.common.errors import (
    InvalidRequestError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    RetryableError,
    StuckInQueueError,
    SubmitAmbiguousError,
)
from functions.common.jobs import Attempt, JobRecord, JobStatus, StaleTransitionError
from functions.common.poll_policy import first_wait_seconds
from functions.common.video_request import ImageInput, VideoRequest
from functions.common.workflow import StepState, WorkflowDeps
from functions.providers.base import ProviderTask, VideoProvider

SLOT_RETRY_SECONDS = 15
SLOT_WAIT_LIMIT_SECONDS = 20 * 3600
"""Below the execution's 25 h timeout, so a job that never gets a slot still ends through Finalize."""

AMBIGUOUS_MESSAGE = (
    "The provider did not answer the create call for {model}, so we do not know whether it accepted the job. "
    "It may still be rendering it, and billing for it. We did not submit again, so you are not charged twice. "
    "Check your CometAPI dashboard before retrying."
)


def model_for_attempt(request: VideoRequest, attempt: int) -> str:
    return request.model if attempt == 0 else request.fallback_models[attempt - 1]


def create_key_for(job_id: str, attempt: int) -> str:
    """The id one attempt's create is known by at the provider (Kling's ``external_task_id``).

    Unique per attempt, because Kling refuses a second task under an id it has seen (code 1201) and a
    reconcile must find this attempt's task, not an abandoned earlier one. Attempt 0 keeps the bare job id,
    the key used before fallbacks had their own, so a job in flight across a deploy still reconciles. Job ids
    are ``video_<hex>``, so no other job's key can end in ``-a<n>``.
    """
    return job_id if attempt == 0 else f"{job_id}-a{attempt}"


def submit_job(state: StepState, deps: WorkflowDeps) -> StepState:
    record = deps.jobs.require(state.job_id)
    if record.status.is_terminal:
        return state.next(outcome="finished")
    original = deps.stored_request(record.request)
    model_id = model_for_attempt(original, state.attempt)
    spec = deps.catalog.models[model_id]
    request = original if state.attempt == 0 else original.for_fallback(spec)
    provider = deps.providers.for_model(model_id)

    existing = record.attempts[state.attempt] if len(record.attempts) > state.attempt else None
    if existing is not None and existing.task is not None:
        return _submitted(state, deps, request, ProviderTask.model_validate(existing.task))
    if existing is not None and existing.create_started_at is not None:
        # A previous invocation sent (or was about to send) the create and never recorded its answer.
        return _recover_unknown_create(state, deps, record, request, provider)
    dialect = spec.dialect.value
    if not deps.slots.acquire(dialect, state.job_id):
        return _wait_for_slot(state, deps, record, request, dialect)

    # From here until the create has been sent, nothing is in flight at the provider: every way out gives the
    # slot back (a cancel may have run just before the acquire, and then nobody else would).
    try:
        # Read before the create is marked started: a failed read (S3 throttling) is then retried as a fresh
        # create, not taken for a create whose outcome is unknown.
        ready = _with_image_bytes(request, deps)
        attempts = [*record.attempts[: state.attempt], Attempt(model=model_id, create_started_at=deps.clock())]
        deps.jobs.transition(state.job_id, JobStatus.SUBMITTING, attempts=attempts, model=model_id, progress=0)
    except StaleTransitionError:
        deps.slots.release(dialect, state.job_id)
        return state.next(outcome="finished")  # cancelled meanwhile
    except Exception:
        deps.slots.release(dialect, state.job_id)
        raise
    try:
        task = provider.submit(ready, create_key_for(state.job_id, state.attempt))
    except SubmitAmbiguousError:
        # The create may have been accepted: the slot stays taken until the task (or the job) is known to end.
        return _recover_unknown_create(state, deps, deps.jobs.require(state.job_id), request, provider)
    except ProviderRateLimitedError as exc:
        deps.slots.release(dialect, state.job_id)
        _forget_create(state, deps, attempts)
        if exc.concurrency:  # the account is full (Kling 1303): wait for a slot like any job over our cap
            return _wait_for_slot(state, deps, record, request, dialect)
        raise
    except RetryableError:
        # Refused before anything was accepted (503, connection refused): safe to create again later.
        deps.slots.release(dialect, state.job_id)
        _forget_create(state, deps, attempts)
        raise
    except Exception:
        # A permanent error (invalid request, content filter, ...): the job ends here, through Finalize.
        deps.slots.release(dialect, state.job_id)
        raise
    return _submitted(state, deps, request, task, attempts)


def _wait_for_slot(
    state: StepState, deps: WorkflowDeps, record: JobRecord, request: VideoRequest, dialect: str
) -> StepState:
    """Over the cap: stay queued and try again after a wait, up to SLOT_WAIT_LIMIT_SECONDS in the queue."""
    waited = deps.clock() - record.created_at
    if waited > SLOT_WAIT_LIMIT_SECONDS:
        raise StuckInQueueError(
            f"The job waited {waited / 3600:.1f} h for one of the {dialect} provider's concurrency slots; every "
            "slot stayed busy. Raise PROVIDER_CONCURRENCY if the provider account allows more, or retry later."
        )
    fixed = deps.fixed_poll_interval(request)
    wait = fixed if fixed is not None else SLOT_RETRY_SECONDS
    return state.next(outcome="throttled", wait_seconds=wait, error=None, output=None)


def _recover_unknown_create(
    state: StepState, deps: WorkflowDeps, record: JobRecord, request: VideoRequest, provider: VideoProvider
) -> StepState:
    task = (
        provider.reconcile(create_key_for(state.job_id, state.attempt), request)
        if provider.supports_reconcile
        else None
    )
    if task is not None:
        return _submitted(state, deps, request, task, record.attempts)
    if provider.supports_reconcile:
        # The provider can tell, and says it has no task for this job: nothing was accepted. Create afresh.
        deps.slots.release(deps.catalog.models[request.model].dialect.value, state.job_id)  # retaken by the retry
        _forget_create(state, deps, record.attempts)
        # A name the ASL's Submit Retry matches: Step Functions retries, and the retry creates afresh.
        raise ProviderUnavailableError(
            f"the create for job {state.job_id} never reached the provider (it has no task for this job); "
            "creating it again"
        )
    raise SubmitAmbiguousError(AMBIGUOUS_MESSAGE.format(model=request.model))


def _forget_create(state: StepState, deps: WorkflowDeps, attempts: list[Attempt]) -> None:
    cleared = [*attempts[: state.attempt], attempts[state.attempt].model_copy(update={"create_started_at": None})]
    deps.jobs.update(state.job_id, expect=JobStatus.SUBMITTING, attempts=cleared)


def _submitted(
    state: StepState,
    deps: WorkflowDeps,
    request: VideoRequest,
    task: ProviderTask,
    attempts: list[Attempt] | None = None,
) -> StepState:
    spec = deps.catalog.models[task.model]
    fixed = deps.fixed_poll_interval(request)
    wait = first_wait_seconds(spec, fixed_interval=fixed)
    if attempts is not None:
        recorded = [
            *attempts[: state.attempt],
            attempts[state.attempt].model_copy(update={"task": task.model_dump(mode="json")}),
        ]
        try:
            deps.jobs.transition(
                state.job_id,
                JobStatus.IN_PROGRESS,
                attempts=recorded,
                submitted_at=task.submitted_at,
                cost_usd=spec.estimate_cost_usd(request.seconds or spec.seconds.default, request.mode),
                next_poll_at=deps.clock() + wait,
            )
        except StaleTransitionError:
            # Cancelled while the create was in flight: the cancel found no task to stop, so stop it here.
            deps.providers.for_model(task.model).abandon(task)
            deps.slots.release(spec.dialect.value, state.job_id)
            return state.next(outcome="finished")
    return state.next(outcome="submitted", wait_seconds=wait, error=None, output=None)


def _with_image_bytes(request: VideoRequest, deps: WorkflowDeps) -> VideoRequest:
    """Images we uploaded ourselves (S3 keys) are read back here, just before the create."""
    if not any(image.s3_key for image in request.images):
        return request
    images = []
    for index, image in enumerate(request.images):
        if image.s3_key is None:
            images.append(image)
            continue
        try:
            obj = deps.s3.get_object(Bucket=deps.settings.video_bucket_name, Key=image.s3_key)
        except deps.s3.exceptions.NoSuchKey as exc:
            raise InvalidRequestError(
                f"images[{index}]: the uploaded image {image.s3_key} is gone", param=f"images[{index}]"
            ) from exc
        images.append(
            ImageInput(
                data=obj["Body"].read(), media_type=image.media_type or obj.get("ContentType"), filename=image.filename
            )
        )
    return request.model_copy(update={"images": images})
