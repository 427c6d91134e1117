"""The OpenAI-style `/v1/videos` dialect (Veo 3 Fast, Sora 2, Sora 2 Pro)."""

from __future__ import annotations

import io
import secrets
from typing import Any

from PIL import Image, UnidentifiedImageError

from functions.providers.catalog import Dialect, ModelSpec, load_catalog

from . import mp4
from .media import video_reply
from .routes import Call, Route, interrupted_poll, route
from .tasks import Phase, Task
from .wire import (
    MultipartError,
    ReceivedRequest,
    Reply,
    alnum_id,
    comet_error,
    json_reply,
    parse_multipart,
    task_not_exist,
)

# What CometAPI answers in `model` for a Veo create (a resolved backend id, not the name sent).
RESOLVED_MODEL = {"veo3-fast": "veo_3_1-4K"}
IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
STATUS_WORDS = {
    Phase.QUEUED: "queued",
    Phase.RUNNING: "in_progress",
    Phase.SUCCEEDED: "completed",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "cancelled",
}


def routes() -> list[Route]:
    return [
        route("POST", r"/v1/videos", "videos", create, _intent),
        route("GET", r"/v1/videos/(?P<id>[^/]+)", "videos", retrieve),
        route("GET", r"/v1/videos/(?P<id>[^/]+)/content", "videos", content),
    ]


def _intent(request: ReceivedRequest) -> tuple[str, str]:
    prompt = _first(request.form, "prompt")
    return prompt, prompt


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def _models() -> dict[str, ModelSpec]:
    return {m.provider_model: m for m in load_catalog().models.values() if m.dialect == Dialect.VIDEOS}


def _bad(message: str, param: str = "") -> Reply:
    return comet_error(400, message, param=param)


def create(call: Call) -> Reply:
    request = call.request
    try:
        form, files = parse_multipart(request.header("content-type"), request.body)
    except MultipartError as error:
        return _bad(f"{error}: send the fields as a real multipart/form-data body")
    prompt = _first(form, "prompt")
    if not prompt.strip():
        return _bad("prompt is required", "prompt")
    model = _first(form, "model")
    spec = _models().get(model)
    if spec is None:
        return _bad(f"model {model!r} is not a video model of this endpoint", "model")
    if len(prompt) > spec.prompt_max_chars:
        return _bad(f"prompt is longer than {spec.prompt_max_chars} characters", "prompt")
    is_veo = not spec.seconds.sent
    sizes = {f.provider_value: f for f in spec.formats}
    size = _first(form, "size") or spec.default_format.provider_value
    if size not in sizes:
        return _bad(f"size must be one of {', '.join(sizes)}, not {size!r}", "size")
    if is_veo:
        seconds_text, seconds = "", max(spec.seconds.allowed)
    else:
        seconds_text = _first(form, "seconds") or str(spec.seconds.default)
        if seconds_text not in [str(s) for s in spec.seconds.allowed]:
            allowed = ", ".join(f'"{s}"' for s in spec.seconds.allowed)
            return _bad(f"seconds must be one of {allowed}, not {seconds_text!r}", "seconds")
        seconds = int(seconds_text)
    width, height = sizes[size].width, sizes[size].height
    refused = _check_images(spec, files, width, height)
    if refused is not None:
        return refused

    task_id = f"task_{alnum_id(32)}" if is_veo else f"video_{secrets.token_hex(24)}"
    fields = {"model": RESOLVED_MODEL.get(model, model), "size": size, "seconds": seconds_text, "veo": is_veo}
    task = call.state.add_task(
        task_id,
        dialect="videos",
        model=model,
        seconds=seconds,
        width=width,
        height=height,
        faults=call.faults,
        fields=fields,
    )
    reply = json_reply(200, _view(call, task, Phase.QUEUED, 0))
    reply.task_id = task_id
    return reply


def _check_images(spec: ModelSpec, files: list[tuple[str, str, str, bytes]], width: int, height: int) -> Reply | None:
    if any(name != "input_reference" for name, *_ in files):
        return _bad("the only file field is input_reference", "input_reference")
    if len(files) > spec.images.max_count:
        return _bad(f"at most {spec.images.max_count} input_reference file(s) allowed", "input_reference")
    allowed_types = {IMAGE_TYPES[f] for f in spec.images.formats}
    for _, filename, content_type, data in files:
        if content_type.split(";")[0].strip().lower() not in allowed_types:
            return _bad(f"input_reference {filename!r} must be one of {sorted(allowed_types)}", "input_reference")
        if len(data) > spec.images.max_bytes:
            return _bad(f"input_reference {filename!r} is larger than {spec.images.max_bytes} bytes")
        if spec.images.must_match_size:
            try:
                with Image.open(io.BytesIO(data)) as image:
                    image_size = image.size
            except (UnidentifiedImageError, OSError):
                return _bad(f"input_reference {filename!r} is not a readable image", "input_reference")
            if image_size != (width, height):
                return _bad(
                    f"input_reference must match the requested size {width}x{height}, "
                    f"got {image_size[0]}x{image_size[1]}",
                    "input_reference",
                )
    return None


def _view(call: Call, task: Task, phase: Phase, progress: int) -> dict[str, Any]:
    tutorial = call.state.shape_for(task) == "tutorial"
    status = "succeeded" if tutorial and phase == Phase.SUCCEEDED else STATUS_WORDS[phase]
    body: dict[str, Any] = {"id": task.id}
    if task.fields["veo"]:
        body["task_id"] = task.id
    body |= {
        "object": "video",
        "model": task.fields["model"],
        "status": status,
        "progress": progress,
        "seconds": task.fields["seconds"],
        "size": task.fields["size"],
        "created_at": int(task.created_wall),
    }
    if phase == Phase.SUCCEEDED:
        body["completed_at"] = int(task.finished_wall())
        if not task.faults.no_url:
            url = call.state.media_url(task)
            if tutorial:
                body["output"] = [url]
            else:
                body["video_url"] = url
                body["expires_at"] = int(task.media_expires_wall or 0)
    if phase == Phase.FAILED and not task.faults.filter:
        message = task.faults.fail or "generation failed"
        body["error"] = message if tutorial else {"code": "generation_failed", "message": message}
    return body


def retrieve(call: Call) -> Reply:
    task = call.state.task(call.params["id"], "videos")
    if task is None:
        return task_not_exist("videos")
    reply, throttled = interrupted_poll(call, task, "videos")
    if reply is None:
        phase, progress = task.phase(call.state.clock())
        if throttled and phase != Phase.CANCELLED:
            phase, progress = Phase.QUEUED, 0
        reply = json_reply(200, _view(call, task, phase, progress))
    reply.delay = task.faults.poll_slow
    return reply


def content(call: Call) -> Reply:
    task = call.state.task(call.params["id"], "videos")
    if task is None:
        return task_not_exist("videos")
    phase, _ = task.phase(call.state.clock())
    if phase != Phase.SUCCEEDED:
        return comet_error(
            400,
            f"Video is not ready yet (status {STATUS_WORDS[phase]}); poll GET /v1/videos/{task.id} until completed",
            error_type="invalid_request_error",
        )
    variant = call.request.query_value("variant") or "video"
    if variant == "video":
        return video_reply(call.state, task, call.request)
    if variant == "thumbnail":
        return Reply(200, mp4.still(task.width, task.height, "PNG"), "image/png")
    if variant == "spritesheet":
        return Reply(200, mp4.still(task.width, task.height, "JPEG"), "image/jpeg")
    return _bad(f"variant must be video, thumbnail or spritesheet, not {variant!r}", "variant")
