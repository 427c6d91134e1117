"""The events a job emits on the product's EventBridge bus: exactly one per terminal job.

Schemas: docs/events/video-generation-completed.json and video-generation-failed.json (generated from these
models; a test keeps them current).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from functions.common.errors import TransientAwsError
from functions.common.jobs import JobRecord, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

EVENT_SOURCE = "videogen"
COMPLETED = "Video Generation Completed"
FAILED = "Video Generation Failed"
DETAIL_VERSION = "1"


class ErrorDetail(BaseModel):
    code: str
    message: str


class Timings(BaseModel):
    created_at: float
    submitted_at: float | None = None
    provider_completed_at: float | None = None
    stored_at: float | None = None
    finished_at: float | None = None
    total_seconds: float | None = None


class VideoEventDetail(BaseModel):
    """The detail of both events; a failed job has ``error`` and no S3 fields."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["1"] = "1"
    event_id: str
    job_id: str
    status: Literal["completed", "failed", "cancelled"]
    model: str
    attempts: list[str]
    """The models tried, in order (more than one after a fallback)."""
    s3_uri: str | None = None
    bucket: str | None = None
    key: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    seconds: int | None = None
    size: str | None = None
    cost_usd: float | None = None
    timings: Timings
    error: ErrorDetail | None = None
    metadata: dict[str, str] = {}

    @property
    def detail_type(self) -> str:
        return COMPLETED if self.status == "completed" else FAILED


def event_detail_for(record: JobRecord, event_id: str) -> VideoEventDetail:
    assert record.status.is_terminal, record.status
    request = record.request
    finished = record.finished_at
    return VideoEventDetail(
        event_id=event_id,
        job_id=record.job_id,
        status=record.status.value,
        model=record.model,
        attempts=[attempt.model for attempt in record.attempts] or [record.model],
        s3_uri=record.s3_uri if record.status is JobStatus.COMPLETED else None,
        bucket=record.s3_bucket if record.status is JobStatus.COMPLETED else None,
        key=record.s3_key if record.status is JobStatus.COMPLETED else None,
        bytes=record.bytes,
        sha256=record.sha256,
        seconds=request.get("seconds"),
        size=request.get("size"),
        cost_usd=record.cost_usd,
        timings=Timings(
            created_at=record.created_at,
            submitted_at=record.submitted_at,
            provider_completed_at=record.provider_completed_at,
            stored_at=record.stored_at,
            finished_at=finished,
            total_seconds=round(finished - record.created_at, 3) if finished else None,
        ),
        error=ErrorDetail(code=record.error_code or "provider_error", message=record.error_message or "")
        if record.status is not JobStatus.COMPLETED
        else None,
        metadata=request.get("metadata") or {},
    )


class EventPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str):
        self.client = client
        self.bus_name = bus_name

    def publish(self, detail: VideoEventDetail) -> None:
        self.put(detail.detail_type, detail.model_dump(mode="json"))

    def put(self, detail_type: str, detail: dict[str, Any]) -> None:
        answer = self.client.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.bus_name,
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            entry = answer["Entries"][0]
            raise TransientAwsError(
                f"EventBridge refused the event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
