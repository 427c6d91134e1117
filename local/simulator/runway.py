"""The Runway dialect: `/runwayml/v1/image_to_video` and `/runwayml/v1/tasks/{id}` (Gen-3A Turbo)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from functions.providers.catalog import Dialect, load_catalog

from .routes import Call, Route, interrupted_poll, route
from .tasks import TERMINAL, Phase, Task
from .wire import (
    ReceivedRequest,
    Reply,
    comet_error,
    json_reply,
    task_not_exist,
)

VERSION = "2024-11-06"
# 1280:720 and 720:1280 are what the tutorial sends; Runway's own list is 1280:768 and 768:1280.
RATIOS = {"1280:768": (1280, 768), "768:1280": (768, 1280), "1280:720": (1280, 720), "720:1280": (720, 1280)}
DURATIONS = (5, 10)
PROMPT_TEXT_MAX = 512
DATA_URI_MAX = 5 * 1024 * 1024
SEED_MAX = 4294967295
FAILURE_CODE = "INTERNAL.BAD_OUTPUT.CODE01"
STATUS_WORDS = {
    Phase.QUEUED: "PENDING",
    Phase.RUNNING: "RUNNING",
    Phase.SUCCEEDED: "SUCCEEDED",
    Phase.FAILED: "FAILED",
    Phase.CANCELLED: "CANCELLED",
}
WRAPPED_WORDS = {
    "PENDING": "QUEUED",
    "THROTTLED": "QUEUED",
    "RUNNING": "IN_PROGRESS",
    "SUCCEEDED": "SUCCESS",
    "FAILED": "FAILURE",
    "CANCELLED": "FAILURE",
}


def routes() -> list[Route]:
    return [
        route("POST", r"/runwayml/v1/image_to_video", "runway", create, _intent),
        route("GET", r"/runwayml/v1/tasks/(?P<id>[^/]+)", "runway", retrieve),
        route("DELETE", r"/runwayml/v1/tasks/(?P<id>[^/]+)", "runway", cancel),
    ]


def version_problem(request: ReceivedRequest) -> Reply | None:
    """Every Runway call needs X-Runway-Version (Runway's own plain error shape when it is missing)."""
    version = request.header("x-runway-version")
    if not version:
        return json_reply(400, {"error": "Missing X-Runway-Version header"})
    if version != VERSION:
        return json_reply(400, {"error": f"Invalid X-Runway-Version header: use {VERSION}"})
    return None


def _body(request: ReceivedRequest) -> dict[str, Any]:
    return request.json if isinstance(request.json, dict) else {}


def _intent(request: ReceivedRequest) -> tuple[str, str]:
    body = _body(request)
    text = body.get("promptText")
    text = text if isinstance(text, str) else ""
    return text, f"{text}|{str(body.get('promptImage'))[:256]}"


def _bad(message: str, param: str = "") -> Reply:
    return comet_error(400, message, param=param)


def create(call: Call) -> Reply:
    if not isinstance(call.request.json, dict):
        return _bad("request body must be a JSON object")
    body = call.request.json
    problem = _problem(body)
    if problem is not None:
        return _bad(*problem)
    width, height = RATIOS[body.get("ratio", "1280:768")]
    task = call.state.add_task(
        str(uuid.uuid4()),
        dialect="runway",
        model=body["model"],
        seconds=int(body.get("duration", 10)),
        width=width,
        height=height,
        faults=call.faults,
    )
    reply = json_reply(200, {"id": task.id})
    reply.task_id = task.id
    return reply


def _problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) for what is wrong with a create body, or None."""
    models = {m.provider_model for m in load_catalog().models.values() if m.dialect == Dialect.RUNWAY}
    if body.get("model") not in models:
        return f"model must be one of {', '.join(sorted(models))}", "model"
    image_problem = _prompt_image_problem(body.get("promptImage"))
    if image_problem:
        return image_problem, "promptImage"
    text = body.get("promptText")
    if text is not None and (not isinstance(text, str) or len(text) > PROMPT_TEXT_MAX):
        return f"promptText must be a string of at most {PROMPT_TEXT_MAX} characters", "promptText"
    duration = body.get("duration", 10)
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration not in DURATIONS:
        return "duration must be the number 5 or 10", "duration"
    if body.get("ratio", "1280:768") not in RATIOS:
        return f"ratio must be one of {', '.join(RATIOS)}", "ratio"
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX):
        return f"seed must be an integer from 0 to {SEED_MAX}", "seed"
    if "watermark" in body and not isinstance(body["watermark"], bool):
        return "watermark must be a boolean", "watermark"
    return None


def _prompt_image_problem(value: Any) -> str | None:
    if isinstance(value, list):
        if not value or len(value) > 2:
            return "promptImage must hold one or two images"
        for item in value:
            if not isinstance(item, dict) or item.get("position") not in ("first", "last"):
                return "each promptImage entry needs a uri and a position (first or last)"
            problem = _image_uri_problem(item.get("uri"))
            if problem:
                return problem
        return None
    return _image_uri_problem(value)


def _image_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "promptImage is required: an HTTPS URL or a data URI"
    if uri.startswith("data:image/"):
        return None if len(uri) < DATA_URI_MAX else "promptImage data URI must be under 5 MB"
    if not uri.startswith("https://"):
        return "promptImage must be an HTTPS URL or a data URI"
    host = urlsplit(uri).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None if "." in host else "promptImage URL must have a domain name"
    return "promptImage URL must use a domain name, not an IP address"


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bare_task(call: Call, task: Task, *, throttled: bool) -> dict[str, Any]:
    phase, progress = task.phase(call.state.clock())
    status = "THROTTLED" if throttled and phase != Phase.CANCELLED else STATUS_WORDS[phase]
    bare: dict[str, Any] = {"id": task.id, "status": status, "createdAt": _iso(task.created_wall)}
    if status == "RUNNING":
        bare["progress"] = progress / 100
    elif status == "SUCCEEDED":
        bare["output"] = [call.state.media_url(task)]
    elif status == "FAILED" and not task.faults.filter:
        bare["failure"] = task.faults.fail or "An unexpected error occurred."
        bare["failureCode"] = FAILURE_CODE
    return bare


def _wrapped(task: Task, bare: dict[str, Any]) -> dict[str, Any]:
    status = bare["status"]
    percent = 100 if status == "SUCCEEDED" else round(bare.get("progress", 0) * 100)
    data = {
        "task_id": task.id,
        "status": WRAPPED_WORDS[status],
        "progress": f"{percent}%",
        "fail_reason": bare.get("failure", ""),
        "data": bare,
    }
    return {"code": "success", "message": "", "data": data}


def retrieve(call: Call) -> Reply:
    task = call.state.task(call.params["id"], "runway")
    if task is None:
        return task_not_exist("runway")
    reply, throttled = interrupted_poll(call, task, "runway")
    if reply is None:
        bare = _bare_task(call, task, throttled=throttled)
        shape = call.state.shape_for(task)
        if shape == "tutorial":
            bare["status"] = bare["status"].lower()
        reply = json_reply(200, _wrapped(task, bare) if shape == "wrapped" else bare)
    reply.delay = task.faults.poll_slow
    return reply


def cancel(call: Call) -> Reply:
    """Runway's rule: a task still pending or running is cancelled; any other task is deleted."""
    state = call.state
    with state.lock:
        task = state.task(call.params["id"], "runway")
        if task is None:
            return task_not_exist("runway")
        if task.phase(state.clock())[0] in TERMINAL:
            del state.tasks[task.id]
        else:
            task.cancelled_at = state.clock()
    return Reply(204, b"", "application/json")
