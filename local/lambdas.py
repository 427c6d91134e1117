"""Lambda functions in-process: the registry the workflow tests and the local stack share.

moto's Step Functions executor invokes Lambda task states through moto's Lambda service. With
``{"lambda": {"use_docker": False}}`` that service is ``LambdaSimpleBackend``, whose ``invoke`` just echoes
the payload. ``route_invocations`` replaces that one method with a lookup in our registry, so a task state
runs the real handler in this process, and a raised exception comes back the way AWS Lambda reports it
(``X-Amz-Function-Error: Unhandled``, ``{"errorType", "errorMessage"}``), which is what Retry/Catch match.

That override is the one seam into moto's internals; tests/workflow/test_moto_seam.py fails loudly if a moto
upgrade moves it.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from infra.config import INTAKE_FUNCTIONS, WEBHOOK_FUNCTIONS, WORKFLOW_FUNCTIONS

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    """The attributes handlers (and Powertools) read from the real LambdaContext."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class Invocation:
    function_name: str
    payload: Any
    error_type: str | None


class LambdaRegistry:
    """function name -> handler, and a record of every invocation (tests count them)."""

    def __init__(self, handlers: Mapping[str, Handler]):
        self.handlers = dict(handlers)
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()

    @classmethod
    def workflow(cls) -> LambdaRegistry:
        """The workflow functions, the intake's (the inbox batch's Task states and the rules' target) and the
        webhook functions, under their local names, importing each real handler."""
        specs = [*WORKFLOW_FUNCTIONS.values(), *INTAKE_FUNCTIONS.values(), *WEBHOOK_FUNCTIONS.values()]
        return cls({spec.local_name: _import(spec.handler) for spec in specs})

    def invoke(self, function_name: str, payload: bytes | str | None) -> tuple[bytes, str | None]:
        """Run the handler. Returns the response bytes and the function error type (None on success)."""
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        handler = self.handlers.get(name)
        if handler is None:
            raise KeyError(f"no local handler registered for Lambda function {name!r}; known: {sorted(self.handlers)}")
        event = json.loads(payload) if payload else {}
        try:
            result = handler(event, LocalLambdaContext(function_name=name))
        except Exception as exc:
            logger.info("local Lambda %s raised %s: %s", name, type(exc).__name__, exc)
            self._record(name, event, type(exc).__name__)
            body = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-5:],
            }
            return json.dumps(body).encode(), type(exc).__name__
        self._record(name, event, None)
        return json.dumps(result).encode(), None

    def _record(self, name: str, event: Any, error_type: str | None) -> None:
        with self._lock:
            self.invocations.append(Invocation(name, event, error_type))

    def calls(self, function_name: str) -> list[Invocation]:
        with self._lock:
            return [i for i in self.invocations if i.function_name == function_name]


def _import(dotted: str) -> Handler:
    module_name, _, attribute = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


@contextmanager
def route_invocations(registry: LambdaRegistry) -> Iterator[LambdaRegistry]:
    """While active, moto's simple Lambda backend runs ``registry``'s handlers instead of echoing."""
    from moto.awslambda_simple.models import LambdaSimpleBackend  # noqa: PLC0415 - moto is a dev dependency

    original = LambdaSimpleBackend.invoke

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        payload, error_type = registry.invoke(function_name, body)
        if error_type is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    try:
        yield registry
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]
