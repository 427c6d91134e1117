"""The API's Lambda authorizer (TOKEN type, cached by API Gateway): Bearer key -> owner."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic_settings import BaseSettings

from functions.api.keys import ApiKeyStore, bearer_key

logger = Logger(service="videogen-authorizer")


class AuthorizerSettings(BaseSettings):
    api_keys_table_name: str


@cache
def key_store() -> ApiKeyStore:
    return ApiKeyStore(boto3.resource("dynamodb").Table(AuthorizerSettings().api_keys_table_name))


def policy_for(owner: str, method_arn: str) -> dict[str, Any]:
    """Allow every route of this API's stage: API Gateway caches the answer per key, not per route."""
    stage_arn = re.sub(r"^(arn:[^:]+:execute-api:[^:]+:[^:]+:[^/]+/[^/]+)/.*$", r"\1/*", method_arn)
    return {
        "principalId": owner,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": stage_arn}],
        },
        "context": {"owner": owner},
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    owner = key_store().owner_of(bearer_key(event.get("authorizationToken")))
    if owner is None:
        raise PermissionError("Unauthorized")  # API Gateway answers 401 (the gateway response shapes the body)
    return policy_for(owner, str(event.get("methodArn", "")))
