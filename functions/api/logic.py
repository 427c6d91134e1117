"""The Videos API's logic: create, retrieve, list, content link, delete. Always scoped to the caller.

Another owner's job is indistinguishable from a job that does not exist (404). A created job's images go
to S3 under inputs/ before the execution starts; Step Functions payloads only ever carry the job id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import boto3
from pydantic import ValidationError

from functions.api.models import CreateVideoBody, DeletedVideo, Video, VideoList
from functions.api.multipart import FormData
from functions.common.cancel import cancel_job
from functions.common.create_body import upload_images
from functions.common.errors import InvalidRequestError, VideogenError
from functions.common.job_start import new_job_id, start_job
from functions.common.jobs import JobRecord, JobRepository, from_dynamo, to_dynamo
from functions.common.settings import ApiSettings
from functions.common.video_request import (
    ImageInput,
    VideoRequest,
    invalid_request_from,
    parse_video_request,
)
from functions.common.workflow import WorkflowDeps
from functions.providers.catalog import Catalog

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

DELETED_RECORD_TTL_SECONDS = 7 * 24 * 3600
MIN_POLL_AFTER_MS = 1000


class NotFoundError(VideogenError):
    code = "not_found"
    http_status = 404


class ConflictError(VideogenError):
    code = "conflict"
    http_status = 409


class NotReadyError(VideogenError):
    """The content of a job that has not completed (or failed)."""

    code = "video_not_ready"
    http_status = 409


@dataclass
class VideosApi:
    settings: ApiSettings
    deps: WorkflowDeps
    sfn: SFNClient
    resolve: Callable[[str], list[str]] | None = None
    clock: Callable[[], float] = time.time
    _idempotent_start: Any = field(default=None, init=False, repr=False)

    @classmethod
    def from_environment(cls) -> VideosApi:
        settings = ApiSettings()
        return cls(settings=settings, deps=WorkflowDeps.from_environment(), sfn=boto3.client("stepfunctions"))

    @property
    def jobs(self) -> JobRepository:
        return self.deps.jobs

    # --- create -------------------------------------------------------------------------------------------

    def create(self, owner: str, body: dict[str, Any], *, idempotency_key: str | None = None) -> Video:
        request = self.parse_create(body)
        if idempotency_key:
            job_id = self._start_once(owner, request, idempotency_key)
            return self.video(self._created_with_key(owner, job_id))
        return self.video(self._owned(owner, self._start(owner, request)))

    def parse_create(self, body: dict[str, Any]) -> VideoRequest:
        """The OpenAI-shaped body as a validated VideoRequest (nothing is stored or sent before this)."""
        return parse_create_body(body, catalog=self.deps.catalog, resolve=self.resolve)

    def _start(self, owner: str, request: VideoRequest, job_id: str | None = None) -> str:
        job_id = job_id or new_job_id()
        request = self._upload_images(request, job_id)
        start_job(
            request,
            jobs=self.jobs,
            sfn=self.sfn,
            state_machine_arn=self.settings.state_machine_arn,
            owner=owner,
            job_id=job_id,
            clock=self.clock,
        )
        return job_id

    def _start_once(self, owner: str, request: VideoRequest, key: str) -> str:
        """Powertools idempotency keyed on (owner, Idempotency-Key), the body's hash as the payload check."""
        from aws_lambda_powertools.utilities.idempotency import exceptions  # noqa: PLC0415

        intent = {"owner": owner, "idempotency_key": key, "body_hash": _body_hash(request)}
        try:
            started: dict[str, str] = self._idempotent()(intent=intent, request=request)
        except exceptions.IdempotencyValidationError as exc:
            raise ConflictError(
                "This Idempotency-Key was already used with a different request body; use a new key for a new request.",
                param="Idempotency-Key",
            ) from exc
        except exceptions.IdempotencyAlreadyInProgressError as exc:
            raise ConflictError(
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
                param="Idempotency-Key",
            ) from exc
        return started["job_id"]

    def _created_with_key(self, owner: str, job_id: str) -> JobRecord:
        """The job an Idempotency-Key created, for a repeat of that create.

        Once the caller has deleted that job it cannot be answered again, and starting another would break what
        the key promises (one job, one provider charge, however often the request is sent): 409, naming the key.
        """
        record = self.jobs.get(job_id)
        if record is not None and record.owner == owner and record.deleted_at is not None:
            raise ConflictError(
                f"The video this Idempotency-Key created ({job_id}) has been deleted; to create a new video, send "
                "the request with a new Idempotency-Key.",
                param="Idempotency-Key",
            )
        return self._owned(owner, job_id)

    def _idempotent(self) -> Callable[..., dict[str, str]]:
        if self._idempotent_start is None:
            from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            config = IdempotencyConfig(
                event_key_jmespath="[owner, idempotency_key]",
                payload_validation_jmespath="body_hash",
                expires_after_seconds=24 * 3600,
                use_local_cache=False,
            )
            store = DynamoDBPersistenceLayer(table_name=self.settings.idempotency_table_name)

            def start(intent: dict[str, str], request: VideoRequest) -> dict[str, str]:
                return {"job_id": self._start(intent["owner"], request)}

            self._idempotent_start = idempotent_function(
                data_keyword_argument="intent", persistence_store=store, config=config
            )(start)
        return self._idempotent_start  # type: ignore[no-any-return]

    def _upload_images(self, request: VideoRequest, job_id: str) -> VideoRequest:
        return upload_images(
            request,
            job_id,
            s3=self.deps.s3,
            bucket=self.settings.video_bucket_name,
            input_prefix=self.settings.input_prefix,
        )

    # --- read ---------------------------------------------------------------------------------------------

    def video(self, record: JobRecord) -> Video:
        return Video.of(record, self.deps.catalog, now=self.clock(), content_ttl=self.settings.content_url_ttl_seconds)

    def retrieve(self, owner: str, job_id: str) -> tuple[Video, int | None]:
        """The Video, and when to poll again (ms) while it is still running."""
        record = self._owned(owner, job_id)
        poll_after = None
        if not record.status.is_terminal:
            due = (record.next_poll_at or self.clock()) - self.clock()
            poll_after = max(MIN_POLL_AFTER_MS, int(due * 1000))
        return self.video(record), poll_after

    def list(self, owner: str, *, after: str | None, limit: int, order: Literal["asc", "desc"]) -> VideoList:
        query: dict[str, Any] = {
            "IndexName": "by_owner",
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": owner},
            "ScanIndexForward": order == "asc",
        }
        if after:
            cursor = self._owned(owner, after, param="after")
            query["ExclusiveStartKey"] = to_dynamo(
                {"job_id": cursor.job_id, "owner": owner, "created_at": cursor.created_at}
            )
        records: list[JobRecord] = []
        while len(records) <= limit:
            page = self.jobs.table.query(**query, Limit=limit + 1)
            records += [r for r in map(_record, page.get("Items", [])) if r.deleted_at is None]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        shown = records[:limit]
        return VideoList(
            data=[self.video(r) for r in shown],
            first_id=shown[0].job_id if shown else None,
            last_id=shown[-1].job_id if shown else None,
            has_more=len(records) > limit,
        )

    def content_url(self, owner: str, job_id: str, variant: str) -> str:
        if variant != "video":
            raise InvalidRequestError(f"variant: {variant!r} is not available; allowed: video", param="variant")
        record = self._owned(owner, job_id)
        if record.status.value != "completed" or not record.s3_key:
            raise NotReadyError(
                f"Video {job_id} is {Video.of(record, self.deps.catalog, now=0, content_ttl=0).status}: its "
                "content is available once it has completed.",
                param="id",
            )
        return self.deps.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": record.s3_bucket, "Key": record.s3_key},
            ExpiresIn=self.settings.content_url_ttl_seconds,
        )

    # --- delete -------------------------------------------------------------------------------------------

    def delete(self, owner: str, job_id: str) -> DeletedVideo:
        """A running job is cancelled (and stays visible as failed/cancelled); a finished one is deleted."""
        record = self._owned(owner, job_id)
        if not record.status.is_terminal:
            cancel_job(
                job_id,
                deps=self.deps,
                sfn=self.sfn,
                state_machine_arn=self.settings.state_machine_arn,
                reason="Cancelled through DELETE /v1/videos.",
            )
            return DeletedVideo(id=job_id)
        keys = [k for k in (record.s3_key, record.manifest_key) if k]
        keys += [image["s3_key"] for image in record.request.get("images", []) if image.get("s3_key")]
        if keys:
            self.deps.s3.delete_objects(
                Bucket=self.settings.video_bucket_name,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        now = self.clock()
        self.jobs.table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET deleted_at = :now, expires_at = :ttl",
            ExpressionAttributeValues=to_dynamo({":now": now, ":ttl": int(now + DELETED_RECORD_TTL_SECONDS)}),
        )
        return DeletedVideo(id=job_id)

    def _owned(self, owner: str, job_id: str, *, param: str = "id") -> JobRecord:
        record = self.jobs.get(job_id) if _looks_like_id(job_id) else None
        if record is None or record.owner != owner or record.deleted_at is not None:
            raise NotFoundError(f"No video found with id {job_id!r}.", param=param)
        return record


def parse_create_body(
    body: dict[str, Any], *, catalog: Catalog, resolve: Callable[[str], list[str]] | None = None
) -> VideoRequest:
    """POST /v1/videos's body (JSON or form) as a validated VideoRequest. Also the schema of an inbox request
    object and of a "Video Generation Requested" event's detail (functions/intake)."""
    try:
        create = CreateVideoBody.model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc, allowed_fields=list(CreateVideoBody.model_fields)) from None
    fields = create.model_dump(exclude_none=True, exclude={"input_reference", "seconds"})
    for name in ("fallback_models",):  # a form field given once arrives as a string
        if isinstance(fields.get(name), str):
            fields[name] = [fields[name]]
    if create.seconds is not None:
        fields["seconds"] = _whole_number(create.seconds, "seconds")
    if create.input_reference is not None:
        fields["images"] = _images_of(create.input_reference)
    try:
        return parse_video_request(fields, catalog=catalog, resolve=resolve)
    except InvalidRequestError as exc:
        raise _in_openai_terms(exc) from None


def _in_openai_terms(error: InvalidRequestError) -> InvalidRequestError:
    """VideoRequest calls the images `images[i].url`; the client sent `input_reference` (OpenAI's name)."""
    param = error.param or ""
    if not param.startswith("images"):
        return error
    renamed = "input_reference" + param.removeprefix("images").replace(".url", ".image_url")
    return InvalidRequestError(error.message.replace(param, renamed, 1), param=renamed, details=error.details)


def _record(item: dict[str, Any]) -> JobRecord:
    return JobRecord.model_validate(from_dynamo(item))


def _looks_like_id(job_id: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_-]{1,80}", job_id))


def _whole_number(value: str | int, name: str) -> int:
    if isinstance(value, int):
        return value
    if not re.fullmatch(r"[0-9]{1,4}", value.strip()):  # str.isdigit() also takes "²", which int() refuses
        raise InvalidRequestError(f"{name}: must be a whole number of seconds (got {value[:20]!r})", param=name)
    return int(value)


def _images_of(reference: Any) -> list[Any]:
    """input_reference: a file, {"image_url": ...}, a URL string, or a list of those (first and last frame)."""
    references = reference if isinstance(reference, list) else [reference]
    images: list[Any] = []
    for index, item in enumerate(references):
        if isinstance(item, dict) and "image_url" in item and len(item) == 1:
            images.append(item["image_url"])
        elif isinstance(item, str | bytes | ImageInput) or (isinstance(item, dict) and "data" in item):
            images.append(item)
        else:
            raise InvalidRequestError(
                f'input_reference[{index}]: give an image file (multipart) or {{"image_url": "https://..."}}',
                param="input_reference",
            )
    return images


def _body_hash(request: VideoRequest) -> str:
    """The request's identity for idempotency: its fields, with image bytes by digest."""
    dumped = request.model_dump(mode="json", exclude_none=True, exclude={"images"})
    dumped["images"] = [
        image.url or image.s3_key or hashlib.sha256(image.data or b"").hexdigest() for image in request.images
    ]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()


def body_from_form(form: FormData) -> dict[str, Any]:
    """A multipart body as the JSON body it stands for: bracket names (metadata[k], fallback_models[],
    input_reference[image_url]) become objects and lists, file parts become images."""
    body: dict[str, Any] = {}
    for name, value in form.fields:
        _assign(body, name, value)
    files = [
        ImageInput(data=part.data, filename=part.filename)
        for part in form.files
        if part.field.startswith("input_reference")
    ]
    others = [part.field for part in form.files if not part.field.startswith("input_reference")]
    if others:
        raise InvalidRequestError(f"{others[0]}: only input_reference takes a file", param=others[0])
    if files:
        existing = body.get("input_reference")
        body["input_reference"] = ([existing] if existing else []) + files
    return body


def _assign(body: dict[str, Any], name: str, value: str) -> None:
    """Put one form field into ``body``: a[b][c] nests objects, a[] appends to a list, a repeated plain
    name becomes a list."""
    match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", name)
    if match is None:
        raise InvalidRequestError(f"{name}: is not a valid form field name", param=name)
    keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    target: Any = body
    for key, next_key in itertools.pairwise(keys):
        if not isinstance(target, dict):
            raise InvalidRequestError(f"{name}: lists of objects are not supported in a form", param=keys[0])
        target = target.setdefault(key, [] if next_key == "" else {})
    last = keys[-1]
    if last == "" and isinstance(target, list):
        target.append(value)
    elif isinstance(target, dict) and last in target:
        existing = target[last]
        target[last] = [*(existing if isinstance(existing, list) else [existing]), value]
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise InvalidRequestError(f"{name}: conflicts with another field of the same name", param=keys[0])
