"""The product's event bus (one Completed or Failed event per job) and its archive, for replay.

Users subscribe with their own rules on this bus; docs/deploy.md has an example (EXAMPLE_RULE_PATTERN).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED
from infra.options import StackOptions

EXAMPLE_RULE_PATTERN: dict[str, Any] = {
    "source": [EVENT_SOURCE],
    "detail-type": [COMPLETED, FAILED],
}
"""The rule docs/deploy.md shows: every terminal job (narrow it with ``detail`` fields, e.g. ``status``)."""


class EventBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, options: StackOptions) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", description="videogen: one Completed or Failed event per job")
        self.archive = self.bus.archive(
            "Archive",
            description="Every videogen event, for replay into the bus (StartReplay)",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            retention=Duration.days(options.event_archive_days) if options.event_archive_days else None,
        )
