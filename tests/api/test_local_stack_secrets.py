"""The embedded stack's handlers read the CometAPI key from that stack's Secrets Manager, whatever ran before it.

Powertools keeps one Secrets Manager client per process, made with the AWS endpoint of the moment. A client made
before the stack started (by another test, or by an earlier stack in the same process) must not be used.
"""

from __future__ import annotations

import os

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from botocore.config import Config

from functions.common.container import per_container
from functions.common.settings import ProviderSettings
from infra.config import LOCAL_NAMES
from local.stack import local_stack

NOTHING_LISTENS_HERE = "http://127.0.0.1:9"


def test_handlers_read_the_key_from_this_stacks_secrets_manager_even_after_a_stale_client() -> None:
    # Given a process-wide Powertools secrets client made earlier, pointing at an endpoint with nothing behind it
    stale_client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=NOTHING_LISTENS_HERE,
        aws_access_key_id="stale",
        aws_secret_access_key="stale",
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=stale_client)
    try:
        # When a local stack starts and a handler asks for the CometAPI key
        with local_stack() as stack:
            key_seen_by_handlers = ProviderSettings().api_key().get_secret_value()
            stored = stack.client("secretsmanager").get_secret_value(SecretId=LOCAL_NAMES["secret"])["SecretString"]

            # Then it is the key this stack stored
            assert key_seen_by_handlers == stored

        # And no client bound to the stopped stack's endpoint is left behind for the next one
        assert "secrets" not in DEFAULT_PROVIDERS
    finally:
        DEFAULT_PROVIDERS.pop("secrets", None)


def test_every_per_container_object_made_before_a_stack_is_made_again_inside_it() -> None:
    # Given a container-lifetime factory whose object was made before the stack (bound to another endpoint)
    made: list[str | None] = []

    @per_container
    def client_endpoint() -> str | None:
        made.append(os.environ.get("AWS_ENDPOINT_URL"))
        return made[-1]

    client_endpoint()

    # When a local stack starts, Then the handlers get one made for this stack's endpoint
    with local_stack() as stack:
        assert client_endpoint() == stack.endpoint_url
    assert len(made) == 2
