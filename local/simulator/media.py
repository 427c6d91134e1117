"""Serving videos: the temporary `/media/<token>.mp4` URLs (S3-like) and the bytes behind `/content`."""

from __future__ import annotations

import hashlib
import re

from .tasks import SimState, Task
from .wire import ReceivedRequest, Reply, html_reply, request_id

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def s3_error(status: int, code: str, message: str) -> Reply:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id()}</RequestId></Error>"
    )
    return Reply(status, body.encode(), "application/xml")


def serve_media(state: SimState, request: ReceivedRequest, token: str) -> Reply:
    """GET or HEAD of a temporary media URL."""
    with state.lock:
        link = state.media.get(token)
        task = state.tasks.get(link.task_id) if link else None
        if link is None or task is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if request.query_value("sig") != link.signature:
            return s3_error(403, "AccessDenied", "Query-string authentication requires the signature.")
        if link.refused:
            if task.media_token == link.token:
                task.media_token = None  # the provider signs a fresh link at the task's next status read
            return s3_error(403, "AccessDenied", "Request has expired")
        if task.faults.expire or state.clock() >= link.expires:
            return s3_error(403, "AccessDenied", "Request has expired")
    return video_reply(state, task, request)


def video_reply(state: SimState, task: Task, request: ReceivedRequest) -> Reply:
    """The task's MP4 with Range support and the download faults (truncate, truncate-once, wrong-type)."""
    if task.faults.wrong_type:
        return html_reply(200, "Video", "This is not the video you are looking for.")
    data = state.video_bytes(task)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{hashlib.sha256(data).hexdigest()[:32]}"',
        "Cache-Control": "private, max-age=0",
    }
    status, start, end = 200, 0, len(data) - 1
    wanted = _RANGE.fullmatch(request.header("range").strip())
    if wanted and (wanted[1] or wanted[2]):
        if wanted[1]:
            start = int(wanted[1])
            end = min(int(wanted[2]), end) if wanted[2] else end
        else:
            start = max(0, len(data) - int(wanted[2]))
        if start > end:
            headers["Content-Range"] = f"bytes */{len(data)}"
            return Reply(416, b"", "video/mp4", headers)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    body = data[start : end + 1]
    reply = Reply(status, body, "video/mp4", headers)
    if request.method == "GET":
        with state.lock:
            task.downloads += 1
            truncated = task.faults.truncate or (task.faults.truncate_once and task.downloads == 1)
        if truncated:
            reply.send_bytes = len(body) // 2
    return reply
