"""The local stack and the CDK stack describe the same product: same tables (keys, indexes), the same state
machine definition, and every function's environment names what its settings read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.config import ASL_PATH, ASL_SUBSTITUTIONS, WORKFLOW_FUNCTIONS, workflow_environment
from local.resources import REGION, LocalResources, provision
from tests.infra.conftest import Template


@pytest.fixture(scope="module")
def local() -> Iterator[LocalResources]:
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION})
    try:
        with mock_aws():
            yield provision()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def local_table(name: str) -> dict[str, Any]:
    table: Any = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=name)["Table"]
    return dict(table)


def shape(table: dict[str, Any]) -> dict[str, Any]:
    """What must match between the two stacks: keys, attribute types, index keys and projections."""
    return {
        "keys": table["KeySchema"],
        "types": sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]),
        "indexes": sorted(
            (i["IndexName"], json.dumps(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in table.get("GlobalSecondaryIndexes", [])
        ),
    }


@pytest.mark.parametrize(
    ("local_name", "construct"),
    [("table", "Jobs"), ("api_keys_table", "ApiKeys"), ("idempotency_table", "Idempotency")],
)
def test_tables_have_the_same_keys_and_indexes(
    local: LocalResources, template: Template, local_name: str, construct: str
) -> None:
    # Given the same table in each stack / Then keys, attribute types and indexes are identical
    deployed = template.props(template.by_path(f"/Storage/{construct}/Resource"))
    assert shape(local_table(getattr(local, local_name))) == shape(deployed)


def test_both_run_the_same_state_machine_definition(local: LocalResources, template: Template) -> None:
    # Given the local definition, with its function ARNs put back as the file's placeholders
    sfn = boto3.client("stepfunctions", region_name=REGION)
    local_definition = sfn.describe_state_machine(stateMachineArn=local.state_machine_arn)["definition"]
    for placeholder, key in ASL_SUBSTITUTIONS.items():
        arn = f"arn:aws:lambda:{REGION}:123456789012:function:{WORKFLOW_FUNCTIONS[key].local_name}"
        local_definition = local_definition.replace(arn, "${" + placeholder + "}")
    asl = ASL_PATH.read_text(encoding="utf-8")
    # Then the local stack runs the ASL file itself, and the deployed stack has the same file inline
    assert json.loads(local_definition) == json.loads(asl)
    deployed = [
        r["Properties"]["DefinitionString"] for r in template.of_type("AWS::StepFunctions::StateMachine").values()
    ]
    assert asl in deployed


@pytest.mark.parametrize("key", sorted(WORKFLOW_FUNCTIONS))
def test_deployed_functions_get_every_variable_the_local_stack_sets(
    local: LocalResources, template: Template, key: str
) -> None:
    # Given the workflow functions' variables (infra.config), which the local stack sets
    names = set(workflow_environment(table=local.table, bucket=local.bucket, bus=local.bus))
    assert names <= set(local.environment())
    # Then the deployed function of the same key gets the same variables (values are the stack's names)
    _, props = template.function(key)
    deployed = set(props["Environment"]["Variables"])
    assert names <= deployed, names - deployed
