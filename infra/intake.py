"""EventBridge-started jobs: the inbox rule (S3 "Object Created" under inbox/, on the account's default bus,
where S3 sends its events) and the requested-event rule ("Video Generation Requested", any source, on the
product's bus), both targeting the intake function. Patterns from infra.config, as the local stack uses them.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import REQUESTED_RULE_PATTERN, inbox_rule_pattern

TARGET_MAX_EVENT_AGE = Duration.hours(24)
TARGET_RETRY_ATTEMPTS = 185


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """infra.config's plain pattern as CDK's EventPattern."""
    return events.EventPattern(
        source=pattern.get("source"),
        detail_type=pattern.get("detail-type"),
        detail=pattern.get("detail"),
    )


class Intake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        bucket: s3.IBucket,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        target = targets.LambdaFunction(
            function, retry_attempts=TARGET_RETRY_ATTEMPTS, max_event_age=TARGET_MAX_EVENT_AGE
        )
        self.inbox_rule = events.Rule(
            self,
            "InboxObjects",
            description="videogen: inbox objects (*.json one job, *.jsonl a batch) -> intake",
            event_pattern=event_pattern(inbox_rule_pattern(bucket.bucket_name)),
            targets=[target],
        )
        self.requested_rule = events.Rule(
            self,
            "GenerationRequested",
            description="videogen: Video Generation Requested events (any source) -> intake",
            event_bus=bus,
            event_pattern=event_pattern(REQUESTED_RULE_PATTERN),
            targets=[target],
        )
