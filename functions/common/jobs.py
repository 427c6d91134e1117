"""The job record (the source of truth the API reads) and its small DynamoDB repository.

The record is created before anything is sent to a provider. Every step of the execution writes to it, and
transitions only move forward: each write is conditional on the statuses it may come from, so a late or
retried step cannot move a finished job back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from functions.common.errors import DuplicateJobError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class JobStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    IN_PROGRESS = "in_progress"
    STORING = "storing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset(JobStatus) - TERMINAL_STATUSES

ALLOWED_FROM: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.SUBMITTING: frozenset({JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.IN_PROGRESS}),
    JobStatus.IN_PROGRESS: frozenset({JobStatus.SUBMITTING, JobStatus.IN_PROGRESS}),
    JobStatus.STORING: frozenset({JobStatus.IN_PROGRESS, JobStatus.STORING}),
    JobStatus.COMPLETED: frozenset({JobStatus.STORING}),
    JobStatus.FAILED: ACTIVE_STATUSES,
    JobStatus.CANCELLED: ACTIVE_STATUSES,
}
"""to -> the statuses a job may be in for that write. IN_PROGRESS -> SUBMITTING is a fallback to the next model."""


class Attempt(BaseModel):
    """One provider task tried for this job: the first model, then each fallback."""

    model_config = ConfigDict(extra="ignore")

    model: str
    create_started_at: float | None = None
    """Set just before the create call: a retry that finds it without a task id knows the outcome is unknown."""
    task: dict[str, Any] | None = None
    """The ProviderTask, once the provider accepted the create."""
    error_code: str | None = None
    error_message: str | None = None


class WebhookAttempt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: float
    status: int | None = None
    error: str | None = None


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str
    owner: str = "local"
    status: JobStatus = JobStatus.QUEUED
    progress: int = 0
    model: str
    request: dict[str, Any]
    """The validated VideoRequest as JSON; images are URLs or S3 keys, never bytes (item size, payload limits)."""
    attempts: list[Attempt] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    submitted_at: float | None = None
    provider_completed_at: float | None = None
    stored_at: float | None = None
    finished_at: float | None = None
    poll_count: int = 0
    next_poll_at: float | None = None
    cost_usd: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    s3_bucket: str | None = None
    s3_key: str | None = None
    manifest_key: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    event_id: str | None = None
    event_lease_until: float | None = None
    event_emitted_at: float | None = None
    webhook_state: Literal["delivered", "retrying", "given_up"] | None = None
    webhook_attempts: list[WebhookAttempt] = Field(default_factory=list)
    webhook_error: str | None = None
    deleted_at: float | None = None
    expires_at: int | None = None
    """TTL (epoch seconds): DynamoDB removes the record of a deleted job after this."""
    batch_id: str | None = None
    """Set for a job started from a line of an inbox batch (functions/common/batches.py)."""
    batch_line: int | None = None
    """That line's 1-based number in the batch file."""

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def s3_uri(self) -> str | None:
        return f"s3://{self.s3_bucket}/{self.s3_key}" if self.s3_bucket and self.s3_key else None


class StaleTransitionError(Exception):
    """The job was not in a status that write may come from (typically: it already finished). Not a user error."""

    def __init__(self, job_id: str, to: JobStatus):
        super().__init__(f"job {job_id} cannot move to {to.value} from its current status")
        self.job_id = job_id
        self.to = to


def to_dynamo(value: Any) -> Any:
    """JSON-compatible data as DynamoDB wants it (floats as Decimal)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    """DynamoDB data back to plain JSON types (Decimal as int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


class JobRepository:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time):
        self.table = table
        self.clock = clock

    def create(self, record: JobRecord) -> None:
        """Put the record; a job id that already exists is refused."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.table.put_item(
                Item=to_dynamo(record.model_dump(mode="json", exclude_none=True)),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise DuplicateJobError(f"job {record.job_id} already exists", param="id") from exc
            raise

    def get(self, job_id: str) -> JobRecord | None:
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return JobRecord.model_validate(from_dynamo(item)) if item else None

    def require(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record is None:
            raise LookupError(f"job {job_id} has no record")
        return record

    def transition(self, job_id: str, to: JobStatus, **changes: Any) -> JobRecord:
        """Move the job to ``to`` and write ``changes``, only from a status ALLOWED_FROM permits."""
        allowed = sorted(ALLOWED_FROM[to])
        condition = "#status IN (" + ", ".join(f":from{i}" for i in range(len(allowed))) + ")"
        values = {f":from{i}": status.value for i, status in enumerate(allowed)}
        return self._update(job_id, {"status": to.value, **changes}, condition, values, to)

    def update(self, job_id: str, *, expect: JobStatus, **changes: Any) -> JobRecord:
        """Write ``changes`` only while the job is still in ``expect``."""
        return self._update(job_id, changes, "#status = :expected", {":expected": expect.value}, expect)

    def claim_event(self, job_id: str, event_id: str, *, now: float, lease_seconds: float = 60) -> bool:
        """Take the right to emit this job's one terminal event, for ``lease_seconds``.

        False when the event was already emitted, or another finalizer holds a live lease (a crashed one's
        lease runs out, so its event is never lost).
        """
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET event_id = :event_id, event_lease_until = :until",
                ConditionExpression="attribute_not_exists(event_emitted_at) AND "
                "(attribute_not_exists(event_lease_until) OR event_lease_until < :now)",
                ExpressionAttributeValues=to_dynamo(
                    {":event_id": event_id, ":until": now + lease_seconds, ":now": now}
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_event_emitted(self, job_id: str) -> None:
        self.table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET event_emitted_at = :now",
            ExpressionAttributeValues={":now": to_dynamo(self.clock())},
        )

    def _update(
        self, job_id: str, changes: dict[str, Any], condition: str, values: dict[str, Any], to: JobStatus
    ) -> JobRecord:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        names = {"#status": "status"}
        sets, removes = [], []
        for index, (field, value) in enumerate(changes.items()):
            names[f"#f{index}"] = field
            if value is None:  # absent, not NULL: conditions such as attribute_not_exists stay meaningful
                removes.append(f"#f{index}")
                continue
            values[f":v{index}"] = to_dynamo(to_jsonable_python(value))
            sets.append(f"#f{index} = :v{index}")
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            answer = self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(job_id) AND ({condition})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleTransitionError(job_id, to) from exc
            raise
        return JobRecord.model_validate(from_dynamo(answer["Attributes"]))
