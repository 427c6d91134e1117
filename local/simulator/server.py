"""The simulator object and its HTTP server: reads a request, records it, has it answered, writes the reply."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .dispatch import answer, dialect_of, find_route
from .faults import SHAPES, Faults, parse_faults, split_tokens
from .routes import Route
from .tasks import Clock, SimState
from .wire import (
    MultipartError,
    ReceivedRequest,
    Reply,
    header_params,
    json_reply,
    parse_multipart,
)

MAX_BODY_BYTES = 64 * 1024 * 1024


class CometApiSimulator:
    """A CometAPI look-alike on 127.0.0.1 speaking the videos, Kling and Runway dialects (see the package doc)."""

    def __init__(
        self,
        time_scale: float = 0.0,
        shape: str = "reference",
        media_ttl_seconds: float = 3600.0,
        api_key: str = "sk-sim",
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        _check_shape(shape)
        self.host = host
        self.requested_port = port
        self.state = SimState(
            time_scale=time_scale,
            shape=shape,
            media_ttl_seconds=media_ttl_seconds,
            api_key=api_key,
            clock=clock,
            wall_clock=wall_clock,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> None:
        if self._server is not None:
            return
        self.state.stopping.clear()
        server = _Server((self.host, self.requested_port), _Handler)
        server.state = self.state
        self._server = server
        url_host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        self.state.base_url = f"http://{url_host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="cometapi-simulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.state.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait(self) -> None:
        """Block until stopped (or interrupted)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> CometApiSimulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self.state.base_url

    # -- what happened

    @property
    def received(self) -> list[ReceivedRequest]:
        with self.state.lock:
            return list(self.state.records)

    def creates(self, dialect: str | None = None) -> list[ReceivedRequest]:
        """The create calls (whatever they were answered), optionally of one dialect."""
        return [r for r in self.received if r.is_create and (dialect is None or r.dialect == dialect)]

    @property
    def errors(self) -> list[str]:
        """Tracebacks of simulator bugs hit while answering (each also answered a 500)."""
        with self.state.lock:
            return list(self.state.errors)

    def video_bytes_for(self, task_id: str) -> bytes:
        """The exact bytes the task's video URL (and /content) serves; KeyError for an unknown task."""
        with self.state.lock:
            task = self.state.tasks[task_id]
        return self.state.video_bytes(task)

    @property
    def served_videos(self) -> dict[str, bytes]:
        """task id -> video bytes, for every task whose video was downloaded at least once."""
        with self.state.lock:
            tasks = [t for t in self.state.tasks.values() if t.downloads]
        return {t.id: self.state.video_bytes(t) for t in tasks}

    # -- steering

    def reset(self) -> None:
        """Forget tasks, records, fault counters and global faults; the shape goes back to the initial one."""
        self.state.reset()

    def set_global_faults(self, *markers: str) -> None:
        """Faults for every request from now on (replacing earlier ones); raises on an unknown marker."""
        self.state.set_global_faults(parse_faults(t for marker in markers for t in split_tokens(marker)))

    def clear_global_faults(self) -> None:
        self.state.set_global_faults(Faults())

    def set_shape(self, shape: str) -> None:
        _check_shape(shape)
        self.state.shape = shape

    @property
    def shape(self) -> str:
        return self.state.shape

    @property
    def api_key(self) -> str:
        return self.state.api_key


def serve_forever(
    port: int,
    host: str = "127.0.0.1",
    time_scale: float = 0.1,
    shape: str = "reference",
    *,
    media_ttl_seconds: float = 3600.0,
    api_key: str = "sk-sim",
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run a simulator until interrupted (Ctrl-C); `ready` is called with the base URL once it listens."""
    simulator = CometApiSimulator(time_scale, shape, media_ttl_seconds, api_key, port=port, host=host)
    simulator.start()
    try:
        if ready is not None:
            ready(simulator.base_url)
        simulator.wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


def _check_shape(shape: str) -> None:
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")


# -- the socket side


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: SimState

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        """End kept-alive connections so no handler thread outlives stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up or time out are part of the game; anything else is a simulator bug."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            self.state.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cometapi-simulator/1.0"
    sys_version = ""
    timeout = 60
    # Headers and body go out in two writes; with Nagle on, each answer would wait ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def version_string(self) -> str:
        return self.server_version

    def _serve(self) -> None:
        state = self.server.state
        try:
            body = self._read_body()
        except ValueError as error:
            self._send(Reply(400, str(error).encode(), "text/plain"))
            self.close_connection = True
            return
        request, found = self._parse(body)
        handle = state.record(request)
        try:
            reply = answer(state, request, found)
        except Exception:
            state.errors.append(traceback.format_exc())
            reply = json_reply(500, {"error": {"message": "simulator bug: see CometApiSimulator.errors"}})
        # On record before the answer leaves, so a test reading `received` right after its call sees it.
        if reply.delay > 0:
            state.complete_record(handle, None, reply.task_id)
            state.stopping.wait(reply.delay)
        state.complete_record(handle, reply.status if reply.action == "send" else None, reply.task_id)
        if not self._send(reply) and reply.action == "send":
            state.complete_record(handle, None, reply.task_id)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _parse(self, body: bytes) -> tuple[ReceivedRequest, tuple[Route, dict[str, str]] | None]:
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        content_type = headers.get("content-type", "")
        kind, _ = header_params(content_type)
        parsed_json: Any = None
        form: dict[str, list[str]] = {}
        files: list[tuple[str, str, str, bytes]] = []
        if "json" in kind and body:
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        elif kind == "multipart/form-data":
            with contextlib.suppress(MultipartError):
                form, files = parse_multipart(content_type, body)
        elif kind == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        found = find_route(self.command, split.path)
        request = ReceivedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            json=parsed_json,
            form=form,
            files=files,
            dialect=found[0].dialect if found else dialect_of(split.path),
            at=self.server.state.clock(),
            is_create=bool(found and found[0].is_create),
        )
        return request, found

    def _send(self, reply: Reply) -> bool:
        """Write the reply as its action says; False when no answer was sent."""
        if reply.action == "reset":
            # SO_LINGER 0 makes close() send RST: the client sees a connection reset, not a clean close.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return False
        if reply.action == "drop":
            self.close_connection = True
            return False
        try:
            self.send_response(reply.status)
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            truncated = reply.send_bytes is not None and reply.send_bytes < len(reply.body)
            if truncated:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and reply.status not in (204, 304):
                self.wfile.write(reply.body[: reply.send_bytes] if truncated else reply.body)
            self.wfile.flush()
            if truncated:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        return True
