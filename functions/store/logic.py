"""Store: stream the provider's (temporary) output into S3, verified, and write the job's manifest."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from functions.common.errors import OutputExpiredError
from functions.common.jobs import JobRecord, JobStatus, StaleTransitionError
from functions.common.metrics import emit_metrics
from functions.common.workflow import OutputLocation, StepState, WorkflowDeps
from functions.providers.base import ProviderTask, TaskStatus, VideoProvider
from functions.store.streaming import StoredObject, check_output_url, stream_to_s3


def store_job(state: StepState, deps: WorkflowDeps) -> StepState:
    record = deps.jobs.require(state.job_id)
    if record.status.is_terminal:
        return state.next(outcome="finished")
    assert state.output is not None, "Store runs only after Poll found the output"
    attempt = record.attempts[state.attempt]
    assert attempt.task is not None
    task = ProviderTask.model_validate(attempt.task)
    provider = deps.providers.for_model(task.model)
    key = f"{deps.settings.video_prefix}{state.job_id}.mp4"
    started = deps.clock()
    try:
        try:
            stored = _download(state.output, provider, deps, key, record)
        except OutputExpiredError:
            fresh = _fresh_output(provider, task, state.output)
            if fresh is None:
                raise
            stored = _download(fresh, provider, deps, key, record)
    except Exception:
        emit_metrics({"StoreFailures": 1})
        raise

    now = deps.clock()
    emit_metrics({"StoreDuration": now - started, "StoredBytes": stored.bytes})
    manifest_key = f"{deps.settings.video_prefix}{state.job_id}.json"
    deps.s3.put_object(
        Bucket=stored.bucket,
        Key=manifest_key,
        Body=json.dumps(manifest(record, task, stored, now), indent=2).encode(),
        ContentType="application/json",
    )
    try:
        deps.jobs.update(
            state.job_id,
            expect=JobStatus.STORING,
            s3_bucket=stored.bucket,
            s3_key=stored.key,
            bytes=stored.bytes,
            sha256=stored.sha256,
            content_type=stored.content_type,
            stored_at=now,
            manifest_key=manifest_key,
        )
    except StaleTransitionError:
        # Cancelled while storing: nothing of the job may stay behind; Finalize reports the cancellation.
        deps.s3.delete_objects(
            Bucket=stored.bucket, Delete={"Objects": [{"Key": stored.key}, {"Key": manifest_key}], "Quiet": True}
        )
        return state.next(outcome="finished")
    return state.next(outcome="stored", output=None)


def _download(
    output: OutputLocation, provider: VideoProvider, deps: WorkflowDeps, key: str, record: JobRecord
) -> StoredObject:
    guard = functools.partial(check_output_url, allow_loopback=deps.providers.base_url_is_loopback)
    guard(output.url)
    return stream_to_s3(
        output.url,
        headers=provider.download_headers(output.needs_auth),
        s3_client=deps.s3,
        bucket=deps.settings.video_bucket_name,
        key=key,
        max_bytes=deps.settings.max_video_bytes,
        metadata={"job-id": record.job_id, "model": record.model},
        url_guard=guard,  # every redirect target is checked too
    )


def _fresh_output(provider: VideoProvider, task: ProviderTask, expired: OutputLocation) -> OutputLocation | None:
    """Re-poll once: some dialects hand out a new signed URL for a finished task."""
    state = provider.poll(task)
    if state.status is TaskStatus.SUCCEEDED and state.output_url and state.output_url != expired.url:
        return OutputLocation(url=state.output_url, needs_auth=state.output_needs_auth)
    return None


def manifest(record: JobRecord, task: ProviderTask, stored: StoredObject, stored_at: float) -> dict[str, Any]:
    """What was made, from what, how, and what it cost. Nothing secret: callback URL queries are dropped."""
    request = dict(record.request)
    if request.get("callback_url"):
        parts = urlsplit(request["callback_url"])
        request["callback_url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return {
        "job_id": record.job_id,
        "request": request,
        "model": task.model,
        "attempts": [attempt.model_dump(mode="json", exclude={"task"}) for attempt in record.attempts],
        "provider_task_id": task.task_id,
        "timings": {
            "created_at": record.created_at,
            "submitted_at": record.submitted_at,
            "provider_completed_at": record.provider_completed_at,
            "stored_at": stored_at,
        },
        "poll_count": record.poll_count,
        "cost_usd": record.cost_usd,
        "video": {
            "bucket": stored.bucket,
            "key": stored.key,
            "bytes": stored.bytes,
            "sha256": stored.sha256,
            "content_type": stored.content_type,
        },
    }
