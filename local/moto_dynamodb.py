"""DynamoDB's atomic conditional writes, for moto running executions in threads.

DynamoDB evaluates a write's condition and applies the write as one step, and an answer never shows an item
half-written. moto does neither under threads: it checks a condition and then writes, with no lock, and it
serialises an answer from the stored item after the write returned, so another thread's write can change the
item mid-answer ("dictionary changed size during iteration"). Its Step Functions executor runs each execution
in its own thread: two executions could both pass a condition only one of them should (two jobs taking the
last provider slot, seen as two tasks in flight under a cap of one). ``atomic_dynamodb_writes`` runs moto's
DynamoDB requests one at a time, from parsing to the serialised answer, which is what DynamoDB guarantees
per item.

Like local/lambdas.py's override, a seam into moto's internals: tests/workflow/test_moto_seam.py checks it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """While active, moto's DynamoDB handles one request at a time (in-process and in server mode alike)."""
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415 - moto is a dev dependency

    lock = threading.RLock()
    original = DynamoHandler.call_action

    @functools.wraps(original)
    def one_at_a_time(self: DynamoHandler, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler.call_action = original  # type: ignore[method-assign]
