"""The events a job emits on the product's EventBridge bus: exactly one per terminal job.

A request rejected before it became a job (an invalid inbox object, batch line or requested event) is reported
with the same Failed event: ``job_id`` is null and ``source`` says which request was rejected.

Schemas: docs/events/video-generation-completed.json and video-generation-failed.json (generated from these
models; a test keeps them current). The batch event and the requested event: docs/events-and-inbox.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.common.errors import TransientAwsError
from functions.common.jobs import JobRecord, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

EVENT_SOURCE = "videogen"
COMPLETED = "Video Generation Completed"
FAILED = "Video Generation Failed"
REQUESTED = "Video Generation Requested"
"""Put on the product's bus (any source) to start a job: the detail is the request (functions/intake)."""
BATCH_COMPLETED = "Video Batch Completed"
"""Once per inbox batch (.jsonl), when every line is accounted for (functions/common/batches.py)."""
DETAIL_VERSION = "1"


def _absent_if_none() -> Any:
    """An optional field left out of the event when it is None (rather than sent as null)."""
    return Field(default=None, exclude_if=lambda value: value is None)


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None = _absent_if_none()
    """The field at fault, for a rejected request (absent otherwise)."""


class RequestSource(BaseModel):
    """Where a request came from when it did not come through the API: an inbox object (a line of it, for a
    batch) or a "Video Generation Requested" event. Only the fields that apply are present."""

    model_config = ConfigDict(extra="forbid")

    bucket: str | None = _absent_if_none()
    key: str | None = _absent_if_none()
    batch_id: str | None = _absent_if_none()
    line: int | None = _absent_if_none()
    """1-based line number in the batch file."""
    event_id: str | None = _absent_if_none()
    """The id of the "Video Generation Requested" event."""
    event_source: str | None = _absent_if_none()
    """That event's source."""


class Timings(BaseModel):
    created_at: float
    submitted_at: float | None = None
    provider_completed_at: float | None = None
    stored_at: float | None = None
    finished_at: float | None = None
    total_seconds: float | None = None


class VideoEventDetail(BaseModel):
    """The detail of both events; a failed job has ``error`` and no S3 fields. A request rejected before it
    became a job has ``job_id`` null, ``error`` (with ``param``) and ``source``."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["1"] = "1"
    event_id: str
    job_id: str | None
    """Null only for a rejected request: no job was created and nothing was sent to a provider."""
    status: Literal["completed", "failed", "cancelled"]
    model: str | None
    """The requested model; null when a rejected request named none that could be read."""
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
    source: RequestSource | None = _absent_if_none()
    """A job of an inbox batch: batch_id and line. A rejected request: what was rejected. Absent otherwise."""

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
        source=RequestSource(batch_id=record.batch_id, line=record.batch_line) if record.batch_id else None,
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
