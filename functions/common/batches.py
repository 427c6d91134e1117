"""Inbox batches: one .jsonl object, one job per request line, one results file and one event at the end.

The batch record is an item of the jobs table under ``~batch:<batch_id>`` (never a job id: job ids match
``[A-Za-z0-9_-]``), like the provider slots of concurrency.py. A rejected line's reason is kept under
``~batch:<batch_id>#<line>``; a started line's outcome is its job's record (the job id is derived from the batch
id and the line number, so it can always be found again). None of these items has an ``owner`` attribute, so
they stay out of the ``by_owner`` index the API lists jobs from.

Every request line is accounted for exactly once, by one conditional UpdateItem that adds the line number to
the ``accounted`` set and increments its counter (``ADD``), refused if the set already holds it: a retried
step, a Finalize running twice or a cancel beside it can never count a line twice. Lines are accounted when
they are rejected (StartLine) and when their job ends (``job_finished``, called by Finalize and by cancel).

The batch completes exactly once: when it is sealed (every line was read and handed out: the state machine's
Seal step) and every line is accounted for, whichever of Seal and the last job's Finalize sees that state
first claims the completion in the record (a conditional write with a lease, like a job's terminal event),
writes ``batches/{batch_id}/results.jsonl`` (one line per request line, in line order) and emits one
``Video Batch Completed`` event, then marks the batch completed.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.common.errors import TransientAwsError
from functions.common.events import BATCH_COMPLETED, ErrorDetail, RequestSource
from functions.common.jobs import JobRecord, JobStatus, from_dynamo, to_dynamo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

    from functions.common.workflow import WorkflowDeps

BATCH_KEY_PREFIX = "~batch:"
RESULTS_PREFIX = "batches/"
COMPLETION_LEASE_SECONDS = 120
"""How long a claimed completion is exclusive; it must exceed the completion's own run time (seconds for a
10,000-line batch). A completer that died is replaced by the next caller after it."""
BATCH_GET_LIMIT = 100
UNPROCESSED_RETRIES = 8
JOB_RESULT_FIELDS = ("job_id", "status", "s3_bucket", "s3_key", "error_code", "error_message")
REJECTION_FIELDS = ("job_id", "line", "error")

LineStatus = Literal["completed", "failed", "cancelled", "rejected"]
COUNTER_OF: dict[LineStatus, str] = {
    "completed": "completed_count",
    "failed": "failed_count",
    "cancelled": "failed_count",
    "rejected": "rejected_count",
}
"""A cancelled job counts as failed in the batch's counts (its results line says ``cancelled``)."""


def batch_id_for(bucket: str, key: str, etag: str) -> str:
    """One id per uploaded object version: a redelivered S3 event finds the same batch (and execution name)."""
    return "batch_" + hashlib.sha256(f"s3://{bucket}/{key}#{etag}".encode()).hexdigest()[:32]


def line_job_id(batch_id: str, line: int) -> str:
    """The job id of a batch line: the same on every retry of its step, so a line never starts two jobs."""
    return "video_" + hashlib.sha256(f"{batch_id}:line:{line}".encode()).hexdigest()[:32]


def batch_key(batch_id: str) -> str:
    return f"{BATCH_KEY_PREFIX}{batch_id}"


def rejected_line_key(batch_id: str, line: int) -> str:
    return f"{BATCH_KEY_PREFIX}{batch_id}#{line}"


def results_key(batch_id: str) -> str:
    return f"{RESULTS_PREFIX}{batch_id}/results.jsonl"


def batch_event_id(batch_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"videogen:batch:{batch_id}"))


class BatchRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch_id: str
    bucket: str
    key: str
    etag: str
    batch_owner: str
    """The owner of the batch's jobs (not ``owner``: that would put this item in the by_owner index)."""
    total: int
    """Request lines (blank lines are not requests)."""
    lines_index_key: str | None = None
    """The object holding each line's byte offsets (written by ReadBatch, removed on completion)."""
    created_at: float
    sealed: bool = False
    accounted: set[int] = Field(default_factory=set)
    rejected_lines: set[int] = Field(default_factory=set)
    completed_count: int = 0
    failed_count: int = 0
    rejected_count: int = 0
    completion_lease_until: float | None = None
    completed_at: float | None = None
    results_key: str | None = None

    @property
    def settled(self) -> bool:
        """Sealed, and every request line accounted for: time to complete."""
        return self.sealed and len(self.accounted) >= self.total


class LineResult(BaseModel):
    """One line of results.jsonl."""

    line: int
    job_id: str | None
    status: LineStatus
    s3_uri: str | None = None
    error: ErrorDetail | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {"line": self.line, "job_id": self.job_id, "status": self.status}
        if self.s3_uri is not None:
            body["s3_uri"] = self.s3_uri
        if self.error is not None:
            body["error"] = {"code": self.error.code, "message": self.error.message}
            if self.status == "rejected":
                body["error"]["param"] = self.error.param
        return json.dumps(body, separators=(",", ":"))


class BatchCompletedDetail(BaseModel):
    """The detail of the ``Video Batch Completed`` event (docs/events-and-inbox.md)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["1"] = "1"
    event_id: str
    batch_id: str
    owner: str
    source: RequestSource
    """The batch file: bucket and key."""
    total: int
    completed: int
    failed: int
    """Failed or cancelled jobs."""
    rejected: int
    """Lines that never became a job (invalid, or could not be started); see results_uri for why."""
    results_uri: str
    created_at: float
    completed_at: float


class BatchTracker:
    """The batch record and its accounting. Shares the workflow's collaborators (jobs table, S3, events)."""

    def __init__(self, deps: WorkflowDeps):
        self.deps = deps

    @property
    def table(self) -> Table:
        return self.deps.jobs.table

    # --- the record -----------------------------------------------------------------------------------------

    def open(self, batch: BatchRecord) -> BatchRecord:
        """Create the batch record; an existing one (a retried ReadBatch) is returned as it is."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        item = {"job_id": batch_key(batch.batch_id), **batch.model_dump(mode="json", exclude_none=True)}
        for empty_set in ("accounted", "rejected_lines"):  # DynamoDB has no empty sets: ADD creates them
            item.pop(empty_set, None)
        try:
            self.table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self.require(batch.batch_id)
        return batch

    def get(self, batch_id: str) -> BatchRecord | None:
        item = self.table.get_item(Key={"job_id": batch_key(batch_id)}, ConsistentRead=True).get("Item")
        return _batch(item) if item else None

    def require(self, batch_id: str) -> BatchRecord:
        batch = self.get(batch_id)
        if batch is None:
            raise LookupError(f"batch {batch_id} has no record")
        return batch

    def seal(self, batch_id: str) -> BatchRecord:
        """Every line has been handed out (the Map is over): from now on, the last accounted line completes it."""
        answer = self.table.update_item(
            Key={"job_id": batch_key(batch_id)},
            UpdateExpression="SET sealed = :true",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues={":true": True},
            ReturnValues="ALL_NEW",
        )
        return _batch(answer["Attributes"])

    # --- accounting -----------------------------------------------------------------------------------------

    def rejection_of(self, batch_id: str, line: int) -> ErrorDetail | None:
        item = self.table.get_item(Key={"job_id": rejected_line_key(batch_id, line)}, ConsistentRead=True).get("Item")
        return ErrorDetail.model_validate(from_dynamo(item["error"])) if item else None

    def reject_line(self, batch_id: str, line: int, error: ErrorDetail) -> BatchRecord | None:
        """Record why a line never became a job, account it, and complete the batch if it was the last."""
        self.table.put_item(
            Item=to_dynamo(
                {
                    "job_id": rejected_line_key(batch_id, line),
                    "batch_id": batch_id,
                    "line": line,
                    "error": error.model_dump(exclude_none=True),
                }
            )
        )
        return self._account_and_complete(batch_id, line, "rejected")

    def job_finished(self, record: JobRecord) -> BatchRecord | None:
        """A batch job ended (Finalize, or a cancel): account its line, complete the batch if it was the last."""
        if record.batch_id is None or record.batch_line is None:
            return None
        if not record.status.is_terminal:
            raise ValueError(f"job {record.job_id} is still {record.status.value}")
        status: LineStatus = record.status.value  # type: ignore[assignment]
        return self._account_and_complete(record.batch_id, record.batch_line, status)

    def _account_and_complete(self, batch_id: str, line: int, status: LineStatus) -> BatchRecord | None:
        batch = self._account(batch_id, line, status)
        if batch is not None:
            self.complete_if_settled(batch)
        return batch

    def _account(self, batch_id: str, line: int, status: LineStatus) -> BatchRecord | None:
        """Add the line to ``accounted`` and count it, once. Returns the batch as it is now (None: no batch)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        adds = "ADD accounted :line, #counter :one" + (", rejected_lines :line" if status == "rejected" else "")
        try:
            answer = self.table.update_item(
                Key={"job_id": batch_key(batch_id)},
                UpdateExpression=adds,
                ConditionExpression="attribute_exists(job_id) AND NOT contains(accounted, :n)",
                ExpressionAttributeNames={"#counter": COUNTER_OF[status]},
                ExpressionAttributeValues={":line": {line}, ":one": 1, ":n": line},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self.get(batch_id)  # accounted already (or no such batch: None)
        return _batch(answer["Attributes"])

    # --- completion -----------------------------------------------------------------------------------------

    def complete_if_settled(self, batch: BatchRecord) -> bool:
        """Complete the batch if it is settled and nobody did yet. True if this call completed it."""
        if batch.completed_at is not None or not batch.settled:
            return False
        now = self.deps.clock()
        if not self._claim_completion(batch.batch_id, now):
            if self.require(batch.batch_id).completed_at is not None:
                return False
            raise TransientAwsError(f"another step is completing batch {batch.batch_id}; retrying")
        results = list(self.results(batch))
        key = results_key(batch.batch_id)
        body = "".join(result.to_json() + "\n" for result in results).encode()
        self.deps.s3.put_object(Bucket=batch.bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        statuses = [result.status for result in results]
        detail = BatchCompletedDetail(
            event_id=batch_event_id(batch.batch_id),
            batch_id=batch.batch_id,
            owner=batch.batch_owner,
            source=RequestSource(bucket=batch.bucket, key=batch.key),
            total=batch.total,
            completed=statuses.count("completed"),
            failed=statuses.count("failed") + statuses.count("cancelled"),
            rejected=statuses.count("rejected"),
            results_uri=f"s3://{batch.bucket}/{key}",
            created_at=batch.created_at,
            completed_at=now,
        )
        self.deps.events.put(BATCH_COMPLETED, detail.model_dump(mode="json"))
        self.table.update_item(
            Key={"job_id": batch_key(batch.batch_id)},
            UpdateExpression="SET completed_at = :now, results_key = :key",
            ExpressionAttributeValues=to_dynamo({":now": now, ":key": key}),
        )
        if batch.lines_index_key:
            self.deps.s3.delete_object(Bucket=batch.bucket, Key=batch.lines_index_key)
        return True

    def _claim_completion(self, batch_id: str, now: float) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.table.update_item(
                Key={"job_id": batch_key(batch_id)},
                UpdateExpression="SET completion_lease_until = :until",
                ConditionExpression="attribute_not_exists(completed_at) AND "
                "(attribute_not_exists(completion_lease_until) OR completion_lease_until < :now)",
                ExpressionAttributeValues=to_dynamo({":until": now + COMPLETION_LEASE_SECONDS, ":now": now}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def results(self, batch: BatchRecord) -> Iterator[LineResult]:
        """One result per accounted line, in line order: a rejected line's reason, else its job's outcome."""
        lines = sorted(batch.accounted)
        rejected = sorted(batch.rejected_lines)
        reasons = {
            int(item["line"]): ErrorDetail.model_validate(item["error"])
            for item in self.items([rejected_line_key(batch.batch_id, line) for line in rejected], REJECTION_FIELDS)
        }
        started = [line_job_id(batch.batch_id, line) for line in lines if line not in reasons]
        jobs = {str(item["job_id"]): item for item in self.items(started, JOB_RESULT_FIELDS)}
        for line in lines:
            if line in reasons:
                yield LineResult(line=line, job_id=None, status="rejected", error=reasons[line])
                continue
            job_id = line_job_id(batch.batch_id, line)
            job = jobs.get(job_id)
            if job is None:  # accounted as finished, yet no record: deleted since (its TTL ran out)
                yield LineResult(
                    line=line,
                    job_id=job_id,
                    status="failed",
                    error=ErrorDetail(code="not_found", message="The job's record no longer exists."),
                )
                continue
            status = JobStatus(job["status"])
            if status is JobStatus.COMPLETED:
                yield LineResult(
                    line=line, job_id=job_id, status="completed", s3_uri=f"s3://{job['s3_bucket']}/{job['s3_key']}"
                )
            else:
                yield LineResult(
                    line=line,
                    job_id=job_id,
                    status="cancelled" if status is JobStatus.CANCELLED else "failed",
                    error=ErrorDetail(
                        code=str(job.get("error_code") or "provider_error"), message=str(job.get("error_message") or "")
                    ),
                )

    def items(self, keys: Iterable[str], fields: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        """These attributes of the items with these ``job_id`` keys (those that exist), read consistently, 100
        keys per request; keys DynamoDB leaves unprocessed (throttling) are asked again after a short pause."""
        client = self.table.meta.client  # the resource's client: it (de)serializes attribute values itself
        name = self.table.name
        projection = {
            "ProjectionExpression": ", ".join(f"#f{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": {f"#f{i}": field for i, field in enumerate(fields)},
        }
        pending: list[dict[str, Any]] = [{"job_id": key} for key in dict.fromkeys(keys)]
        while pending:
            chunk, pending = pending[:BATCH_GET_LIMIT], pending[BATCH_GET_LIMIT:]
            request: dict[str, Any] = {name: {"Keys": chunk, "ConsistentRead": True, **projection}}
            for attempt in range(UNPROCESSED_RETRIES + 1):
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(name, []):
                    yield from_dynamo(item)
                request = dict(answer.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.random())  # noqa: S311 - jitter, not crypto
            else:
                raise TransientAwsError(f"DynamoDB left keys of batch items unprocessed {UNPROCESSED_RETRIES} times")


def job_finished(record: JobRecord, deps: WorkflowDeps) -> None:
    """Finalize and cancel call this for a job with a ``batch_id``, after its terminal event: the line is
    accounted for (once), and the batch completes if it was its last. Idempotent; raises TransientAwsError
    only while another step holds the batch's completion (the caller's retry then finds it completed)."""
    if record.batch_id is not None:
        BatchTracker(deps).job_finished(record)


def _batch(item: dict[str, Any]) -> BatchRecord:
    return BatchRecord.model_validate(from_dynamo(item))
