"""Creates the stack's resources on an AWS endpoint (moto, in-process or as a server), from infra.config.

The same names, keys and settings the CDK stack uses, and the same ASL file with the same substitutions.
Used by the local stack and by the workflow tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from functions.common.events import EVENT_SOURCE
from infra.config import (
    API_KEYS_TABLE_KEY,
    IDEMPOTENCY_TABLE_KEY,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INTAKE_FUNCTIONS,
    INTAKE_LOCAL_NAMES,
    JOBS_TABLE,
    LOCAL_NAMES,
    REQUESTED_RULE_PATTERN,
    WEBHOOK_LOCAL_NAMES,
    WEBHOOK_QUEUE_RETENTION_DAYS,
    WEBHOOK_QUEUE_VISIBILITY_SECONDS,
    WEBHOOK_RULE_PATTERN,
    WORKFLOW_FUNCTIONS,
    api_environment,
    inbox_rule_pattern,
    intake_environment,
    load_batch_definition,
    load_definition,
    provider_environment,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass(frozen=True)
class LocalResources:
    table: str
    bucket: str
    bus: str
    state_machine_arn: str
    events_queue_url: str
    """An SQS queue subscribed to every videogen event on the bus (what tests and the CLI read events from)."""

    api_keys_table: str
    idempotency_table: str
    batch_state_machine_arn: str = ""
    intake_queue_url: str = ""
    """Where the intake's two rules deliver locally (moto cannot target a Lambda function from a rule):
    local/event_delivery.py hands each event to the intake handler, as EventBridge would."""
    webhook_queue_url: str = ""
    """The webhook queue, as deployed (rule on the bus -> queue): local/event_delivery.py is its event source
    mapping, handing each message to the webhook handler as an SQS event."""

    def environment(self) -> dict[str, str]:
        """Every local function's environment (the API's and the intake's are supersets of the workflow's)."""
        return {
            **api_environment(
                table=self.table,
                bucket=self.bucket,
                bus=self.bus,
                state_machine_arn=self.state_machine_arn,
                api_keys_table=self.api_keys_table,
                idempotency_table=self.idempotency_table,
            ),
            **intake_environment(
                table=self.table,
                bucket=self.bucket,
                bus=self.bus,
                state_machine_arn=self.state_machine_arn,
                batch_state_machine_arn=self.batch_state_machine_arn,
            ),
        }


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def create_tables(dynamodb: Any) -> None:
    """The jobs table (with its owner index), the API keys table and the idempotency table, as the stack has them
    (keys, index, and the jobs' and idempotency records' time-to-live attributes). ``dynamodb`` is a client."""
    dynamodb.create_table(
        TableName=LOCAL_NAMES["jobs_table"],
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": JOBS_TABLE.partition_key, "AttributeType": "S"},
            {"AttributeName": JOBS_TABLE.owner_key, "AttributeType": "S"},
            {"AttributeName": JOBS_TABLE.owner_sort_key, "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": JOBS_TABLE.partition_key, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": JOBS_TABLE.owner_index,
                "KeySchema": [
                    {"AttributeName": JOBS_TABLE.owner_key, "KeyType": "HASH"},
                    {"AttributeName": JOBS_TABLE.owner_sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for name, key in (
        (LOCAL_NAMES["api_keys_table"], API_KEYS_TABLE_KEY),
        (LOCAL_NAMES["idempotency_table"], IDEMPOTENCY_TABLE_KEY),
    ):
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        )
    for name, attribute in (
        (LOCAL_NAMES["jobs_table"], JOBS_TABLE.ttl_attribute),
        (LOCAL_NAMES["idempotency_table"], IDEMPOTENCY_TTL_ATTRIBUTE),
    ):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True}
        )


def provision(session: boto3.Session | None = None, endpoint_url: str | None = None) -> LocalResources:
    session = session or boto3.Session(region_name=REGION)
    client: Any = lambda service: session.client(service, region_name=REGION, endpoint_url=endpoint_url)  # noqa: E731

    create_tables(client("dynamodb"))
    client("s3").create_bucket(Bucket=LOCAL_NAMES["video_bucket"])

    events = client("events")
    events.create_event_bus(Name=LOCAL_NAMES["event_bus"])
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="videogen-events-local")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="videogen-all-events",
        EventBusName=LOCAL_NAMES["event_bus"],
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule="videogen-all-events", EventBusName=LOCAL_NAMES["event_bus"], Targets=[{"Id": "queue", "Arn": queue_arn}]
    )

    definition = load_definition({key: function_arn(spec.local_name) for key, spec in WORKFLOW_FUNCTIONS.items()})
    state_machine_arn = client("stepfunctions").create_state_machine(
        name=LOCAL_NAMES["state_machine"],
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/videogen-state-machine",
        type="STANDARD",
    )["stateMachineArn"]
    batch_definition = load_batch_definition(
        {key: function_arn(spec.local_name) for key, spec in INTAKE_FUNCTIONS.items()}
    )
    batch_state_machine_arn = client("stepfunctions").create_state_machine(
        name=INTAKE_LOCAL_NAMES["batch_state_machine"],
        definition=batch_definition,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/videogen-batch-state-machine",
        type="STANDARD",
    )["stateMachineArn"]
    intake_queue_url = _intake_rules(client, LOCAL_NAMES["video_bucket"])
    webhook_queue_url = _webhook_rule(client)
    return LocalResources(
        table=LOCAL_NAMES["jobs_table"],
        bucket=LOCAL_NAMES["video_bucket"],
        bus=LOCAL_NAMES["event_bus"],
        state_machine_arn=state_machine_arn,
        events_queue_url=queue_url,
        api_keys_table=LOCAL_NAMES["api_keys_table"],
        idempotency_table=LOCAL_NAMES["idempotency_table"],
        batch_state_machine_arn=batch_state_machine_arn,
        intake_queue_url=intake_queue_url,
        webhook_queue_url=webhook_queue_url,
    )


def _intake_rules(client: Any, bucket: str) -> str:
    """S3 -> EventBridge notifications for the bucket, and the intake's two rules, as deployed: inbox objects
    on the default bus (where S3 sends), "Video Generation Requested" on the product's bus. moto matches the
    rules and builds the events; it cannot deliver to a Lambda target, so locally both rules target a queue
    and local/event_delivery.py invokes the intake handler with each event, as EventBridge would."""
    client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    sqs = client("sqs")
    queue_url: str = sqs.create_queue(QueueName="videogen-intake-local")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client("events")
    for rule, bus, pattern in (
        (INTAKE_LOCAL_NAMES["inbox_rule"], "default", inbox_rule_pattern(bucket)),
        (INTAKE_LOCAL_NAMES["requested_rule"], LOCAL_NAMES["event_bus"], REQUESTED_RULE_PATTERN),
    ):
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "intake", "Arn": queue_arn}])
    return queue_url


def _webhook_rule(client: Any) -> str:
    """Terminal job events on the product's bus -> the webhook queue, with the deployed rule's pattern and the
    deployed queue's visibility timeout and retention (its dead-letter queue is deployed only: locally nothing
    runs long enough for a message to be received WEBHOOK_MAX_RECEIVE_COUNT times)."""
    sqs = client("sqs")
    attributes = {
        "VisibilityTimeout": str(WEBHOOK_QUEUE_VISIBILITY_SECONDS),
        "MessageRetentionPeriod": str(WEBHOOK_QUEUE_RETENTION_DAYS * 24 * 3600),
    }
    queue_url: str = sqs.create_queue(QueueName=WEBHOOK_LOCAL_NAMES["queue"], Attributes=attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client("events")
    rule, bus = WEBHOOK_LOCAL_NAMES["rule"], LOCAL_NAMES["event_bus"]
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(WEBHOOK_RULE_PATTERN))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "webhooks", "Arn": queue_arn}])
    return queue_url


def store_provider_key(
    api_key: str, *, base_url: str, session: boto3.Session | None = None, endpoint_url: str | None = None
) -> dict[str, str]:
    """Puts the CometAPI key in (local) Secrets Manager under the stack's secret name scheme, and returns what
    the handlers then need, as a deployed function gets it: the base URL and the secret's *name*."""
    session = session or boto3.Session(region_name=REGION)
    secrets: Any = session.client("secretsmanager", region_name=REGION, endpoint_url=endpoint_url)
    secrets.create_secret(Name=LOCAL_NAMES["secret"], SecretString=api_key)
    return provider_environment(secret_name=LOCAL_NAMES["secret"], base_url=base_url)
