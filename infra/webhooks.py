"""Webhooks: terminal job events (rule on the product's bus) -> an SQS queue -> the webhook function.

A failed delivery stays on the queue, its visibility pushed out by the handler's backoff; deliver() gives an
event up after 24 h. The queue's dead-letter queue is the last safety net, drained by the dead-letter function.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import (
    WEBHOOK_DLQ_RETENTION_DAYS,
    WEBHOOK_DLQ_VISIBILITY_SECONDS,
    WEBHOOK_MAX_RECEIVE_COUNT,
    WEBHOOK_QUEUE_RETENTION_DAYS,
    WEBHOOK_QUEUE_VISIBILITY_SECONDS,
    WEBHOOK_RULE_PATTERN,
)


class Webhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        delivery: lambda_.Function,
        dead_letters: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(WEBHOOK_DLQ_VISIBILITY_SECONDS),
            retention_period=Duration.days(WEBHOOK_DLQ_RETENTION_DAYS),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            # SQS-managed keys: EventBridge may send to the queue without a key policy of ours.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(WEBHOOK_QUEUE_VISIBILITY_SECONDS),
            retention_period=Duration.days(WEBHOOK_QUEUE_RETENTION_DAYS),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=WEBHOOK_MAX_RECEIVE_COUNT
            ),
        )
        self.rule = events.Rule(
            self,
            "TerminalEvents",
            description="videogen: Completed and Failed job events -> the webhook queue",
            event_bus=bus,
            event_pattern=events.EventPattern(
                source=WEBHOOK_RULE_PATTERN["source"], detail_type=WEBHOOK_RULE_PATTERN["detail-type"]
            ),
            targets=[targets.SqsQueue(self.queue)],
        )
        delivery.add_event_source(sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True))
        dead_letters.add_event_source(
            sources.SqsEventSource(self.dead_letter_queue, batch_size=10, report_batch_item_failures=False)
        )
