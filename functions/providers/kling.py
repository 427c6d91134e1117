"""The Kling dialect: JSON create under /kling/v1/videos/{text2video|image2video}, `succeed` for success.

Kling takes the attempt's create key as ``external_task_id`` (unique per account: the job id for the first
attempt, ``<job id>-a<n>`` for fallback n). That makes an ambiguous create recoverable: querying the task by
that id says whether the provider accepted this attempt's create.
"""

from __future__ import annotations

import base64
from typing import Any

from functions.common.errors import (
    ContentFilteredError,
    InvalidRequestError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    UnauthorizedError,
    VideogenError,
)
from functions.common.video_request import VideoRequest
from functions.providers.base import (
    ProviderTask,
    TaskState,
    TaskStatus,
    VideoProvider,
    failed_state,
    mentions_task_not_exist,
    status_of,
    unknown_status_state,
)
from functions.providers.catalog import Dialect
from functions.providers.http import (
    UNAUTHORIZED_MESSAGE,
    ProviderAnswer,
    classify_cometapi_error,
    error_message_of,
)

TEXT2VIDEO = "text2video"
IMAGE2VIDEO = "image2video"
TASK_NOT_FOUND = 1203
KLING_OVER_CONCURRENCY = 1303
"""Kling's "requested resource does not exist" (HTTP 404): its own form of task_not_exist right after a create."""


def kling_code(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("code"), int | str):
        try:
            return int(body["code"])
        except ValueError:
            return None
    return None


def classify_kling_error(answer: ProviderAnswer) -> VideogenError:
    """Kling's envelope codes decide, whatever the HTTP status (Kling also answers errors with HTTP 200)."""
    code = kling_code(answer.body)
    message = error_message_of(answer.body) or f"HTTP {answer.status}"
    details = {"status": answer.status, "provider_code": code}
    if code is None or code == 0:
        return classify_cometapi_error(answer)
    if 1000 <= code <= 1004:
        return UnauthorizedError(UNAUTHORIZED_MESSAGE, details=details)
    if 1100 <= code <= 1102:
        return ProviderError(
            f"Kling refused the task for the account's balance or quota (code {code}: {message}); top up the "
            "CometAPI account, then submit again.",
            details=details,
        )
    if 1200 <= code <= 1299:
        return InvalidRequestError(f"Kling rejected the request (code {code}): {message}", details=details)
    if code in (1300, 1301):
        return ContentFilteredError(
            f"Kling's content policy blocked the request (code {code}: {message}); rephrase the prompt or use "
            "another image.",
            details=details,
        )
    if 1302 <= code <= 1304:
        return ProviderRateLimitedError(
            f"Kling is over its rate or concurrency limit (code {code}: {message}); the job waits and retries.",
            concurrency=code == KLING_OVER_CONCURRENCY,
            details=details,
        )
    if 5000 <= code <= 5099:
        return ProviderUnavailableError(f"Kling is unavailable (code {code}: {message})", details=details)
    return ProviderError(f"Kling answered code {code}: {message}", details=details)


class KlingProvider(VideoProvider):
    dialect = Dialect.KLING
    supports_reconcile = True

    def submit(self, request: VideoRequest, create_key: str) -> ProviderTask:
        spec = self.spec(request.model)
        fmt = spec.format_for(request.size or spec.default_size) or spec.default_format
        route = TEXT2VIDEO if not request.images else IMAGE2VIDEO
        body: dict[str, Any] = {
            "model_name": spec.provider_model,
            "prompt": request.prompt,
            "duration": str(request.seconds or spec.seconds.default),
            "aspect_ratio": fmt.provider_value,
            "mode": request.mode or spec.default_mode,
            "external_task_id": create_key,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.cfg_scale is not None:
            body["cfg_scale"] = request.cfg_scale
        if request.camera_control is not None:
            body["camera_control"] = request.camera_control.model_dump(exclude_none=True)
        for field, image in zip(("image", "image_tail"), request.images, strict=False):
            body[field] = image.url if image.url is not None else base64.b64encode(image.data or b"").decode("ascii")
        answer = self.http.create(f"/kling/v1/videos/{route}", json=body, classify=classify_kling_error)
        envelope = self._envelope(answer)
        data = envelope.get("data") or {}
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not task_id:
            raise ProviderError("Kling accepted the task but its answer carries no task_id", details={"body": envelope})
        return ProviderTask(
            task_id=str(task_id),
            model=spec.id,
            dialect=self.dialect,
            route=route,
            submitted_at=self.clock(),
            raw=envelope,
        )

    def poll(self, task: ProviderTask) -> TaskState:
        answer = self.http.read(
            "GET",
            f"/kling/v1/videos/{task.route or TEXT2VIDEO}/{task.task_id}",
            classify=classify_kling_error,
            accept_statuses=frozenset({400, 404}),
        )
        if mentions_task_not_exist(answer.body) or kling_code(answer.body) == TASK_NOT_FOUND:
            return self.not_found_state(task, answer.body)
        return normalize_kling(self._envelope(answer))

    def reconcile(self, create_key: str, request: VideoRequest) -> ProviderTask | None:
        """Kling's task query takes the external_task_id in place of the task id."""
        route = TEXT2VIDEO if not request.images else IMAGE2VIDEO
        answer = self.http.read(
            "GET",
            f"/kling/v1/videos/{route}/{create_key}",
            classify=classify_kling_error,
            accept_statuses=frozenset({400, 404}),
        )
        data = answer.body.get("data") if isinstance(answer.body, dict) else None
        if not answer.ok or kling_code(answer.body) not in (0, None) or not isinstance(data, dict):
            return None
        if not data.get("task_id"):
            return None
        return ProviderTask(
            task_id=str(data["task_id"]),
            model=request.model,
            dialect=self.dialect,
            route=route,
            submitted_at=self.clock(),
            raw=answer.body,
        )

    @staticmethod
    def _envelope(answer: ProviderAnswer) -> dict[str, Any]:
        body = answer.json_object() if answer.ok else answer.body
        if not answer.ok or kling_code(body) not in (0, None):
            raise classify_kling_error(answer)
        assert isinstance(body, dict)
        return body


def normalize_kling(envelope: dict[str, Any]) -> TaskState:
    """A Kling task query (`{"code":0,"data":{...}}`) as a TaskState. Kling reports no progress."""
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise ProviderError("Kling's answer has no task data", details={"body": envelope})
    word = str(data.get("task_status") or "")
    status = status_of(word)
    if status is None:
        return unknown_status_state(word, envelope)
    if status is TaskStatus.SUCCEEDED:
        videos = (data.get("task_result") or {}).get("videos") or []
        url = videos[0].get("url") if videos and isinstance(videos[0], dict) else None
        if not url:
            raise ProviderError("Kling says the task succeeded but gives no video URL", details={"body": envelope})
        return TaskState(status=status, provider_status=word, progress=100, output_url=str(url), raw=envelope)
    if status is TaskStatus.FAILED:
        reason = data.get("task_status_msg") or data.get("task_result")
        message = reason if isinstance(reason, str) else None
        return failed_state(word, None, message, envelope)
    if status is TaskStatus.CANCELLED:
        return TaskState(
            status=status,
            provider_status=word,
            error_code="cancelled",
            error_message="The provider cancelled the task.",
            raw=envelope,
        )
    return TaskState(status=status, provider_status=word, raw=envelope)
