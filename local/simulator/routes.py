"""The route table's types (what a handler receives, how a path maps to one) and the shared poll prelude."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .faults import Faults
from .tasks import SimState, Task
from .wire import DialectName, ReceivedRequest, Reply, fault_reply, html_status_page, task_not_exist


@dataclass(frozen=True)
class Call:
    state: SimState
    request: ReceivedRequest
    params: dict[str, str]
    faults: Faults


Handler = Callable[[Call], Reply]
# For a create call: (text holding the prompt's fault markers, key of the request's intent for counted faults).
IntentOf = Callable[[ReceivedRequest], tuple[str, str]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    dialect: DialectName
    handler: Handler
    intent_of: IntentOf | None = None

    @property
    def is_create(self) -> bool:
        return self.intent_of is not None


def route(
    method: str, pattern: str, dialect: DialectName, handler: Handler, intent_of: IntentOf | None = None
) -> Route:
    return Route(method, re.compile(pattern), dialect, handler, intent_of)


def interrupted_poll(call: Call, task: Task, dialect: DialectName) -> tuple[Reply | None, bool]:
    """The reply a task fault gives a status poll instead of the status (or None), and whether the poll
    should show the task as throttled."""
    fired = call.state.counter.fire(f"poll {task.id}", task.faults.poll_counted)
    if fired is not None:
        return fault_reply(dialect, fired), False
    interruption = call.state.begin_poll(task)
    if interruption in ("not_exist", "not_exist_200"):
        return task_not_exist(dialect, http_200=interruption == "not_exist_200"), False
    if interruption == "html":
        return html_status_page(), False
    return None, interruption == "throttled"
