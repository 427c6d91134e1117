"""The Runway dialect (gen3a_turbo, image-to-video only): X-Runway-Version on every call.

Polls come back bare (Runway's own task), wrapped by CometAPI (`{"code":"success","data":{...}}` with
upper-case QUEUED/IN_PROGRESS/SUCCESS/FAILURE and "N%" progress), or lower-case as in the tutorial.
"""

from __future__ import annotations

from typing import Any

from functions.common.errors import ProviderError
from functions.common.images import to_data_uri
from functions.common.video_request import VideoRequest
from functions.providers.base import (
    ProviderTask,
    TaskState,
    TaskStatus,
    VideoProvider,
    clamp_progress,
    failed_state,
    is_throttled,
    mentions_task_not_exist,
    status_of,
    unknown_status_state,
)
from functions.providers.catalog import Dialect
from functions.providers.http import unexpected_poll_answer

RUNWAY_VERSION = "2024-11-06"
RUNWAY_HEADERS = {"X-Runway-Version": RUNWAY_VERSION}


class RunwayProvider(VideoProvider):
    dialect = Dialect.RUNWAY
    supports_cancel = True

    def submit(self, request: VideoRequest, create_key: str) -> ProviderTask:
        spec = self.spec(request.model)
        fmt = spec.format_for(request.size or spec.default_size) or spec.default_format
        image = request.images[0]  # validation guarantees Runway gets exactly one image
        body: dict[str, Any] = {
            "model": spec.provider_model,
            "promptImage": image.url
            if image.url is not None
            else to_data_uri(image.data or b"", image.media_type or "image/png"),
            "promptText": request.prompt,
            "duration": request.seconds or spec.seconds.default,
            "ratio": fmt.provider_value,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        answer = self.http.create("/runwayml/v1/image_to_video", json=body, headers=RUNWAY_HEADERS)
        created = answer.json_object()
        inner = created.get("data")
        task_id = created.get("id") or (inner.get("task_id") or inner.get("id") if isinstance(inner, dict) else None)
        if not task_id:
            raise ProviderError("Runway accepted the task but its answer carries no id", details={"body": created})
        return ProviderTask(
            task_id=str(task_id), model=spec.id, dialect=self.dialect, submitted_at=self.clock(), raw=created
        )

    def poll(self, task: ProviderTask) -> TaskState:
        answer = self.http.read(
            "GET",
            f"/runwayml/v1/tasks/{task.task_id}",
            headers=RUNWAY_HEADERS,
            accept_statuses=frozenset({400, 404}),
        )
        if mentions_task_not_exist(answer.body):
            return self.not_found_state(task, answer.body)
        if not answer.ok:
            raise unexpected_poll_answer(answer)
        return normalize_runway(answer.json_object())

    def cancel(self, task: ProviderTask) -> bool:
        """Runway's own API cancels with DELETE; CometAPI does not document it, so a 404/405 means 'can't'."""
        answer = self.http.read(
            "DELETE",
            f"/runwayml/v1/tasks/{task.task_id}",
            headers=RUNWAY_HEADERS,
            accept_statuses=frozenset({404, 405}),
        )
        return answer.ok


def normalize_runway(body: dict[str, Any]) -> TaskState:
    """Bare, wrapped or lower-case Runway task as a TaskState."""
    outer = body.get("data") if isinstance(body.get("data"), dict) else None
    bare = body if outer is None else (outer.get("data") if isinstance(outer.get("data"), dict) else {})
    assert isinstance(bare, dict)
    # The inner task is Runway's own record and the most precise; the wrapper's fields fill its gaps.
    word = str(bare.get("status") or (outer or {}).get("status") or "")
    outer_word = str((outer or {}).get("status") or "")
    outer_status = status_of(outer_word)
    if outer_status is not None and outer_status.is_terminal and not (status_of(word) or outer_status).is_terminal:
        word = outer_word  # the wrapper already knows the end the inner copy has not caught up with
    status = status_of(word)
    if status is None:
        return unknown_status_state(word, body)
    progress = _progress(bare.get("progress"), (outer or {}).get("progress"))
    if status is TaskStatus.SUCCEEDED:
        url = _first_url(bare.get("output")) or _first_url((outer or {}).get("output"))
        if not url:
            raise ProviderError("Runway says the task succeeded but gives no output URL", details={"body": body})
        return TaskState(status=status, provider_status=word, progress=100, output_url=url, raw=body)
    if status is TaskStatus.FAILED:
        failure_code = bare.get("failureCode")
        message = bare.get("failure") or (outer or {}).get("fail_reason")
        filtered = isinstance(failure_code, str) and failure_code.upper().startswith("SAFETY")
        return failed_state(word, failure_code, message if isinstance(message, str) else None, body, filtered=filtered)
    if status is TaskStatus.CANCELLED:
        return TaskState(
            status=status,
            provider_status=word,
            error_code="cancelled",
            error_message="The task was cancelled at the provider.",
            raw=body,
        )
    return TaskState(status=status, provider_status=word, progress=progress, throttled=is_throttled(word), raw=body)


def _progress(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return clamp_progress(value * 100 if value <= 1 else value)
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return clamp_progress(float(value.strip().rstrip("%")))
            except ValueError:
                continue
    return None


def _first_url(output: Any) -> str | None:
    if isinstance(output, list) and output and isinstance(output[0], str):
        return output[0]
    return None
