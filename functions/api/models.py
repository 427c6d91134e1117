"""The OpenAI Videos API's shapes (Video, list, deleted, error), plus videogen's extension fields."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.common.jobs import JobRecord, JobStatus
from functions.providers.catalog import Catalog

PUBLIC_STATUS: dict[JobStatus, Literal["queued", "in_progress", "completed", "failed"]] = {
    JobStatus.QUEUED: "queued",
    JobStatus.SUBMITTING: "queued",
    JobStatus.IN_PROGRESS: "in_progress",
    JobStatus.STORING: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """OpenAI's Video object; s3_uri, bytes, sha256, cost_usd, attempts and provider are videogen's."""

    model_config = ConfigDict(json_schema_extra={"title": "Video"})

    id: str
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = Field(default=None, description="When a download link issued now stops working.")
    seconds: str
    size: str
    prompt: str
    remixed_from_video_id: str | None = None
    error: VideoError | None = None
    s3_uri: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    cost_usd: float | None = None
    attempts: list[str] = []
    provider: str = "cometapi"
    metadata: dict[str, str] | None = None

    @classmethod
    def of(cls, record: JobRecord, catalog: Catalog, *, now: float, content_ttl: int) -> Video:
        request = record.request
        spec = catalog.get(record.model)
        completed = record.status is JobStatus.COMPLETED
        error = None
        if record.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            error = VideoError(code=record.error_code or "provider_error", message=record.error_message or "")
        return cls(
            id=record.job_id,
            model=record.model,
            status=PUBLIC_STATUS[record.status],
            progress=record.progress,
            created_at=int(record.created_at),
            completed_at=int(record.finished_at) if completed and record.finished_at else None,
            expires_at=int(now + content_ttl) if completed else None,
            seconds=str(request.get("seconds") or (spec.seconds.default if spec else "")),
            size=str(request.get("size") or ""),
            prompt=str(request.get("prompt") or ""),
            error=error,
            s3_uri=record.s3_uri,
            bytes=record.bytes,
            sha256=record.sha256,
            cost_usd=record.cost_usd,
            attempts=[attempt.model for attempt in record.attempts] or [record.model],
            provider=f"cometapi/{spec.dialect.value}" if spec else "cometapi",
            metadata=request.get("metadata"),
        )


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedVideo(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class CreateVideoBody(BaseModel):
    """POST /v1/videos, as JSON or multipart/form-data. OpenAI's fields plus videogen's extensions."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    model: str = Field(default="sora-2", description="A videogen model id (see `videogen models`).")
    seconds: str | int | None = None
    size: str | None = None
    input_reference: Any = Field(
        default=None,
        description='An uploaded image file (multipart), or {"image_url": "https://..."}; '
        "a list for first and last frame.",
    )
    negative_prompt: str | None = None
    cfg_scale: float | None = None
    camera_control: dict[str, Any] | None = None

    @field_validator("camera_control", "metadata", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        """A form field may carry an object as JSON text."""
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    mode: str | None = None
    aspect_ratio: str | None = None
    seed: int | None = None
    callback_url: str | None = None
    metadata: dict[str, str] | None = None
    fallback_models: list[str] | str | None = None
    poll_interval_seconds: int | None = None
    max_wait_seconds: int | None = None
