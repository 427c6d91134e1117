"""Fault markers: parsing them and counting how often a counted one has fired.

The marker grammar is documented in the package docstring (local/simulator/__init__.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

ALWAYS = 2**31
SHAPES = ("reference", "tutorial", "wrapped")

CountedKind = Literal["status", "reset", "ambiguous", "1303"]

_MARKER_BLOCK = re.compile(r"\[sim:([^\]]*)\]")
_COUNTED = re.compile(
    r"(?P<what>429|500|502|503|504|524|1303|reset|ambiguous)(?:x(?P<times>\d+))?(?:-retry-after=(?P<ra>\d+))?"
)
_COUNTED_KINDS: dict[str, CountedKind] = {"1303": "1303", "reset": "reset", "ambiguous": "ambiguous"}
_WITH_VALUE = re.compile(r"(?P<name>[a-z0-9-]+)=(?P<value>.*)")


class FaultMarkerError(ValueError):
    """A marker the simulator does not know: a typo in a test should fail loudly, not pass silently."""


@dataclass(frozen=True)
class CountedFault:
    """A fault that fires at most `times` times per request intent, then lets the request through."""

    token: str
    kind: CountedKind
    times: int = 1
    status: int = 0
    retry_after: str | None = None


@dataclass(frozen=True)
class Faults:
    counted: tuple[CountedFault, ...] = ()
    slow: float = 0.0
    # Create refusals that never go away (not retryable by nature).
    blocked: bool = False
    invalid_500: bool = False
    kling_1102: bool = False
    # Task faults: fixed at create time, they shape the task's polls and downloads.
    stuck: bool = False
    not_exist: int = 0
    not_exist_200: bool = False
    throttled: int = 0
    html: int = 0
    filter: bool = False
    fail: str | None = None
    truncate: bool = False
    truncate_once: bool = False
    expire: bool = False
    expire_once: bool = False
    wrong_type: bool = False
    no_url: bool = False
    shape: str | None = None
    # `poll-...` markers: transient faults on this task's status polls.
    poll_counted: tuple[CountedFault, ...] = ()
    poll_slow: float = 0.0
    tokens: tuple[str, ...] = field(default=())

    def merge(self, other: Faults) -> Faults:
        return Faults(
            counted=self.counted + other.counted,
            slow=max(self.slow, other.slow),
            blocked=self.blocked or other.blocked,
            invalid_500=self.invalid_500 or other.invalid_500,
            kling_1102=self.kling_1102 or other.kling_1102,
            stuck=self.stuck or other.stuck,
            not_exist=max(self.not_exist, other.not_exist),
            not_exist_200=self.not_exist_200 or other.not_exist_200,
            throttled=max(self.throttled, other.throttled),
            html=max(self.html, other.html),
            filter=self.filter or other.filter,
            fail=other.fail if other.fail is not None else self.fail,
            truncate=self.truncate or other.truncate,
            truncate_once=self.truncate_once or other.truncate_once,
            expire=self.expire or other.expire,
            expire_once=self.expire_once or other.expire_once,
            wrong_type=self.wrong_type or other.wrong_type,
            no_url=self.no_url or other.no_url,
            shape=other.shape or self.shape,
            poll_counted=self.poll_counted + other.poll_counted,
            poll_slow=max(self.poll_slow, other.poll_slow),
            tokens=self.tokens + other.tokens,
        )

    @property
    def fails(self) -> bool:
        return self.filter or self.fail is not None


NO_FAULTS = Faults()

_PLAIN = {
    "stuck": Faults(stuck=True),
    "filter": Faults(filter=True),
    "truncate": Faults(truncate=True),
    "truncate-once": Faults(truncate_once=True),
    "expire": Faults(expire=True),
    "expire-once": Faults(expire_once=True),
    "wrong-type": Faults(wrong_type=True),
    "no-url": Faults(no_url=True),
    "blocked": Faults(blocked=True),
    "500-invalid": Faults(invalid_500=True),
    "1102": Faults(kling_1102=True),
    "not-exist": Faults(not_exist=1),
    "html": Faults(html=ALWAYS),
}


def tokens_in_prompt(text: str) -> list[str]:
    """The comma-separated tokens of every `[sim:...]` block in a prompt."""
    return [marker for block in _MARKER_BLOCK.findall(text) for marker in split_tokens(block)]


def split_tokens(value: str) -> list[str]:
    return [marker.strip() for marker in value.split(",") if marker.strip()]


def parse_faults(tokens: Iterable[str]) -> Faults:
    """Faults from marker tokens; raises FaultMarkerError on the first unknown one."""
    faults = NO_FAULTS
    for marker in tokens:
        faults = faults.merge(_parse_marker(marker))
    return faults


def _parse_marker(marker: str) -> Faults:
    if marker.startswith("poll-"):
        return _parse_poll_marker(marker)
    if marker in _PLAIN:
        return replace(_PLAIN[marker], tokens=(marker,))
    base = Faults(tokens=(marker,))
    counted = _COUNTED.fullmatch(marker)
    if counted:
        what = counted["what"]
        kind = _COUNTED_KINDS.get(what, "status")
        fault = CountedFault(
            token=marker,
            kind=kind,
            times=int(counted["times"] or 1),
            status=int(what) if kind == "status" else 0,
            retry_after=counted["ra"],
        )
        return replace(base, counted=(fault,))
    valued = _WITH_VALUE.fullmatch(marker)
    if valued:
        return _parse_valued(base, marker, valued["name"], valued["value"].strip())
    raise FaultMarkerError(f"unknown simulator fault marker {marker!r}")


def _parse_valued(base: Faults, marker: str, name: str, value: str) -> Faults:
    if name == "fail":
        return replace(base, fail=value)
    if name == "shape":
        if value not in SHAPES:
            raise FaultMarkerError(f"unknown shape in simulator fault marker {marker!r}")
        return replace(base, shape=value)
    try:
        number = float(value)
    except ValueError:
        raise FaultMarkerError(f"simulator fault marker {marker!r} needs a number") from None
    if name == "slow":
        return replace(base, slow=number)
    if name == "not-exist":
        return replace(base, not_exist=int(number))
    if name == "not-exist-200":
        return replace(base, not_exist=int(number), not_exist_200=True)
    if name == "throttled":
        return replace(base, throttled=int(number))
    if name == "html":
        return replace(base, html=int(number))
    raise FaultMarkerError(f"unknown simulator fault marker {marker!r}")


def _parse_poll_marker(marker: str) -> Faults:
    inner = _parse_marker(marker.removeprefix("poll-"))
    counted = tuple(replace(fault, token=marker) for fault in inner.counted)
    only_status_reset_slow = inner == Faults(counted=inner.counted, slow=inner.slow, tokens=inner.tokens)
    if not only_status_reset_slow or any(f.kind not in ("status", "reset") for f in counted) or inner == NO_FAULTS:
        raise FaultMarkerError(f"{marker!r}: poll- takes a status (429, 500, ...), reset or slow=N")
    return Faults(poll_counted=counted, poll_slow=inner.slow, tokens=(marker,))


class FaultCounter:
    """How often each counted fault has fired per intent, so a retried request gets through after N."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fired: dict[tuple[str, str], int] = {}

    def fire(self, intent: str, counted: Iterable[CountedFault]) -> CountedFault | None:
        """The first fault with firings left for this intent (and count it), or None."""
        with self._lock:
            for fault in counted:
                key = (intent, fault.token)
                if self._fired.get(key, 0) < fault.times:
                    self._fired[key] = self._fired.get(key, 0) + 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._fired.clear()
