"""`/_sim/...`: the simulator's own control endpoints, for a simulator running in another process.

GET /_sim/health · POST /_sim/reset · GET|PUT|DELETE /_sim/faults ({"faults": ["429", ...]}) ·
PUT /_sim/shape ({"shape": "tutorial"}) · GET /_sim/requests (a summary of every request received) ·
GET /_sim/tasks/{id} (one task: dialect, model, polls, downloads, and the body of the create that made it) ·
GET /_sim/tasks/{id}/video (the exact bytes its video URL served; 404 until it has served them).
No auth: the simulator only listens on loopback.
"""

from __future__ import annotations

from .faults import NO_FAULTS, SHAPES, FaultMarkerError, parse_faults
from .media import serve_media
from .routes import Call, Route, route
from .wire import Reply, json_reply


def routes() -> list[Route]:
    return [
        route("GET", r"/media/(?P<token>[A-Za-z0-9_-]+)\.mp4", "media", _media),
        route("HEAD", r"/media/(?P<token>[A-Za-z0-9_-]+)\.mp4", "media", _media),
        route("GET", r"/_sim/health", "control", _health),
        route("POST", r"/_sim/reset", "control", _reset),
        route("GET", r"/_sim/faults", "control", _faults),
        route("PUT", r"/_sim/faults", "control", _set_faults),
        route("DELETE", r"/_sim/faults", "control", _clear_faults),
        route("PUT", r"/_sim/shape", "control", _set_shape),
        route("GET", r"/_sim/requests", "control", _requests),
        route("GET", r"/_sim/tasks/(?P<task_id>[^/]+)", "control", _task),
        route("GET", r"/_sim/tasks/(?P<task_id>[^/]+)/video", "control", _task_video),
    ]


def _media(call: Call) -> Reply:
    return serve_media(call.state, call.request, call.params["token"])


def _health(call: Call) -> Reply:
    return json_reply(200, {"ok": True, "base_url": call.state.base_url, "shape": call.state.shape})


def _reset(call: Call) -> Reply:
    call.state.reset()
    return json_reply(200, {"ok": True})


def _faults(call: Call) -> Reply:
    return json_reply(200, {"faults": list(call.state.global_faults.tokens)})


def _set_faults(call: Call) -> Reply:
    body = call.request.json
    markers = body.get("faults") if isinstance(body, dict) else None
    if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
        return json_reply(400, {"error": 'send {"faults": ["marker", ...]}'})
    try:
        faults = parse_faults(markers)
    except FaultMarkerError as error:
        return json_reply(400, {"error": str(error)})
    call.state.set_global_faults(faults)
    return _faults(call)


def _clear_faults(call: Call) -> Reply:
    call.state.set_global_faults(NO_FAULTS)
    return _faults(call)


def _set_shape(call: Call) -> Reply:
    body = call.request.json
    shape = body.get("shape") if isinstance(body, dict) else None
    if shape not in SHAPES:
        return json_reply(400, {"error": f"shape must be one of {', '.join(SHAPES)}"})
    call.state.shape = str(shape)
    return _health(call)


def _requests(call: Call) -> Reply:
    with call.state.lock:
        records = list(call.state.records)
    summary = [
        {"method": r.method, "path": r.path, "dialect": r.dialect, "status": r.status, "task_id": r.task_id, "at": r.at}
        for r in records
    ]
    return json_reply(200, {"requests": summary})


def _task(call: Call) -> Reply:
    """A task as the simulator knows it, with what its create asked for (JSON body, or the form's fields)."""
    task_id = call.params["task_id"]
    with call.state.lock:
        task = call.state.tasks.get(task_id)
        create = next((r for r in call.state.records if r.is_create and r.task_id == task_id), None)
        if task is None:
            return json_reply(404, {"error": f"no task {task_id}"})
        summary = {
            "task_id": task.id,
            "dialect": task.dialect,
            "model": task.model,
            "polls": task.polls,
            "downloads": task.downloads,
            "create": None if create is None else (create.json if create.json is not None else create.form),
        }
    return json_reply(200, summary)


def _task_video(call: Call) -> Reply:
    """What the task's video URL (or /content) served, byte for byte: what a stored copy must equal."""
    task_id = call.params["task_id"]
    with call.state.lock:
        task = call.state.tasks.get(task_id)
        if task is None or not task.downloads:
            return json_reply(404, {"error": f"task {task_id} has served no video"})
        data = call.state.video_bytes(task)
    return Reply(200, data, "video/mp4")
