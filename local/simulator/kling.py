"""The Kling dialect: `/kling/v1/videos/{text2video|image2video}` (JSON; code/message/data envelope)."""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import uuid
from typing import Any

from PIL import Image, UnidentifiedImageError

from functions.providers.catalog import Dialect, load_catalog

from .routes import Call, Route, interrupted_poll, route
from .tasks import Phase, Task
from .wire import ReceivedRequest, Reply, json_reply, kling_error, request_id

KIND = r"(?P<kind>text2video|image2video)"
# Listed by the reference as valid on CometAPI although the catalog does not offer them (yet).
EXTRA_MODELS = ("kling-v2-6", "kling-v3")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3")
DURATIONS = ("5", "10")
CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
CAMERA_KEYS = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
PROMPT_MAX = 500
NEGATIVE_PROMPT_MAX = 200
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_MIN_SIDE = 300
STATUS_WORDS = {
    Phase.QUEUED: "submitted",
    Phase.RUNNING: "processing",
    Phase.SUCCEEDED: "succeed",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "failed",
}


def routes() -> list[Route]:
    return [
        route("POST", rf"/kling/v1/videos/{KIND}", "kling", create, _intent),
        route("GET", rf"/kling/v1/videos/{KIND}/(?P<id>[^/]+)", "kling", query),
        route("GET", rf"/kling/v1/videos/{KIND}", "kling", query_by_external_id),
    ]


def _body(request: ReceivedRequest) -> dict[str, Any]:
    return request.json if isinstance(request.json, dict) else {}


def _intent(request: ReceivedRequest) -> tuple[str, str]:
    prompt = _body(request).get("prompt")
    text = prompt if isinstance(prompt, str) else ""
    return text, text


def _model_names() -> set[str]:
    catalog = {m.provider_model for m in load_catalog().models.values() if m.dialect == Dialect.KLING}
    return catalog | set(EXTRA_MODELS)


def _bad(message: str, code: int = 1201) -> Reply:
    return kling_error(400, message, code)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def create(call: Call) -> Reply:
    if not isinstance(call.request.json, dict):
        return _bad("request body must be a JSON object", 1200)
    body = call.request.json
    kind = call.params["kind"]
    problem = _problem(body, kind)
    if problem is not None:
        return _bad(problem)
    aspect_ratio = body.get("aspect_ratio", "16:9")
    ratio_w, ratio_h = (int(part) for part in aspect_ratio.split(":"))
    external_id = body.get("external_task_id")
    state = call.state
    with state.lock:
        if external_id is not None and external_id in state.kling_external_ids:
            return _bad(f"external_task_id {external_id!r} already exists")
        task_id = _new_task_id(call)
        task = state.add_task(
            task_id,
            dialect="kling",
            model=body["model_name"],
            seconds=int(body.get("duration", "5")),
            width=ratio_w * 100,
            height=ratio_h * 100,
            faults=call.faults,
            fields={
                "kind": kind,
                "task_info": {"external_task_id": external_id} if external_id is not None else {},
                "video_id": str(uuid.uuid4()),
            },
        )
        if external_id is not None:
            state.kling_external_ids[external_id] = task_id
    data = {
        "task_id": task.id,
        "task_status": "submitted",
        "task_info": task.fields["task_info"],
        "created_at": _ms(task.created_wall),
        "updated_at": _ms(task.created_wall),
    }
    reply = json_reply(200, {"code": 0, "message": "success", "request_id": request_id(), "data": data})
    reply.task_id = task.id
    return reply


def _new_task_id(call: Call) -> str:
    while True:
        task_id = str(2 * 10**18 + secrets.randbelow(10**18))
        if task_id not in call.state.tasks:
            return task_id


def _problem(body: dict[str, Any], kind: str) -> str | None:
    """What is wrong with a create body, in Kling's words, or None."""
    if body.get("model_name") not in _model_names():
        return "invalid model name"
    return _text_problem(body, kind) or _option_problem(body) or _images_problem(body, kind)


def _text_problem(body: dict[str, Any], kind: str) -> str | None:
    prompt = body.get("prompt")
    if kind == "text2video" and (not isinstance(prompt, str) or not prompt.strip()):
        return "prompt is required"
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > PROMPT_MAX):
        return f"prompt must be a string of at most {PROMPT_MAX} characters"
    negative = body.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or len(negative) > NEGATIVE_PROMPT_MAX):
        return f"negative_prompt must be a string of at most {NEGATIVE_PROMPT_MAX} characters"
    external_id = body.get("external_task_id")
    if external_id is not None and (not isinstance(external_id, str) or not external_id):
        return "external_task_id must be a non-empty string"
    return None


def _option_problem(body: dict[str, Any]) -> str | None:
    if "duration" in body and (not isinstance(body["duration"], str) or body["duration"] not in DURATIONS):
        return 'duration must be the string "5" or "10"'
    if body.get("mode", "std") not in ("std", "pro"):
        return "mode must be std or pro"
    if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
        return f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}"
    cfg_scale = body.get("cfg_scale", 0.5)
    if isinstance(cfg_scale, bool) or not isinstance(cfg_scale, int | float) or not 0 <= cfg_scale <= 1:
        return "cfg_scale must be a number between 0 and 1"
    return _camera_problem(body["camera_control"]) if "camera_control" in body else None


def _images_problem(body: dict[str, Any], kind: str) -> str | None:
    if kind != "image2video":
        return None
    if "image" not in body:
        return "image is required"
    return _image_problem("image", body["image"]) or (
        _image_problem("image_tail", body["image_tail"]) if "image_tail" in body else None
    )


def _camera_problem(camera: Any) -> str | None:
    if not isinstance(camera, dict) or camera.get("type") not in CAMERA_TYPES:
        return f"camera_control.type must be one of {', '.join(CAMERA_TYPES)}"
    config = camera.get("config")
    if camera["type"] != "simple":
        return "camera_control.config is only allowed with type simple" if config is not None else None
    if not isinstance(config, dict) or set(config) - set(CAMERA_KEYS):
        return f"camera_control.config must hold only {', '.join(CAMERA_KEYS)}"
    values = list(config.values())
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not -10 <= v <= 10 for v in values):
        return "camera_control.config values must be numbers from -10 to 10"
    if sum(1 for v in values if v != 0) != 1:
        return "camera_control.config must have exactly one non-zero value"
    return None


def _image_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{name} must be an https URL or a base64 string"
    if value.startswith("data:"):
        return f"{name} must be plain base64, without a data: prefix"
    if value.startswith("https://"):
        return None if len(value) > len("https://") else f"{name} is not a valid URL"
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"{name} must be an https URL or valid base64"
    if len(data) > IMAGE_MAX_BYTES:
        return f"{name} is larger than 10 MB"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format, image.size
    except (UnidentifiedImageError, OSError):
        return f"{name} is not a readable image"
    if image_format not in ("PNG", "JPEG"):
        return f"{name} must be a JPG or PNG image"
    if min(size) < IMAGE_MIN_SIDE:
        return f"{name} must be at least {IMAGE_MIN_SIDE}x{IMAGE_MIN_SIDE} pixels"
    return None


def _task_data(call: Call, task: Task, *, throttled: bool = False) -> dict[str, Any]:
    state = call.state
    now = state.clock()
    phase, _ = task.phase(now)
    if throttled and phase != Phase.CANCELLED:
        phase = Phase.QUEUED
    data: dict[str, Any] = {
        "task_id": task.id,
        "task_status": STATUS_WORDS[phase],
        "task_status_msg": "",
        "task_info": task.fields["task_info"],
        "created_at": _ms(task.created_wall),
        "updated_at": _ms(task.updated_wall(now)),
    }
    if phase == Phase.SUCCEEDED:
        video = {"id": task.fields["video_id"], "url": state.media_url(task), "duration": str(task.seconds)}
        data["task_result"] = {"videos": [video]}
    elif phase == Phase.FAILED and not task.faults.filter:
        data["task_status_msg"] = task.faults.fail or "generation failed"
    elif phase == Phase.CANCELLED:
        data["task_status_msg"] = "task cancelled"
    return data


def _poll(call: Call, task: Task | None) -> Reply:
    if task is None or task.fields["kind"] != call.params["kind"]:
        return kling_error(404, "task not found", 1203)
    reply, throttled = interrupted_poll(call, task, "kling")
    if reply is None:
        data = _task_data(call, task, throttled=throttled)
        reply = json_reply(200, {"code": 0, "message": "success", "request_id": request_id(), "data": data})
    reply.delay = task.faults.poll_slow
    return reply


def query(call: Call) -> Reply:
    """Kling's single-task query takes either the task id or the caller's external_task_id in the path."""
    state = call.state
    task = state.task(call.params["id"], "kling")
    if task is None:
        with state.lock:
            task_id = state.kling_external_ids.get(call.params["id"], "")
        task = state.task(task_id, "kling")
    return _poll(call, task)


def query_by_external_id(call: Call) -> Reply:
    """`?external_task_id=X` answers that one task; without it, the list of this kind's tasks."""
    external_id = call.request.query_value("external_task_id")
    state = call.state
    if external_id is not None:
        with state.lock:
            task_id = state.kling_external_ids.get(external_id, "")
        return _poll(call, state.task(task_id, "kling"))
    with state.lock:
        tasks = [t for t in state.tasks.values() if t.dialect == "kling" and t.fields["kind"] == call.params["kind"]]
    listed = [_task_data(call, t) for t in reversed(tasks)]
    return json_reply(200, {"code": 0, "message": "success", "request_id": request_id(), "data": listed})
