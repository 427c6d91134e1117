"""The deployed API's Lambda authorizer in-process: API Gateway's TOKEN event in, a policy (or "Unauthorized") out,
the keys in moto's DynamoDB table as `videogen keys` and the key store leave them.

API Gateway caches the authorizer's answer per key (300 s) and applies the cached policy to every route the key
then calls: a policy naming only the first route would 403 the next one. A raised "Unauthorized" (that exact
message) is what API Gateway turns into a 401.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.api import authorizer
from functions.api.keys import ApiKeyStore
from functions.common.container import forget_container_state
from infra.config import LOCAL_NAMES, authorizer_environment
from local.lambdas import LocalLambdaContext
from local.resources import create_tables
from tests.fixtures.aws import use_fake_aws

REGION = "eu-west-1"
OWNER = "tenant-a"
STAGE_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"
"""The API and stage the authorizer guards; a method ARN is this plus /METHOD/path."""


def method_arn(method: str, path: str, stage_arn: str = STAGE_ARN) -> str:
    return f"{stage_arn}/{method}/{path.lstrip('/')}"


def token_event(authorization: str | None, arn: str) -> dict[str, Any]:
    """What API Gateway sends a TOKEN authorizer whose identity source is the Authorization header."""
    event: dict[str, Any] = {"type": "TOKEN", "methodArn": arn}
    if authorization is not None:
        event["authorizationToken"] = authorization
    return event


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    context: Any = LocalLambdaContext(function_name="videogen-authorizer")
    return authorizer.handler(event, context)


def allows(policy: dict[str, Any], arn: str) -> bool:
    """Whether an Allow statement of the policy covers ``arn`` (IAM's * and ? wildcards)."""
    return any(
        statement["Effect"] == "Allow"
        and statement["Action"] == "execute-api:Invoke"
        and fnmatch.fnmatchcase(arn, statement["Resource"])
        for statement in policy["policyDocument"]["Statement"]
    )


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiKeyStore]:
    """Given the API keys table (moto), the authorizer's environment as the stack sets it, and its store."""
    use_fake_aws(monkeypatch, REGION)
    for name, value in authorizer_environment(api_keys_table=LOCAL_NAMES["api_keys_table"]).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("USAGE_PLAN_KEY_ID", raising=False)
    forget_container_state()  # the handler keeps its store for the process, as a warm Lambda does
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        create_tables(dynamodb.meta.client)
        yield ApiKeyStore(dynamodb.Table(LOCAL_NAMES["api_keys_table"]))
    forget_container_state()


def test_a_valid_key_is_allowed_on_every_route_of_the_stage_with_its_owner(keys: ApiKeyStore) -> None:
    # Given a key of OWNER
    key, _ = keys.create(OWNER, "ci")

    # When it calls POST /v1/videos
    policy = authorize(token_event(f"Bearer {key}", method_arn("POST", "/v1/videos")))

    # Then the answer names the owner (principal and context, which the api Lambda reads)
    assert policy["principalId"] == OWNER
    assert policy["context"] == {"owner": OWNER}
    # And allows the whole stage, so the cached answer also lets the key reach the other routes
    assert [statement["Resource"] for statement in policy["policyDocument"]["Statement"]] == [f"{STAGE_ARN}/*"]
    for method, path in (("POST", "/v1/videos"), ("GET", "/v1/videos/video_1/content"), ("DELETE", "/v1/videos/x")):
        assert allows(policy, method_arn(method, path)), (method, path)
    # But not another stage or another API
    assert not allows(policy, method_arn("GET", "/v1/videos", stage_arn=STAGE_ARN.replace("/prod", "/dev")))
    assert not allows(policy, method_arn("GET", "/v1/videos", stage_arn=STAGE_ARN.replace("a1b2c3d4e5", "zzzzzzzzzz")))


def test_the_scheme_is_case_insensitive_as_in_http(keys: ApiKeyStore) -> None:
    # Given a key
    key, _ = keys.create(OWNER)

    # When it comes as "bearer <key>"
    policy = authorize(token_event(f"bearer {key}", method_arn("GET", "/v1/videos")))

    # Then it is the same owner
    assert policy["principalId"] == OWNER


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer vg_not-a-key-anyone-was-given", id="unknown-key"),
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty"),
        pytest.param("Bearer ", id="bearer-without-key"),
        pytest.param("Basic dXNlcjpwYXNz", id="another-scheme"),
    ],
)
def test_an_unknown_or_missing_key_is_unauthorized(keys: ApiKeyStore, authorization: str | None) -> None:
    # Given a table with a valid key, which the request does not carry
    keys.create(OWNER)

    # When / Then: "Unauthorized", exactly the message API Gateway turns into a 401
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(token_event(authorization, method_arn("GET", "/v1/videos")))


def test_a_revoked_key_is_unauthorized(keys: ApiKeyStore) -> None:
    # Given a key that worked, then was revoked (as `videogen keys revoke` does)
    key, record = keys.create(OWNER)
    event = token_event(f"Bearer {key}", method_arn("GET", "/v1/videos"))
    assert authorize(event)["principalId"] == OWNER
    assert keys.revoke(record.key_id)

    # When / Then
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(event)


def test_every_caller_is_metered_against_the_usage_plan_key(keys: ApiKeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the stack's usage plan key, which the deployed authorizer is told about by its id
    plan_key = boto3.client("apigateway", region_name=REGION).create_api_key(name="usage", enabled=True)
    monkeypatch.setenv("USAGE_PLAN_KEY_ID", plan_key["id"])
    key, _ = keys.create(OWNER)

    # When a caller's Bearer key is authorized
    policy = authorize(token_event(f"Bearer {key}", method_arn("GET", "/v1/videos")))

    # Then API Gateway is told to count the request against the plan's key (never the caller's own key)
    assert policy["usageIdentifierKey"] == plan_key["value"]
    assert policy["usageIdentifierKey"] != key


def test_without_a_usage_plan_key_no_usage_key_is_returned(keys: ApiKeyStore) -> None:
    # Given no USAGE_PLAN_KEY_ID (a stack built before the usage plan had a key), When a caller is authorized
    key, _ = keys.create(OWNER)
    policy = authorize(token_event(f"Bearer {key}", method_arn("GET", "/v1/videos")))
    # Then the answer carries no usage key, and API Gateway would meter nothing (as before)
    assert "usageIdentifierKey" not in policy
