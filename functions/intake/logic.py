"""Jobs started by events: S3 inbox objects and "Video Generation Requested" events; the inbox batch steps.

- ``inbox/**/*.json``: one request, the body of POST /v1/videos. Validated before anything is submitted; an
  invalid one gets ``<name>.error.json`` written beside it and a Failed event (``job_id`` null, ``source``).
- ``inbox/**/*.jsonl``: a batch, one request per line, run by statemachine/video_batch.asl.json: ReadBatch
  (``read_batch``), one StartLine per line (``start_line``), Seal (``seal``); functions/common/batches.py
  keeps the accounting and completes the batch.
- A "Video Generation Requested" event on the product's bus (any source): the detail is the request, plus an
  optional ``owner``.

EventBridge delivers at least once, so every id is derived from what was delivered: a job from the object's
bucket, key and ETag (or from the event's id), a batch likewise, a batch line's job from the batch id and the
line number. A redelivery finds the job (or the batch's execution) already there and starts nothing.

The owner of an inbox object is the first path segment under the prefix (``inbox/<owner>/...``), or
``inbox`` for an object directly under it; an image given by ``s3_key`` must be an inbox object of the same
owner. docs/events-and-inbox.md is the user's view of all this.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.api.logic import parse_create_body
from functions.common.batches import (
    RESULTS_PREFIX,
    BatchRecord,
    BatchTracker,
    batch_id_for,
    line_job_id,
)
from functions.common.create_body import upload_images
from functions.common.errors import (
    DuplicateJobError,
    InternalError,
    InvalidRequestError,
    TransientAwsError,
    VideogenError,
)
from functions.common.events import REQUESTED, ErrorDetail, RequestSource, Timings, VideoEventDetail
from functions.common.images import MAX_IMAGE_BYTES
from functions.common.job_start import start_job
from functions.common.jobs import JobRecord
from functions.common.settings import WorkflowSettings
from functions.common.terminal_event import emit_terminal_event
from functions.common.url_safety import Resolver
from functions.common.video_request import (
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
    ImageInput,
)
from functions.common.workflow import WorkflowDeps

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
ERROR_SUFFIX = ".error.json"
ROOT_OWNER = "inbox"
"""The owner of objects directly under the inbox prefix."""
OWNER_PATTERN = re.compile(r"[^\x00-\x1f\x7f/]{1,128}")
OFFSET = struct.Struct(">Q")
"""The lines index: one unsigned 64-bit big-endian byte offset per line start, then the file's size."""
READ_CHUNK_BYTES = 1024 * 1024


class IntakeSettings(WorkflowSettings):
    """The intake and batch functions: the workflow's names plus both state machines and the inbox's limits."""

    state_machine_arn: str
    batch_state_machine_arn: str
    inbox_prefix: str = "inbox/"
    max_request_bytes: int = 10 * 1024 * 1024
    """A single request object, or one line of a batch."""
    max_batch_bytes: int = 100 * 1024 * 1024
    max_batch_lines: int = 10_000
    """Bounded by Step Functions' 256 KB payload (the Map's list of line numbers) and the 400 KB batch record."""
    batch_max_concurrency: int = 10
    """How many StartLine steps of one batch run at once (MaxConcurrencyPath); jobs themselves run unbounded,
    apart from PROVIDER_CONCURRENCY."""
    event_owner: str = "events"
    """The owner of a requested event's job when its detail has no ``owner``."""


class EventEnvelope(BaseModel):
    """The EventBridge event as a rule hands it to its target."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: Any = None


class IntakeResult(BaseModel):
    outcome: Literal["started", "duplicate", "rejected", "batch_started", "ignored"]
    job_id: str | None = None
    batch_id: str | None = None
    reason: str | None = None


class BatchInput(BaseModel):
    """The batch execution's input (set by the intake), and what each step passes on."""

    model_config = ConfigDict(extra="ignore")

    batch_id: str
    bucket: str
    key: str
    etag: str
    owner: str


class LineInput(BatchInput):
    line: int


class SealInput(BatchInput):
    lines: list[int] = []
    error: dict[str, Any] | None = None
    """Set when the Map state itself failed (its Catch): the reason given to lines that never started."""


def inbox_job_id(bucket: str, key: str, etag: str) -> str:
    return "video_" + _digest(f"s3://{bucket}/{key}#{etag}")


def event_job_id(event_id: str) -> str:
    return "video_" + _digest(f"event:{event_id}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def error_key_for(key: str) -> str:
    """``inbox/a/cat.json`` -> ``inbox/a/cat.error.json`` (``.jsonl`` likewise)."""
    stem = key.removesuffix(".jsonl") if key.endswith(".jsonl") else key.removesuffix(".json")
    return stem + ERROR_SUFFIX


@dataclass
class Intake:
    settings: IntakeSettings
    deps: WorkflowDeps
    sfn: SFNClient
    resolve: Resolver | None = None
    """DNS for the URL checks (tests pass a fake one); None: the system resolver."""
    clock: Callable[[], float] = field(default=time.time)

    @property
    def bucket(self) -> str:
        return self.settings.video_bucket_name

    @property
    def tracker(self) -> BatchTracker:
        return BatchTracker(self.deps)

    # --- the intake Lambda: one EventBridge event -----------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> IntakeResult:
        envelope = EventEnvelope.model_validate(event)
        if envelope.source == S3_SOURCE and envelope.detail_type == OBJECT_CREATED:
            detail = envelope.detail if isinstance(envelope.detail, dict) else {}
            bucket = str((detail.get("bucket") or {}).get("name") or "")
            found = detail.get("object") or {}
            # AWS spells it "etag"; moto's S3 -> EventBridge notification "eTag".
            etag = str(found.get("etag") or found.get("eTag") or "").strip('"')
            return self.object_created(bucket, str(found.get("key") or ""), etag)
        if envelope.detail_type == REQUESTED:
            return self.requested(envelope)
        return IntakeResult(outcome="ignored", reason=f"not an event the intake handles: {envelope.detail_type}")

    def object_created(self, bucket: str, key: str, etag: str) -> IntakeResult:
        prefix = self.settings.inbox_prefix
        if bucket != self.bucket or not key.startswith(prefix) or not etag:
            return IntakeResult(outcome="ignored", reason=f"not an inbox object: s3://{bucket}/{key}")
        if key.endswith(ERROR_SUFFIX):  # our own reports (writing them fires Object Created too)
            return IntakeResult(outcome="ignored", reason="an error report")
        if key.endswith(".jsonl"):
            return self.start_batch(key, etag)
        if key.endswith(".json"):
            return self.single(key, etag)
        return IntakeResult(outcome="ignored", reason="neither .json nor .jsonl (an image waits to be referred to)")

    def single(self, key: str, etag: str) -> IntakeResult:
        job_id = inbox_job_id(self.bucket, key, etag)
        if (existing := self.deps.jobs.get(job_id)) is not None:
            self.settle_if_ended(existing)
            return IntakeResult(outcome="duplicate", job_id=job_id)
        if self._reported(key, etag):
            return IntakeResult(outcome="rejected", reason="already reported")
        source = RequestSource(bucket=self.bucket, key=key)
        body: Any = None
        try:
            owner = self.owner_of(key)
            body = self._read_json(key, etag)
            record, started = self.start_request(body, job_id=job_id, owner=owner)
        except _ObjectGoneError as exc:
            return IntakeResult(outcome="ignored", reason=str(exc))
        except InvalidRequestError as exc:
            self.report_rejection(exc, source, body=body, seed=f"s3://{self.bucket}/{key}#{etag}")
            self._write_error_object(key, etag, exc, source)
            return IntakeResult(outcome="rejected", reason=exc.message)
        return IntakeResult(outcome="started" if started else "duplicate", job_id=record.job_id)

    def requested(self, envelope: EventEnvelope) -> IntakeResult:
        job_id = event_job_id(envelope.id)
        if (existing := self.deps.jobs.get(job_id)) is not None:
            self.settle_if_ended(existing)
            return IntakeResult(outcome="duplicate", job_id=job_id)
        source = RequestSource(event_id=envelope.id, event_source=envelope.source)
        body = envelope.detail
        try:
            if not isinstance(body, dict):
                raise InvalidRequestError("the event's detail must be a JSON object: the request")
            body = dict(body)
            owner = self._valid_owner(body.pop("owner", self.settings.event_owner))
            record, started = self.start_request(body, job_id=job_id, owner=owner)
        except InvalidRequestError as exc:
            self.report_rejection(exc, source, body=body, seed=f"event:{envelope.id}")
            return IntakeResult(outcome="rejected", reason=exc.message)
        return IntakeResult(outcome="started" if started else "duplicate", job_id=record.job_id)

    def start_batch(self, key: str, etag: str) -> IntakeResult:
        batch_id = batch_id_for(self.bucket, key, etag)
        try:
            owner = self.owner_of(key)
        except InvalidRequestError as exc:
            if not self._reported(key, etag):
                source = RequestSource(bucket=self.bucket, key=key, batch_id=batch_id)
                self.report_rejection(exc, source, body=None, seed=f"s3://{self.bucket}/{key}#{etag}")
                self._write_error_object(key, etag, exc, source)
            return IntakeResult(outcome="rejected", batch_id=batch_id, reason=exc.message)
        batch = BatchInput(batch_id=batch_id, bucket=self.bucket, key=key, etag=etag, owner=owner)
        try:
            self.sfn.start_execution(
                stateMachineArn=self.settings.batch_state_machine_arn,
                name=batch_id,
                input=batch.model_dump_json(),
            )
        except self.sfn.exceptions.ExecutionAlreadyExists:
            return IntakeResult(outcome="duplicate", batch_id=batch_id)
        except Exception as exc:
            raise TransientAwsError(f"could not start batch {batch_id} for {key}: {exc}") from exc
        return IntakeResult(outcome="batch_started", batch_id=batch_id)

    # --- one request, from any of the entry points above ----------------------------------------------------

    def start_request(
        self,
        body: Any,
        *,
        job_id: str,
        owner: str,
        batch_id: str | None = None,
        batch_line: int | None = None,
    ) -> tuple[JobRecord, bool]:
        """Validate the request (the POST /v1/videos body), upload its images, start its job.

        Returns the record and whether this call started it (False: it existed already). Raises
        InvalidRequestError, with nothing stored or submitted, for a request that cannot be run.
        """
        if not isinstance(body, dict):
            raise InvalidRequestError("a request must be a JSON object (the body of POST /v1/videos)")
        body = self._inbox_images(dict(body), owner)
        try:
            request = parse_create_body(body, catalog=self.deps.catalog, resolve=self.resolve)
        except (ValueError, TypeError) as exc:  # a value the parser did not anticipate: still the request's fault
            raise InvalidRequestError(f"the request could not be read: {str(exc)[:300]}") from None
        request = upload_images(
            request, job_id, s3=self.deps.s3, bucket=self.bucket, input_prefix=self.settings.input_prefix
        )
        try:
            record = start_job(
                request,
                jobs=self.deps.jobs,
                sfn=self.sfn,
                state_machine_arn=self.settings.state_machine_arn,
                owner=owner,
                job_id=job_id,
                clock=self.clock,
                batch_id=batch_id,
                batch_line=batch_line,
            )
        except DuplicateJobError:
            return self.deps.jobs.require(job_id), False
        return record, True

    def settle_if_ended(self, record: JobRecord) -> None:
        """A job found already ended when its request arrives again: normally its Finalize emitted its event
        (then this does nothing); but a job whose execution could not start was failed by start_job, which
        raised so that this delivery would be retried: its one terminal event is emitted here, and its batch
        line accounted. Both are idempotent."""
        if not record.status.is_terminal:
            return
        emit_terminal_event(record, self.deps)
        if record.batch_id is not None:
            self.tracker.job_finished(record)

    def owner_of(self, key: str) -> str:
        """``inbox/<owner>/...`` -> owner; an object directly under the prefix belongs to ``inbox``."""
        rest = key.removeprefix(self.settings.inbox_prefix)
        segment = rest.split("/", 1)[0] if "/" in rest else ""
        return self._valid_owner(segment or ROOT_OWNER)

    @staticmethod
    def _valid_owner(owner: Any) -> str:
        if not isinstance(owner, str) or not OWNER_PATTERN.fullmatch(owner):
            raise InvalidRequestError(
                "owner: must be 1 to 128 characters, without '/' or control characters", param="owner"
            )
        return owner

    def _inbox_images(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        """``input_reference`` items given as ``{"s3_key": "inbox/..."}`` become the image bytes (validated
        like an uploaded file, then uploaded to inputs/ like the API's)."""
        reference = body.get("input_reference")
        if reference is None:
            return body
        items = reference if isinstance(reference, list) else [reference]
        resolved: list[Any] = []
        for index, item in enumerate(items):
            if isinstance(item, dict) and "s3_key" in item:
                resolved.append(self._inbox_image(item, index, owner))
            else:
                resolved.append(item)
        body["input_reference"] = resolved if isinstance(reference, list) else resolved[0]
        return body

    def _inbox_image(self, item: dict[str, Any], index: int, owner: str) -> ImageInput:
        key = item["s3_key"]
        where = f"input_reference[{index}].s3_key"
        if len(item) != 1 or not isinstance(key, str):
            raise InvalidRequestError(f'{where}: give {{"s3_key": "<key under the inbox>"}} alone', param=where)
        prefix = self.settings.inbox_prefix
        if not key.startswith(prefix) or key.endswith("/") or self._owner_or_none(key) != owner:
            folder = prefix if owner == ROOT_OWNER else f"{prefix}{owner}/"
            raise InvalidRequestError(
                f"{where}: {key!r} is not an inbox object of this request's owner; upload the image under {folder}",
                param=where,
            )
        try:
            data = self._read(key, limit=MAX_IMAGE_BYTES, what="the image")
        except _ObjectGoneError:
            raise InvalidRequestError(
                f"{where}: {key} does not exist; upload the image before the request that refers to it", param=where
            ) from None
        return ImageInput(data=data, filename=posixpath.basename(key))

    def _owner_or_none(self, key: str) -> str | None:
        try:
            return self.owner_of(key)
        except InvalidRequestError:
            return None

    # --- rejections -----------------------------------------------------------------------------------------

    def report_rejection(self, error: VideogenError, source: RequestSource, *, body: Any, seed: str) -> None:
        """The Failed event of a request that never became a job. Its event id is derived from ``seed``, so a
        redelivered request reports with the same id (consumers de-duplicate)."""
        now = self.clock()
        model = body.get("model") if isinstance(body, dict) else None
        metadata = body.get("metadata") if isinstance(body, dict) else None
        detail = VideoEventDetail(
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"videogen:rejected:{seed}")),
            job_id=None,
            status="failed",
            model=model if isinstance(model, str) else None,
            attempts=[],
            timings=Timings(created_at=now, finished_at=now, total_seconds=0),
            error=ErrorDetail(code=error.code, message=error.message, param=error.param),
            metadata=_small_string_map(metadata),
            source=source,
        )
        self.deps.events.publish(detail)

    def _write_error_object(self, key: str, etag: str, error: InvalidRequestError, source: RequestSource) -> None:
        body = {
            "error": {"code": error.code, "message": error.message, "param": error.param},
            "source": {"bucket": source.bucket, "key": source.key},
        }
        self.deps.s3.put_object(
            Bucket=self.bucket,
            Key=error_key_for(key),
            Body=json.dumps(body, indent=2).encode(),
            ContentType="application/json",
            Metadata={"source-etag": etag},
        )

    def _reported(self, key: str, etag: str) -> bool:
        """The error object of this very version exists: a redelivered event of a rejected request."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            head = self.deps.s3.head_object(Bucket=self.bucket, Key=error_key_for(key))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return head.get("Metadata", {}).get("source-etag") == etag

    # --- reading inbox objects ------------------------------------------------------------------------------

    def _read_json(self, key: str, etag: str) -> Any:
        data = self._read(key, limit=self.settings.max_request_bytes, what="the request", etag=etag)
        return _parse_json(data, "the request")

    def _read(self, key: str, *, limit: int, what: str, etag: str | None = None) -> bytes:
        """The object's bytes, at most ``limit`` of them (InvalidRequestError beyond); _ObjectGoneError if it was
        deleted, or replaced by another version than ``etag``."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            answer = (
                self.deps.s3.get_object(Bucket=self.bucket, Key=key, IfMatch=f'"{etag}"')
                if etag
                else self.deps.s3.get_object(Bucket=self.bucket, Key=key)
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NoSuchKey", "404", "NotFound"):
                raise _ObjectGoneError(f"{key} no longer exists") from exc
            if code in ("PreconditionFailed", "412"):
                raise _ObjectGoneError(f"{key} was replaced by a newer upload (which is read on its own)") from exc
            raise
        size = answer.get("ContentLength", 0)
        if size > limit:
            answer["Body"].close()
            raise InvalidRequestError(f"{what} is {size} bytes; allowed: at most {limit} bytes")
        data: bytes = answer["Body"].read(limit + 1)
        if len(data) > limit:
            raise InvalidRequestError(f"{what} is larger than {limit} bytes; allowed: at most {limit} bytes")
        return data

    # --- the batch state machine's steps --------------------------------------------------------------------

    def read_batch(self, batch: BatchInput) -> dict[str, Any]:
        """ReadBatch: find the request lines (their byte offsets go to an index object), open the batch record.

        Returns the input plus ``outcome``: ``opened`` (with ``lines``, the request lines' numbers, and
        ``max_concurrency``), ``rejected`` (the file as a whole: error object and Failed event written) or
        ``skipped`` (the object was deleted or replaced since: a replacement is its own batch).
        """
        passed = batch.model_dump()
        source = RequestSource(bucket=batch.bucket, key=batch.key, batch_id=batch.batch_id)
        try:
            offsets, lines = self._scan_lines(batch)
            if not lines:
                raise InvalidRequestError("the batch holds no requests: give one JSON request per line")
            if len(lines) > self.settings.max_batch_lines:
                raise InvalidRequestError(
                    f"the batch has {len(lines)} requests; allowed: at most {self.settings.max_batch_lines} per file "
                    "(split it into several files)"
                )
        except _ObjectGoneError as exc:
            return {**passed, "outcome": "skipped", "reason": str(exc), "lines": []}
        except InvalidRequestError as exc:
            self.report_rejection(exc, source, body=None, seed=f"s3://{batch.bucket}/{batch.key}#{batch.etag}")
            self._write_error_object(batch.key, batch.etag, exc, source)
            return {**passed, "outcome": "rejected", "reason": exc.message, "lines": []}
        index_key = f"{RESULTS_PREFIX}{batch.batch_id}/lines.idx"
        self.deps.s3.put_object(
            Bucket=batch.bucket,
            Key=index_key,
            Body=b"".join(OFFSET.pack(offset) for offset in offsets),
            ContentType="application/octet-stream",
        )
        self.tracker.open(
            BatchRecord(
                batch_id=batch.batch_id,
                bucket=batch.bucket,
                key=batch.key,
                etag=batch.etag,
                batch_owner=batch.owner,
                total=len(lines),
                lines_index_key=index_key,
                created_at=self.clock(),
            )
        )
        return {
            **passed,
            "outcome": "opened",
            "lines": lines,
            "total": len(lines),
            "max_concurrency": self.settings.batch_max_concurrency,
        }

    def _scan_lines(self, batch: BatchInput) -> tuple[list[int], list[int]]:
        """The byte offset of every line start (plus the end), and the numbers of the non-blank lines."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            answer = self.deps.s3.get_object(Bucket=batch.bucket, Key=batch.key, IfMatch=f'"{batch.etag}"')
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"):
                raise _ObjectGoneError(f"{batch.key} was deleted or replaced before it could be read") from exc
            raise
        size = answer.get("ContentLength", 0)
        if size > self.settings.max_batch_bytes:
            answer["Body"].close()
            raise InvalidRequestError(
                f"the batch is {size} bytes; allowed: at most {self.settings.max_batch_bytes} bytes per file "
                "(split it into several files)"
            )
        offsets, requests = [0], []
        position, blank = 0, True
        for chunk in _chunks(answer["Body"]):
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                blank = blank and not piece.strip()
                if end < 0:
                    position += len(chunk) - start
                    break
                position += end + 1 - start
                if not blank:
                    requests.append(len(offsets))
                offsets.append(position)
                blank, start = True, end + 1
        if position > offsets[-1]:  # a last line without a newline
            if not blank:
                requests.append(len(offsets))
            offsets.append(position)
        return offsets, requests

    def start_line(self, line: LineInput) -> dict[str, Any]:
        """StartLine: read one line, validate it, start its job (with the batch id and line number), or record
        it as rejected with its reason. Never raises for a bad line; an AWS error raises, to be retried."""
        tracker = self.tracker
        job_id = line_job_id(line.batch_id, line.line)
        result = {"line": line.line, "job_id": job_id}
        if tracker.rejection_of(line.batch_id, line.line) is not None:
            return {**result, "job_id": None, "outcome": "rejected"}
        existing = self.deps.jobs.get(job_id)
        if existing is not None:
            self.settle_if_ended(existing)
            return {**result, "outcome": "duplicate"}
        body: Any = None
        try:
            text = self._read_line(line)
            body = _parse_json(text, f"line {line.line}")
            record, _ = self.start_request(
                body, job_id=job_id, owner=line.owner, batch_id=line.batch_id, batch_line=line.line
            )
        except (InvalidRequestError, _ObjectGoneError) as exc:
            error = exc if isinstance(exc, InvalidRequestError) else InvalidRequestError(f"line {line.line}: {exc}")
            self.reject_line(line, error, body=body)
            return {**result, "job_id": None, "outcome": "rejected"}
        self.settle_if_ended(record)
        return {**result, "outcome": "started"}

    def reject_line(self, line: LineInput, error: VideogenError, *, body: Any) -> None:
        """A line that will never be a job: its Failed event (before the record: at least once), then the
        record (which accounts it, and may complete the batch)."""
        source = RequestSource(bucket=line.bucket, key=line.key, batch_id=line.batch_id, line=line.line)
        self.report_rejection(error, source, body=body, seed=f"{line.batch_id}:line:{line.line}")
        self.tracker.reject_line(
            line.batch_id, line.line, ErrorDetail(code=error.code, message=error.message, param=error.param)
        )

    def _read_line(self, line: LineInput) -> str:
        """One line's text: its offsets from the index (one ranged GET), then its bytes (another)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        index_key = f"{RESULTS_PREFIX}{line.batch_id}/lines.idx"
        first = (line.line - 1) * OFFSET.size
        index = self.deps.s3.get_object(Bucket=line.bucket, Key=index_key, Range=f"bytes={first}-{first + 15}")
        entries = index["Body"].read()
        start, end = (OFFSET.unpack_from(entries, i * OFFSET.size)[0] for i in range(2))
        if end - start > self.settings.max_request_bytes:
            raise InvalidRequestError(
                f"line {line.line}: {end - start} bytes; allowed: at most {self.settings.max_request_bytes} bytes"
            )
        try:
            answer = self.deps.s3.get_object(
                Bucket=line.bucket, Key=line.key, Range=f"bytes={start}-{end - 1}", IfMatch=f'"{line.etag}"'
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"):
                raise _ObjectGoneError("the batch file was deleted or replaced while it was being read") from exc
            raise
        raw: bytes = answer["Body"].read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(f"line {line.line}: not UTF-8 text (byte {exc.start})") from None
        return text.removeprefix("\ufeff").rstrip("\r\n")

    def seal(self, seal: SealInput) -> dict[str, Any]:
        """Seal: the Map is over. Lines that never started a job nor were rejected (their StartLine gave up)
        are rejected now, lines whose job ended unnoticed are accounted; then the batch completes if settled."""
        tracker = self.tracker
        batch = tracker.seal(seal.batch_id)
        missing = [n for n in seal.lines if n not in batch.accounted]
        if missing:
            cause = (seal.error or {}).get("Error") or "its StartLine step failed: see the batch's Map run"
            jobs = {
                str(item["job_id"]): item
                for item in tracker.items([line_job_id(seal.batch_id, n) for n in missing], ("job_id",))
            }
            for number in missing:
                job_id = line_job_id(seal.batch_id, number)
                if job_id in jobs:
                    record = self.deps.jobs.require(job_id)
                    if record.status.is_terminal:
                        tracker.job_finished(record)
                    continue  # still running: its Finalize accounts it
                line = LineInput(**seal.model_dump(exclude={"lines", "error"}), line=number)
                error = InternalError(
                    f"line {number}: could not be started ({cause}); nothing was sent to a provider for it. "
                    "Submit it again."
                )
                self.reject_line(line, error, body=None)
            batch = tracker.require(seal.batch_id)
        completed = tracker.complete_if_settled(batch)
        return {"batch_id": seal.batch_id, "sealed": True, "completed": completed or batch.completed_at is not None}


class _ObjectGoneError(Exception):
    """The object was deleted, or replaced by a newer version, since its event (the newer one has its own)."""


def _parse_json(data: str | bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"{what}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise InvalidRequestError(f"{what}: not valid JSON ({exc})") from None


def _chunks(body: Any) -> Iterator[bytes]:
    while chunk := body.read(READ_CHUNK_BYTES):
        yield chunk


def _small_string_map(value: Any) -> dict[str, str]:
    """A rejected request's metadata, as far as it is valid metadata (for the caller's correlation)."""
    if not isinstance(value, dict) or len(value) > MAX_METADATA_KEYS:
        return {}
    return {
        k: v
        for k, v in value.items()
        if isinstance(k, str)
        and isinstance(v, str)
        and 0 < len(k) <= MAX_METADATA_KEY_CHARS
        and len(v) <= MAX_METADATA_VALUE_CHARS
    }
