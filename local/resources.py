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
    JOBS_TABLE,
    LOCAL_NAMES,
    WORKFLOW_FUNCTIONS,
    api_environment,
    load_definition,
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

    def environment(self) -> dict[str, str]:
        """Every local function's environment (the API's is a superset of the workflow's)."""
        return api_environment(
            table=self.table,
            bucket=self.bucket,
            bus=self.bus,
            state_machine_arn=self.state_machine_arn,
            api_keys_table=self.api_keys_table,
            idempotency_table=self.idempotency_table,
        )


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def provision(session: boto3.Session | None = None, endpoint_url: str | None = None) -> LocalResources:
    session = session or boto3.Session(region_name=REGION)
    client: Any = lambda service: session.client(service, region_name=REGION, endpoint_url=endpoint_url)  # noqa: E731

    dynamodb = client("dynamodb")
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
    return LocalResources(
        table=LOCAL_NAMES["jobs_table"],
        bucket=LOCAL_NAMES["video_bucket"],
        bus=LOCAL_NAMES["event_bus"],
        state_machine_arn=state_machine_arn,
        events_queue_url=queue_url,
        api_keys_table=LOCAL_NAMES["api_keys_table"],
        idempotency_table=LOCAL_NAMES["idempotency_table"],
    )
