"""DynamoDB's atomic conditional writes, for moto running executions in threads.

DynamoDB evaluates a write's condition and applies the write as one step. moto checks the condition and then
writes, with no lock, and its Step Functions executor runs each execution in its own thread: two executions
could both pass a condition only one of them should (two jobs taking the last provider slot, seen as two
tasks in flight under a cap of one). ``atomic_dynamodb_writes`` serialises moto's item writes, which is what
DynamoDB guarantees per item.

Like local/lambdas.py's override, a seam into moto's internals: tests/workflow/test_moto_seam.py checks it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


@contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """While active, moto's DynamoDB applies one item write at a time."""
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - moto is a dev dependency

    lock = threading.RLock()
    originals: dict[str, Callable[..., Any]] = {name: getattr(DynamoDBBackend, name) for name in WRITES}

    def serialised(write: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(write)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return write(*args, **kwargs)

        return locked

    for name, write in originals.items():
        setattr(DynamoDBBackend, name, serialised(write))
    try:
        yield
    finally:
        for name, write in originals.items():
            setattr(DynamoDBBackend, name, write)
