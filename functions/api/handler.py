"""The api Lambda: OpenAI's Videos API on API Gateway (REST, Lambda proxy), Powertools' REST resolver.

Every error leaves in OpenAI's envelope, mapped in one place (the exception handlers below).
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Annotated, Any, Literal, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.logic import MIN_POLL_AFTER_MS, VideosApi, body_from_form
from functions.api.models import DeletedVideo, ErrorBody, Video, VideoList
from functions.api.multipart import parse_multipart
from functions.common.container import per_container
from functions.common.errors import InvalidRequestError, VideogenError

logger = Logger(service="videogen-api")

POLL_AFTER_HEADER = "openai-poll-after-ms"
"""On GET /v1/videos/{id} while the job runs: when to poll again, which the openai SDK's poll() waits for."""


def cors_config() -> CORSConfig | None:
    """CORS_ALLOW_ORIGINS (comma-separated, set by the stack's corsAllowOrigins option): browsers may call the
    API from those origins; unset, no CORS headers at all."""
    origins = [o.strip() for o in os.environ.get("CORS_ALLOW_ORIGINS", "").split(",") if o.strip()]
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=origins[1:],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=[POLL_AFTER_HEADER],
    )


app = APIGatewayRestResolver(enable_validation=True, cors=cors_config())
JSON = "application/json"
MAX_IDEMPOTENCY_KEY_CHARS = 255
"""docs/openapi.json documents this maxLength."""


class PayloadTooLargeError(VideogenError):
    code = "request_too_large"
    http_status = 413


class UnsupportedMediaTypeError(VideogenError):
    code = "unsupported_media_type"
    http_status = 415


class MissingCallerError(VideogenError):
    code = "invalid_api_key"
    http_status = 401


@per_container
def videos() -> VideosApi:
    return VideosApi.from_environment()


def caller() -> str:
    """The owner the authorizer vouched for. Never taken from anything the client sends directly."""
    authorizer = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    owner = authorizer.get("owner")
    if not owner:
        raise MissingCallerError("Missing or invalid API key: send Authorization: Bearer <key>.")
    return str(owner)


def request_body() -> dict[str, Any]:
    event = app.current_event
    raw = event.body or ""
    data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")
    limit = videos().settings.max_request_bytes
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"The request body is {len(data)} bytes; the limit is {limit}. Send large images as an https URL "
            '(input_reference: {"image_url": ...}) instead of uploading them.'
        )
    content_type = (event.headers.get("content-type") or event.headers.get("Content-Type") or "").strip()
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON or (not media_type and data.lstrip().startswith(b"{")):
        try:
            body = json.loads(data or b"{}")
        except RecursionError as exc:
            raise InvalidRequestError("The body is nested too deeply to be a create request.") from exc
        except ValueError as exc:
            raise InvalidRequestError(f"The body is not valid JSON ({exc}).") from exc
        if not isinstance(body, dict):
            raise InvalidRequestError("The body must be a JSON object.")
        field = lone_surrogate_in(body)
        if field is not None:  # JSON's \ud800 escapes decode to lone surrogates, which nothing downstream stores
            raise InvalidRequestError(
                f"{field or 'The body'}: contains an unpaired UTF-16 surrogate (a lone \\uD800-\\uDFFF escape); "
                "send valid Unicode.",
                param=field or None,
            )
        return body
    if media_type == "multipart/form-data":
        return body_from_form(parse_multipart(data, content_type))
    raise UnsupportedMediaTypeError(
        f"Content-Type {media_type or 'none'!r} is not supported; send application/json or multipart/form-data."
    )


RATE_LIMITED: dict[str, Any] = {
    "description": "Rate limited by API Gateway before the request reached videogen: code rate_limit_exceeded "
    "when the stage's or the usage plan's request rate is exceeded (retry after a short pause), quota_exceeded "
    "when the usage plan's daily quota is used up (retry tomorrow, or raise the quota).",
    "content": {
        JSON: {
            "model": ErrorBody,
            "examples": {
                code: {
                    "summary": summary,
                    "value": {"error": {"message": message, "type": "rate_limit_error", "param": None, "code": code}},
                }
                for code, summary, message in (
                    ("rate_limit_exceeded", "Throttled (rate or burst limit)", "Too Many Requests"),
                    ("quota_exceeded", "Daily quota used up", "Limit Exceeded"),
                )
            },
        }
    },
}
"""API Gateway's own 429s (infra/api.py GATEWAY_RESPONSES), on every route: the stage throttles every method."""


def documented(
    ok: type | None, *statuses: int, ok_status: int = 200, ok_headers: dict[str, Any] | None = None
) -> dict[int, OpenAPIResponse]:
    """The OpenAPI responses of a route: its success model (and headers), the OpenAI error envelope per error
    status, and API Gateway's 429."""
    reasons = {
        400: "Invalid request (the message names the field)",
        401: "Missing or invalid API key",
        404: "No such video (or not yours)",
        409: "Conflict (idempotency key reused, or the video is not ready)",
        413: "Request body over 10 MB",
        415: "Unsupported Content-Type",
    }
    responses: dict[int, Any] = {
        status: {"description": reasons[status], "content": {JSON: {"model": ErrorBody}}} for status in (401, *statuses)
    }
    responses[429] = RATE_LIMITED
    if ok is None:
        responses[ok_status] = {"description": "Redirect to a short-lived S3 link to the MP4"}
    else:
        responses[ok_status] = {"description": "OK", "content": {JSON: {"model": ok}}}
    if ok_headers:
        responses[ok_status]["headers"] = ok_headers
    return cast(dict[int, OpenAPIResponse], responses)


def lone_surrogate_in(value: Any, path: str = "") -> str | None:
    """Where the first string that is not valid Unicode (an unpaired surrogate) is; None if there is none.
    A bad key names the object holding it ("" for the body itself)."""
    if isinstance(value, str):
        return None if _is_unicode(value) else path
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and not _is_unicode(key):
            return path
        found = lone_surrogate_in(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip("."))
        if found is not None:
            return found
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=headers or {})


@app.post(
    "/v1/videos",
    summary="Create a video",
    description="Starts a job; the answer is the queued Video. JSON or multipart/form-data.",
    responses=documented(Video, 400, 409, 413, 415),
)
def create_video() -> Response[str]:
    owner = caller()
    body = request_body()
    key = app.current_event.headers.get("idempotency-key") or app.current_event.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidRequestError(
            f"Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters (got {len(key)})",
            param="Idempotency-Key",
        )
    video = videos().create(owner, body, idempotency_key=key)
    return json_response(200, video.model_dump(mode="json"))


@app.get("/v1/videos", summary="List your videos", responses=documented(VideoList, 400, 404))
def list_videos(
    after: Annotated[str | None, Query(description="The id of the last video of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> Response[str]:
    page = videos().list(caller(), after=after, limit=limit, order=order)
    return json_response(200, page.model_dump(mode="json"))


@app.get(
    "/v1/videos/<video_id>",
    summary="Retrieve a video",
    responses=documented(
        Video,
        404,
        ok_headers={
            POLL_AFTER_HEADER: {
                "description": "Sent while the video is queued or in progress: milliseconds until the next "
                f"poll is worth making (the job's next provider poll; at least {MIN_POLL_AFTER_MS}). The openai "
                "SDK's poll() waits this long. Absent once the video has completed or failed.",
                "schema": {"type": "integer", "minimum": MIN_POLL_AFTER_MS},
            }
        },
    ),
)
def retrieve_video(video_id: str) -> Response[str]:
    video, poll_after_ms = videos().retrieve(caller(), video_id)
    headers = {POLL_AFTER_HEADER: str(poll_after_ms)} if poll_after_ms is not None else {}
    return json_response(200, video.model_dump(mode="json"), headers)


@app.get(
    "/v1/videos/<video_id>/content",
    summary="Download a video (a redirect to a short-lived S3 link)",
    responses=documented(None, 400, 404, 409, ok_status=302),
)
def video_content(video_id: str, variant: Annotated[str, Query()] = "video") -> Response[str]:
    url = videos().content_url(caller(), video_id, variant)
    return Response(status_code=302, body="", headers={"Location": url})


@app.delete(
    "/v1/videos/<video_id>",
    summary="Delete a video (a running job is cancelled)",
    responses=documented(DeletedVideo, 404),
)
def delete_video(video_id: str) -> Response[str]:
    return json_response(200, videos().delete(caller(), video_id).model_dump(mode="json"))


def error_response(status: int, message: str, code: str | None, param: str | None = None) -> Response[str]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return json_response(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})


@app.exception_handler(VideogenError)  # type: ignore[untyped-decorator]  # Powertools types it loosely
def videogen_error(error: VideogenError) -> Response[str]:
    status = error.http_status
    if error.code == "unauthorized":  # our provider key was refused: not the caller's fault
        status = 502
    return error_response(status, error.message, error.code, error.param)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def query_error(error: RequestValidationError) -> Response[str]:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    param = ".".join(loc) or None
    return error_response(400, f"{param}: {first.get('msg')}", "invalid_request", param)


ROUTE_METHODS = (
    (re.compile(r"/v1/videos"), "GET, POST"),
    (re.compile(r"/v1/videos/[^/]+"), "GET, DELETE"),
    (re.compile(r"/v1/videos/[^/]+/content"), "GET"),
)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    method, path = app.current_event.http_method, app.current_event.path
    allowed = next((methods for pattern, methods in ROUTE_METHODS if pattern.fullmatch(path)), None)
    if allowed is not None:  # a known resource, another method: 405 with Allow (RFC 9110)
        response = error_response(405, f"{method} is not allowed on {path}; allowed: {allowed}.", "method_not_allowed")
        response.headers["Allow"] = allowed
        return response
    return error_response(404, f"Unknown route {method} {path}.", "not_found")


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected(error: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return error_response(500, "An internal error occurred; it has been logged.", "internal_error")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
