"""Unit tests never touch the network: resolving a name or opening a connection fails the test loudly."""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest


class NetworkBlockedError(RuntimeError):
    """Raised by any DNS lookup or connection attempt in a unit test.

    Deliberately not an OSError: code that turns OSError into a friendly "does not resolve" must not be able to
    swallow an accidental real lookup.
    """


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise NetworkBlockedError(f"network access is blocked in unit tests (called with {args!r})")


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setattr(socket, "gethostbyname", _refuse)
    monkeypatch.setattr(socket, "gethostbyname_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
