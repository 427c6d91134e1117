"""What travels on the wire: received requests, replies, the error bodies each dialect uses, multipart."""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Literal

from .faults import CountedFault

DialectName = Literal["videos", "kling", "runway", "media", "control", "unknown"]
ReplyAction = Literal["send", "drop", "reset"]

FileField = tuple[str, str, str, bytes]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the simulator received it.

    `status` is the HTTP status answered (None while in flight or when the connection was dropped or reset);
    `task_id` is the task a create call made (also set for an `ambiguous` create that got no answer).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    form: dict[str, list[str]]
    files: list[FileField]
    dialect: DialectName
    at: float
    is_create: bool = False
    status: int | None = None
    task_id: str | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    """What to answer. `action` "drop" closes the connection without an answer, "reset" resets it.

    `send_bytes` below len(body) sends the full Content-Length but only that many bytes, then closes.
    `delay` holds the answer back that many seconds (the work itself is already done).
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    action: ReplyAction = "send"
    send_bytes: int | None = None
    task_id: str | None = None
    delay: float = 0.0


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def html_reply(status: int, title: str, text: str) -> Reply:
    page = (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>\n"
    )
    return Reply(status, page.encode(), "text/html; charset=utf-8")


def not_found_page() -> Reply:
    """What a wrong base URL or path gets: an HTML page, never JSON."""
    return html_reply(404, "404 Not Found", "The requested URL was not found on this server.")


def request_id() -> str:
    return secrets.token_hex(12)


def comet_error(
    status: int,
    message: str,
    *,
    code: str = "",
    param: str = "",
    error_type: str = "comet_api_error",
    headers: dict[str, str] | None = None,
) -> Reply:
    """CometAPI's error envelope; its messages embed a request id."""
    body = {
        "error": {
            "message": f"{message} (request id: {request_id()})",
            "type": error_type,
            "param": param,
            "code": code,
        }
    }
    return json_reply(status, body, headers)


KLING_CODES = {400: 1201, 401: 1000, 404: 1203, 429: 1302, 500: 5000, 503: 5001}


def kling_error(status: int, message: str, code: int | None = None, headers: dict[str, str] | None = None) -> Reply:
    body = {"code": code or KLING_CODES.get(status, 5000), "message": message, "request_id": request_id()}
    return json_reply(status, body, headers)


def dialect_error(
    dialect: DialectName, status: int, message: str, *, param: str = "", headers: dict[str, str] | None = None
) -> Reply:
    """An error in the format the dialect's real endpoint uses."""
    if dialect == "kling":
        return kling_error(status, message, headers=headers)
    return comet_error(status, message, param=param, headers=headers)


def gateway_page(status: int) -> Reply:
    """A proxy in front of the API answers 502/504/524 with its own HTML page, as Cloudflare does."""
    titles = {502: "502 Bad Gateway", 504: "504 Gateway Timeout", 524: "524: A timeout occurred"}
    return html_reply(status, titles.get(status, f"{status} Error"), "The origin web server did not answer in time.")


def fault_reply(dialect: DialectName, fault: CountedFault) -> Reply:
    """The answer a fired reset, status or 1303 fault gives in place of the real one."""
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.kind == "reset":
        return Reply(0, action="reset")
    if fault.kind == "1303":
        return kling_error(429, "parallel task over resource pack limit", 1303, headers)
    if fault.status in (502, 504, 524):
        reply = gateway_page(fault.status)
        reply.headers.update(headers)
        return reply
    if dialect == "kling":
        message = "too many requests" if fault.status == 429 else "server internal error"
        return kling_error(fault.status, message, headers=headers)
    messages = {
        429: "Too many requests: rate limit reached, please retry later",
        500: "upstream provider error",
        503: "service temporarily unavailable",
    }
    return comet_error(fault.status, messages[fault.status], headers=headers)


class MultipartError(ValueError):
    pass


_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """`multipart/form-data; boundary=x` -> ("multipart/form-data", {"boundary": "x"})."""
    main, _, _ = value.partition(";")
    params = {}
    for name, raw in _PARAM.findall(value):
        text = raw.strip()
        params[name.lower()] = text[1:-1].replace('\\"', '"') if text.startswith('"') else text
    return main.strip().lower(), params


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], list[FileField]]:
    """Form fields and files of a multipart/form-data body; raises MultipartError when it is not one."""
    kind, params = header_params(content_type)
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary:
        raise MultipartError("Content-Type must be multipart/form-data with a boundary")
    delimiter = b"\r\n--" + boundary.encode()
    segments = (b"\r\n" + body).split(delimiter)
    if len(segments) < 2 or not segments[-1].startswith(b"--"):
        raise MultipartError("multipart body is not terminated by its closing boundary")
    form: dict[str, list[str]] = {}
    files: list[FileField] = []
    for segment in segments[1:-1]:
        head, sep, content = segment.partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("multipart part without headers")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        _, disposition = header_params(headers.get("content-disposition", ""))
        if "name" not in disposition:
            raise MultipartError("multipart part without a field name")
        if "filename" in disposition:
            part_type = headers.get("content-type", "application/octet-stream")
            files.append((disposition["name"], disposition["filename"], part_type, content))
        else:
            form.setdefault(disposition["name"], []).append(content.decode("utf-8", "replace"))
    return form, files


def alnum_id(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def task_not_exist(dialect: DialectName, *, http_200: bool = False) -> Reply:
    """A poll right after a create can answer that the task does not exist (yet)."""
    if http_200:
        return json_reply(200, {"code": "task_not_exist", "message": "task_not_exist", "data": None})
    if dialect == "kling":
        return kling_error(404, "task not found", 1203)
    body = {"error": {"message": "task_not_exist", "type": "comet_api_error", "param": "", "code": "task_not_exist"}}
    return json_reply(404, body)


def html_status_page() -> Reply:
    """A 200 HTML page where JSON was expected (a login wall or a proxy's page): never a success."""
    return html_reply(200, "CometAPI", "Please sign in to continue.")
