"""What a Lambda container builds on its first invocation and keeps for the next ones (clients, settings).

Every such factory is decorated with ``per_container``, so that one call, ``forget_container_state``, drops them
all. Deployed, nothing calls it: a container lives with one configuration. The embedded local stack calls it as
it starts and stops, because it points one process at a new AWS endpoint each time, and a client keeps the
endpoint it was made with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_CACHES: list[Callable[[], None]] = []


def per_container(factory: Callable[[], T]) -> functools._lru_cache_wrapper[T]:
    """``functools.cache`` for a container-lifetime factory, registered so it can be forgotten."""
    cached = functools.cache(factory)
    _CACHES.append(cached.cache_clear)
    return cached


def forget_container_state() -> None:
    """Drop every per-container object, and Powertools' process-wide parameter providers (secrets)."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

    for clear in _CACHES:
        clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
