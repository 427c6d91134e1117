"""The local stack and the CDK stack describe the same product: the same tables (keys, indexes, time to live),
state machines (the same files, their placeholders filled with the same functions), event rules (patterns, buses,
targets), webhook queue settings, secret name scheme, and every function sees the same settings.

Names differ by design: the template's are CloudFormation tokens (``{"Ref": "StorageJobs..."}``) or generated,
the local stack's are infra.config.LOCAL_NAMES. So both sides are compared after each name is replaced by what
it stands for ("jobs table", "video bucket", "submit function", ...): the same variable, rule or state must
point at the same resource in both stacks, and every literal setting must be equal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic_settings import BaseSettings

from functions.common.settings import ProviderSettings, WorkflowSettings
from functions.intake.logic import IntakeSettings
from functions.webhooks.handler import WebhookSettings
from infra.config import (
    ALL_FUNCTIONS,
    ASL_PATH,
    ASL_SUBSTITUTIONS,
    BATCH_ASL_PATH,
    BATCH_ASL_SUBSTITUTIONS,
    DEFAULT_COMETAPI_BASE_URL,
    DEFAULT_STACK_NAME,
    INTAKE_FUNCTIONS,
    INTAKE_LOCAL_NAMES,
    LOCAL_NAMES,
    LOCAL_STACK_NAME,
    PLACEHOLDER,
    POWERTOOLS_ENVIRONMENT,
    WEBHOOK_FUNCTIONS,
    WEBHOOK_LOCAL_NAMES,
    WORKFLOW_FUNCTIONS,
    secret_name,
)
from local.resources import ACCOUNT, REGION, LocalResources, function_arn, provision, store_provider_key
from tests.fixtures.aws import use_fake_aws
from tests.infra.conftest import FULL_OPTIONS, Template

DEPLOYED_RESOURCES = {
    "/Storage/Jobs/Resource": "jobs table",
    "/Storage/ApiKeys/Resource": "API keys table",
    "/Storage/Idempotency/Resource": "idempotency table",
    "/Storage/Videos/Resource": "video bucket",
    "/Events/Bus/Resource": "event bus",
    "/Workflow/StateMachine/Resource": "state machine",
    "/Batch/StateMachine/Resource": "batch state machine",
    "/Webhooks/Queue/Resource": "webhook queue",
    **{f"/Functions/{key.capitalize()}/Function/Resource": f"{key} function" for key in ALL_FUNCTIONS},
}
"""Construct path -> what the resource is for: the vocabulary both stacks are compared in."""

PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
SETTINGS: dict[str, type[BaseSettings]] = {
    **dict.fromkeys(WORKFLOW_FUNCTIONS, WorkflowSettings),
    **dict.fromkeys(INTAKE_FUNCTIONS, IntakeSettings),
    **dict.fromkeys(WEBHOOK_FUNCTIONS, WebhookSettings),
}
"""The settings class each function's code reads its environment with."""

PROVIDER_CALLERS = ("submit", "poll", "store", "api")
"""The functions that read the CometAPI key (infra/stack.py grants them the secret)."""


@pytest.fixture(scope="module")
def local() -> Iterator[LocalResources]:
    with pytest.MonkeyPatch.context() as patch:
        use_fake_aws(patch, REGION)
        with mock_aws():
            yield provision()


def client(service: str) -> Any:
    make_client: Any = boto3.client
    return make_client(service, region_name=REGION)


def queue_arn(queue_url: str) -> str:
    return str(
        client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )


class Deployed:
    """The template's tokens, resolved to what they stand for."""

    def __init__(self, template: Template):
        self.template = template
        self.by_id = {template.by_path(path): meaning for path, meaning in DEPLOYED_RESOURCES.items()}
        # The batch state machine's ARN is built from its name, not referenced (infra/batch.py: no cycle).
        batch = template.props(template.by_path("/Batch/StateMachine/Resource"))["StateMachineName"]
        self.by_arn = {f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{batch}": "batch state machine"}

    def meaning(self, value: Any) -> Any:
        """A property value with every Ref, GetAtt Arn and Join replaced by what it stands for."""
        if isinstance(value, list):
            return [self.meaning(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            return PSEUDO_PARAMETERS.get(name) or self.by_id.get(name, value)
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
            return self.by_id.get(value["Fn::GetAtt"][0], value)
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            joined = separator.join(str(self.meaning(part)) for part in parts)
            return self.by_arn.get(joined, joined)
        return {key: self.meaning(item) for key, item in value.items()}

    def resource(self, path: str) -> dict[str, Any]:
        return self.template.props(self.template.by_path(path))

    def environment(self, key: str) -> dict[str, Any]:
        """A function's variables, as the stack sets them (Powertools' own left out: the local stack logs its
        own way, and the handlers name their service themselves)."""
        _, props = self.template.function(key)
        variables = props["Environment"]["Variables"]
        return {name: self.meaning(value) for name, value in variables.items() if name not in POWERTOOLS_ENVIRONMENT}


def local_meanings(local: LocalResources) -> dict[str, str]:
    """The local stack's names and ARNs -> what they stand for (the same vocabulary as Deployed)."""
    return {
        local.table: "jobs table",
        local.api_keys_table: "API keys table",
        local.idempotency_table: "idempotency table",
        local.bucket: "video bucket",
        local.bus: "event bus",
        local.state_machine_arn: "state machine",
        local.batch_state_machine_arn: "batch state machine",
        queue_arn(local.webhook_queue_url): "webhook queue",
        # moto cannot target a Lambda function from a rule: locally the intake's rules target a queue, which
        # local/event_delivery.py drains into the intake handler, as EventBridge would invoke it.
        queue_arn(local.intake_queue_url): "intake function",
        **{function_arn(spec.local_name): f"{key} function" for key, spec in ALL_FUNCTIONS.items()},
    }


def local_meaning(value: Any, meanings: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [local_meaning(item, meanings) for item in value]
    if isinstance(value, dict):
        return {key: local_meaning(item, meanings) for key, item in value.items()}
    return meanings.get(value, value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def deployed(template: Template) -> Deployed:
    return Deployed(template)


# --- tables -----------------------------------------------------------------------------------------------------


def local_table(name: str) -> dict[str, Any]:
    dynamodb = client("dynamodb")
    table = dict(dynamodb.describe_table(TableName=name)["Table"])
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl["TimeToLiveStatus"] == "ENABLED":  # in the template's shape
        table["TimeToLiveSpecification"] = {"AttributeName": ttl["AttributeName"], "Enabled": True}
    return table


def shape(table: dict[str, Any]) -> dict[str, Any]:
    """What must match between the two stacks: keys, attribute types, index keys and projections, time to live."""
    return {
        "keys": table["KeySchema"],
        "types": sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]),
        "indexes": sorted(
            (i["IndexName"], json.dumps(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in table.get("GlobalSecondaryIndexes", [])
        ),
        "ttl": table.get("TimeToLiveSpecification"),
    }


@pytest.mark.parametrize(
    ("local_name", "construct"),
    [("table", "Jobs"), ("api_keys_table", "ApiKeys"), ("idempotency_table", "Idempotency")],
)
def test_tables_have_the_same_keys_indexes_and_time_to_live(
    local: LocalResources, deployed: Deployed, local_name: str, construct: str
) -> None:
    # Given the same table in each stack
    deployed_table = deployed.resource(f"/Storage/{construct}/Resource")

    # When
    local_shape = shape(local_table(getattr(local, local_name)))

    # Then keys, attribute types, indexes and the expiry attribute are identical
    assert local_shape == shape(deployed_table)


# --- state machines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("construct", "arn_field", "path", "substitutions"),
    [
        ("/Workflow/StateMachine/Resource", "state_machine_arn", ASL_PATH, ASL_SUBSTITUTIONS),
        ("/Batch/StateMachine/Resource", "batch_state_machine_arn", BATCH_ASL_PATH, BATCH_ASL_SUBSTITUTIONS),
    ],
    ids=["video_generation", "video_batch"],
)
def test_both_run_the_same_definition_with_the_same_functions_substituted(
    local: LocalResources,
    deployed: Deployed,
    construct: str,
    arn_field: str,
    path: Any,
    substitutions: dict[str, str],
) -> None:
    # Given the ASL file with each ${placeholder} filled with its function (infra.config's map)
    text = path.read_text(encoding="utf-8")
    from_file = json.loads(PLACEHOLDER.sub(lambda m: f"{substitutions[m.group(1)]} function", text))

    # When each stack's definition has its own substitutions resolved the same way
    sfn = client("stepfunctions")
    local_text = sfn.describe_state_machine(stateMachineArn=getattr(local, arn_field))["definition"]
    local_definition = local_meaning(json.loads(local_text), local_meanings(local))
    props = deployed.resource(construct)
    filled = {name: deployed.meaning(value) for name, value in props["DefinitionSubstitutions"].items()}
    deployed_definition = json.loads(PLACEHOLDER.sub(lambda m: filled[m.group(1)], props["DefinitionString"]))

    # Then both run the file itself, with the same function in every Task
    assert props["DefinitionString"] == text  # inline, unsubstituted: Step Functions fills it
    assert local_definition == from_file
    assert deployed_definition == from_file


# --- functions' environments ------------------------------------------------------------------------------------


def seen_by(settings: type[BaseSettings], environment: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """What a function's settings class reads from ``environment`` (and nothing else)."""
    with monkeypatch.context() as patch:
        for name in os.environ:
            if name.lower() in settings.model_fields:
                patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, str(value))
        return settings().model_dump()


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_every_function_sees_the_same_resources_and_settings_in_both_stacks(
    local: LocalResources, deployed: Deployed, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's variables in the template, and the local handlers' (one environment for all of them)
    deployed_variables = deployed.environment(key)
    provider = {"COMETAPI_BASE_URL", "COMETAPI_KEY_SECRET_NAME"}  # compared in the secret test below
    local_variables = local_meaning(local.environment(), local_meanings(local))

    # When each is read by the settings class the function's code reads it with
    deployed_settings = seen_by(SETTINGS[key], deployed_variables, monkeypatch)
    local_settings = seen_by(SETTINGS[key], local_variables, monkeypatch)

    # Then every deployed variable is set locally too, and the function sees the same bucket, prefixes, bus,
    # tables, state machines and limits in both (names compared by what they stand for)
    missing = set(deployed_variables) - provider - set(local_variables)
    assert not missing, f"{key}: set deployed, not locally: {sorted(missing)}"
    assert local_settings == deployed_settings


def test_the_functions_publish_to_the_bus_the_rules_listen_on(local: LocalResources, deployed: Deployed) -> None:
    # Given every function that is told an event bus, in each stack
    told = {key: deployed.environment(key).get("EVENT_BUS_NAME") for key in ALL_FUNCTIONS}
    deployed_buses = {bus for bus in told.values() if bus is not None}

    # When the product's bus is looked up in each
    events = client("events")
    local_bus = events.describe_event_bus(Name=local.environment()["EVENT_BUS_NAME"])["Name"]
    local_rules = {rule["Name"] for rule in events.list_rules(EventBusName=local_bus)["Rules"]}

    # Then it is the one bus of the stack (deployed: a CloudFormation-named bus; locally LOCAL_NAMES'), and the
    # requested-event and webhook rules are on it
    assert deployed_buses == {"event bus"}
    assert len(deployed.template.of_type("AWS::Events::EventBus")) == 1
    for path in ("/Intake/GenerationRequested/Resource", "/Webhooks/TerminalEvents/Resource"):
        assert deployed.meaning(deployed.resource(path)["EventBusName"]) == "event bus"
    assert local_bus == local.bus
    assert {INTAKE_LOCAL_NAMES["requested_rule"], WEBHOOK_LOCAL_NAMES["rule"]} <= local_rules


# --- event rules --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("construct", "local_rule", "local_bus"),
    [
        ("/Intake/InboxObjects/Resource", INTAKE_LOCAL_NAMES["inbox_rule"], "default"),
        ("/Intake/GenerationRequested/Resource", INTAKE_LOCAL_NAMES["requested_rule"], LOCAL_NAMES["event_bus"]),
        ("/Webhooks/TerminalEvents/Resource", WEBHOOK_LOCAL_NAMES["rule"], LOCAL_NAMES["event_bus"]),
    ],
    ids=["inbox", "requested", "webhook"],
)
def test_rules_match_the_same_events_on_the_same_bus_for_the_same_target(
    local: LocalResources, deployed: Deployed, construct: str, local_rule: str, local_bus: str
) -> None:
    # Given the rule in each stack (the inbox rule on the account's default bus, where S3 sends its events)
    props = deployed.resource(construct)
    events = client("events")
    rule = events.describe_rule(Name=local_rule, EventBusName=local_bus)
    meanings = local_meanings(local)

    # When each rule is read in the same vocabulary
    deployed_rule = {
        "bus": deployed.meaning(props.get("EventBusName", "default")),
        "pattern": deployed.meaning(props["EventPattern"]),
        "state": props["State"],
        "targets": [deployed.meaning(t["Arn"]) for t in props["Targets"]],
    }
    targets = events.list_targets_by_rule(Rule=local_rule, EventBusName=local_bus)["Targets"]
    local_rule_read = {
        "bus": meanings.get(local_bus, local_bus),
        "pattern": local_meaning(json.loads(rule["EventPattern"]), meanings),
        "state": rule["State"],
        "targets": [meanings[t["Arn"]] for t in targets],
    }

    # Then they match the same events (bucket and prefix included) on the same bus, for the same target
    assert local_rule_read == deployed_rule


def test_the_webhook_queue_has_the_deployed_timeouts(local: LocalResources, deployed: Deployed) -> None:
    # Given the webhook queue of each stack
    props = deployed.resource("/Webhooks/Queue/Resource")

    # When
    attributes = client("sqs").get_queue_attributes(QueueUrl=local.webhook_queue_url, AttributeNames=["All"])

    # Then a delivery attempt has as long before it is retried, and an event is kept as long (the dead-letter
    # queue is deployed only: nothing local runs long enough to exhaust its receive count)
    assert int(attributes["Attributes"]["VisibilityTimeout"]) == props["VisibilityTimeout"]
    assert int(attributes["Attributes"]["MessageRetentionPeriod"]) == props["MessageRetentionPeriod"]


# --- the CometAPI key -----------------------------------------------------------------------------------------------


def test_the_key_secret_is_named_by_one_scheme_and_the_functions_are_told_its_name(
    local: LocalResources, deployed: Deployed, full: Template
) -> None:
    # Given the key stored the way the local stack stores it
    local_variables = store_provider_key("sk-parity", base_url="http://127.0.0.1:9")

    # When the deployed secret and the functions' provider variables are read
    _, secret = deployed.template.one("AWS::SecretsManager::Secret")
    told = {key: deployed.environment(key) for key in PROVIDER_CALLERS}
    imported = {full.function(key)[1]["Environment"]["Variables"]["COMETAPI_KEY_SECRET_NAME"] for key in told}

    # Then the deployed secret is <stack name>/cometapi-key and every function that reads the key is told that
    # name (an imported secret: its own name), with the provider's URL, under the variables the local
    # handlers get
    expected = {
        "COMETAPI_BASE_URL": DEFAULT_COMETAPI_BASE_URL,
        "COMETAPI_KEY_SECRET_NAME": secret_name(DEFAULT_STACK_NAME),
    }
    assert secret["Properties"]["Name"] == secret_name(DEFAULT_STACK_NAME)
    for key, variables in told.items():
        assert {name: variables.get(name) for name in local_variables} == expected, key
    assert imported == {FULL_OPTIONS.comet_api_key_secret_name}
    # And locally the secret follows the same scheme (after the local stack's name) and holds the key
    assert local_variables["COMETAPI_KEY_SECRET_NAME"] == secret_name(LOCAL_STACK_NAME)
    stored = client("secretsmanager").get_secret_value(SecretId=local_variables["COMETAPI_KEY_SECRET_NAME"])
    assert stored["SecretString"] == "sk-parity"
    assert set(ProviderSettings.model_fields) >= {name.lower() for name in local_variables}
