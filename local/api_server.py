"""The local front door: HTTP on loopback -> API Gateway REST proxy events -> the real api handler.

It does what API Gateway does in the deployed stack: the 10 MB request limit, the Lambda authorizer's check
of the Bearer key (the same key store), and the proxy event format, so the handler cannot tell the difference.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

from functions.api import handler as api_handler
from functions.api.keys import ApiKeyStore, bearer_key
from infra.config import MAX_REQUEST_BYTES
from local.lambdas import LocalLambdaContext
from local.resources import REGION
from local.stack import LocalStack

TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")


def envelope(status: int, message: str, code: str) -> tuple[int, dict[str, str], bytes]:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class LocalApiServer:
    def __init__(self, stack: LocalStack, host: str = "127.0.0.1", port: int = 0):
        self.stack = stack
        dynamodb = boto3.resource("dynamodb", region_name=REGION, endpoint_url=stack.endpoint_url)
        self.keys = ApiKeyStore(dynamodb.Table(stack.resources.api_keys_table))
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None
        api_handler.videos.cache_clear()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> LocalApiServer:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        api_handler.videos.cache_clear()

    def __enter__(self) -> LocalApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        owner = self.keys.owner_of(bearer_key(headers.get("authorization")))
        if owner is None:
            return envelope(401, "Missing or invalid API key: send Authorization: Bearer <key>.", "invalid_api_key")
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        content_type = headers.get("content-type", "")
        text = not body or content_type.startswith(TEXT_TYPES)
        event: dict[str, Any] = {
            "resource": parts.path,
            "path": parts.path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "authorizer": {"owner": owner, "principalId": owner},
                "httpMethod": method,
                "path": parts.path,
                "resourcePath": parts.path,
                "stage": "local",
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": (body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()) or None,
            "isBase64Encoded": not text,
        }
        context: Any = LocalLambdaContext(function_name="videogen-api")
        answer = api_handler.handler(event, context)
        out_headers = {k: v for k, v in (answer.get("headers") or {}).items()}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        raw = answer.get("body") or ""
        data = base64.b64decode(raw) if answer.get("isBase64Encoded") else raw.encode()
        return int(answer["statusCode"]), out_headers, data

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    status, headers, data = envelope(
                        413,
                        f"The request body is {length} bytes; the limit is {MAX_REQUEST_BYTES}. Send large images "
                        "as an https URL instead of uploading them.",
                        "request_too_large",
                    )
                    self.close_connection = True
                else:
                    body = self.rfile.read(length) if length else b""
                    lowered = {k.lower(): v for k, v in self.headers.items()}
                    status, headers, data = front.handle(self.command, self.path, lowered, body)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            # Every method reaches the handler, as API Gateway's ANY method does (http.server answers the
            # ones without a do_ method with its own 501 HTML page).
            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve  # noqa: N815 - http.server's names
            do_HEAD = do_OPTIONS = do_TRACE = do_QUERY = do_CONNECT = _serve  # noqa: N815

        return Handler
