"""The OpenAI-style /v1/videos dialect (Veo 3 Fast, Sora 2): multipart create, JSON poll, /content output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.errors import InvalidRequestError, ProviderError
from functions.common.images import ImageInfo, download_image
from functions.common.url_safety import Resolver, check_public_https_url, resolve_host
from functions.common.video_request import ImageInput, VideoRequest
from functions.providers.base import (
    ProviderTask,
    TaskState,
    TaskStatus,
    VideoProvider,
    clamp_progress,
    failed_state,
    mentions_task_not_exist,
    status_of,
    unknown_status_state,
)
from functions.providers.catalog import Dialect
from functions.providers.http import unexpected_poll_answer

MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filtered"})
ImageDownloader = Callable[[str], tuple[bytes, ImageInfo]]


class VideosProvider(VideoProvider):
    dialect = Dialect.VIDEOS

    def __init__(
        self,
        *args: Any,
        download: ImageDownloader = download_image,
        resolve: Resolver = resolve_host,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.download = download
        self.resolve = resolve

    def submit(self, request: VideoRequest, create_key: str) -> ProviderTask:
        spec = self.spec(request.model)
        fmt = spec.format_for(request.size or spec.default_size) or spec.default_format
        # Every part goes through `files=` so requests sends real multipart/form-data even without an image.
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            ("model", (None, spec.provider_model, None)),
            ("prompt", (None, request.prompt, None)),
            ("size", (None, fmt.provider_value, None)),
        ]
        if spec.seconds.sent and request.seconds is not None:
            parts.append(("seconds", (None, str(request.seconds), None)))
        for index, image in enumerate(request.images):
            data, media_type = self._image_bytes(image, index)
            extension = media_type.split("/")[-1].replace("jpeg", "jpg")
            parts.append(("input_reference", (image.filename or f"frame{index}.{extension}", data, media_type)))
        answer = self.http.create("/v1/videos", files=parts)
        body = answer.json_object()
        task_id = body.get("id") or body.get("task_id")
        if not task_id:
            raise ProviderError("CometAPI accepted the video but its answer carries no id", details={"body": body})
        return ProviderTask(
            task_id=str(task_id), model=spec.id, dialect=self.dialect, submitted_at=self.clock(), raw=body
        )

    def _image_bytes(self, image: ImageInput, index: int) -> tuple[bytes, str]:
        if image.data is not None:
            return image.data, image.media_type or "image/png"
        assert image.url is not None
        # Checked again here, where we fetch it: the name may resolve elsewhere now than when it was accepted.
        check_public_https_url(image.url, field=f"images[{index}].url", resolve=self.resolve)
        try:
            data, info = self.download(image.url)
        except (ValueError, OSError) as exc:
            raise InvalidRequestError(f"images[{index}].url: {exc}", param=f"images[{index}].url") from exc
        return data, info.media_type

    def poll(self, task: ProviderTask) -> TaskState:
        answer = self.http.read("GET", f"/v1/videos/{task.task_id}", accept_statuses=frozenset({400, 404}))
        if mentions_task_not_exist(answer.body):
            return self.not_found_state(task, answer.body)
        if not answer.ok:
            raise unexpected_poll_answer(answer)
        return normalize_videos(answer.json_object(), content_url=self.http.url(f"/v1/videos/{task.task_id}/content"))


def normalize_videos(body: dict[str, Any], *, content_url: str) -> TaskState:
    """A /v1/videos task, in the reference's shape or the tutorial's, as a TaskState."""
    word = str(body.get("status") or "")
    status = status_of(word)
    progress = clamp_progress(body["progress"]) if isinstance(body.get("progress"), int | float) else None
    if status is None:
        return unknown_status_state(word, body)
    if status is TaskStatus.SUCCEEDED:
        url = body.get("video_url") or _first_output_url(body.get("output"))
        return TaskState(
            status=status,
            provider_status=word,
            progress=100,
            output_url=url or content_url,
            output_needs_auth=not url,
            raw=body,
        )
    if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        code, message = _error_of(body.get("error"))
        if status is TaskStatus.CANCELLED:
            return TaskState(
                status=status,
                provider_status=word,
                error_code="cancelled",
                error_message=message or "The provider cancelled the task.",
                raw=body,
            )
        return failed_state(word, code, message, body, filtered=code in MODERATION_CODES)
    return TaskState(status=status, provider_status=word, progress=progress, raw=body)


def _first_output_url(output: Any) -> str | None:
    if isinstance(output, list) and output:
        first = output[0]
        if isinstance(first, str):
            return first
        if isinstance(first, dict) and isinstance(first.get("url"), str):
            return str(first["url"])
    if isinstance(output, str) and output:
        return output
    return None


def _error_of(error: Any) -> tuple[str | None, str | None]:
    if isinstance(error, dict):
        return (str(error["code"]) if error.get("code") else None), (str(error.get("message") or "") or None)
    if isinstance(error, str):
        return None, error
    return None, None
