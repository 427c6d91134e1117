"""The deployed authorizer hands API Gateway the usage plan's key, so the plan meters every caller."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions.api import authorizer
from functions.api.keys import ApiKeyStore
from infra.config import API_KEYS_TABLE_KEY
from local.lambdas import LocalLambdaContext

CONTEXT = LocalLambdaContext(function_name="videogen-authorizer")
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/v1/videos"


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A keys table with one caller's key, and the stack's usage plan key: (caller's bearer key, plan key value)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(
            TableName="keys",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": API_KEYS_TABLE_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": API_KEYS_TABLE_KEY, "KeyType": "HASH"}],
        )
        bearer, _ = ApiKeyStore(table).create("tenant-a")
        plan_key = boto3.client("apigateway").create_api_key(name="usage", enabled=True)
        monkeypatch.setenv("API_KEYS_TABLE_NAME", "keys")
        monkeypatch.setenv("USAGE_PLAN_KEY_ID", plan_key["id"])
        for cached in (authorizer.key_store, authorizer.usage_plan_key):
            cached.cache_clear()
        yield bearer, plan_key["value"]
        for cached in (authorizer.key_store, authorizer.usage_plan_key):
            cached.cache_clear()


def test_a_valid_key_is_allowed_and_metered_against_the_usage_plan_key(deployed: tuple[str, str]) -> None:
    bearer, plan_key_value = deployed
    # When API Gateway asks about a caller's Bearer key
    answer = authorizer.handler(
        {"type": "TOKEN", "authorizationToken": f"Bearer {bearer}", "methodArn": METHOD_ARN},
        CONTEXT,  # type: ignore[arg-type]
    )
    # Then the caller is allowed as its owner, and the request counts against the usage plan's key
    assert answer["context"] == {"owner": "tenant-a"}
    assert answer["usageIdentifierKey"] == plan_key_value
    assert answer["usageIdentifierKey"] != bearer


def test_without_a_usage_plan_key_configured_no_key_is_returned(
    deployed: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bearer, _ = deployed
    monkeypatch.delenv("USAGE_PLAN_KEY_ID")
    authorizer.usage_plan_key.cache_clear()
    answer = authorizer.handler(
        {"type": "TOKEN", "authorizationToken": f"Bearer {bearer}", "methodArn": METHOD_ARN},
        CONTEXT,  # type: ignore[arg-type]
    )
    assert "usageIdentifierKey" not in answer
