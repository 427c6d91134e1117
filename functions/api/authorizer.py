"""The API's Lambda authorizer (TOKEN type, cached by API Gateway): Bearer key -> owner."""

from __future__ import annotations

import re
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic_settings import BaseSettings

from functions.api.keys import ApiKeyStore, bearer_key
from functions.common.container import per_container

logger = Logger(service="videogen-authorizer")


class AuthorizerSettings(BaseSettings):
    api_keys_table_name: str
    usage_plan_key_id: str | None = None
    """Deployed: the API Gateway key of the stack's usage plan, returned for every caller so the plan meters them."""


@per_container
def key_store() -> ApiKeyStore:
    return ApiKeyStore(boto3.resource("dynamodb").Table(AuthorizerSettings().api_keys_table_name))


@per_container
def usage_plan_key() -> str | None:
    """The usage plan key's value (read once per container; API Gateway keeps it, not our configuration)."""
    key_id = AuthorizerSettings().usage_plan_key_id
    if not key_id:
        return None
    return str(boto3.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])


def policy_for(owner: str, method_arn: str, usage_key: str | None = None) -> dict[str, Any]:
    """Allow every route of this API's stage: API Gateway caches the answer per key, not per route."""
    stage_arn = re.sub(r"^(arn:[^:]+:execute-api:[^:]+:[^:]+:[^/]+/[^/]+)/.*$", r"\1/*", method_arn)
    answer: dict[str, Any] = {
        "principalId": owner,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": stage_arn}],
        },
        "context": {"owner": owner},
    }
    if usage_key is not None:
        answer["usageIdentifierKey"] = usage_key  # the usage plan throttles and counts this request
    return answer


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    owner = key_store().owner_of(bearer_key(event.get("authorizationToken")))
    if owner is None:
        raise PermissionError("Unauthorized")  # API Gateway answers 401 (the gateway response shapes the body)
    return policy_for(owner, str(event.get("methodArn", "")), usage_plan_key())
