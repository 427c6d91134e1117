"""Per-tenant webhook signing secrets, kept in the API keys table beside the tenant's keys.

One secret per owner (tenant), in the Standard Webhooks form ``whsec_`` + base64 of 32 random bytes, created on
first use. The item's key is ``tenant#{owner}`` in the table's partition key (``key_hash``): an API key's hash is
64 hex digits, so the two can never collide, and the authorizer (which looks keys up by hash) never finds it.

The secret is the tenant's to verify our signatures with; it is never logged. docs/webhooks.md says how an
operator reads it.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from functions.common.jobs import to_dynamo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
TENANT_KEY_PREFIX = "tenant#"
KEY_ATTRIBUTE = "key_hash"
"""The API keys table's partition key (ApiKeyStore's, and API_KEYS_TABLE_KEY in infra.config)."""
SECRET_ATTRIBUTE = "webhook_secret"  # noqa: S105 - an attribute name


def tenant_key(owner: str) -> dict[str, str]:
    """The item key of ``owner``'s tenant item in the API keys table."""
    return {KEY_ATTRIBUTE: f"{TENANT_KEY_PREFIX}{owner}"}


def new_secret(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(random_bytes(SECRET_BYTES)).decode("ascii")


class WebhookSecretStore:
    def __init__(
        self,
        table: Table,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ):
        self.table = table
        self.clock = clock
        self.random_bytes = random_bytes

    def get(self, owner: str) -> str | None:
        """``owner``'s secret, or None if none was created yet."""
        item = self.table.get_item(
            Key=tenant_key(owner), ConsistentRead=True, ProjectionExpression=SECRET_ATTRIBUTE
        ).get("Item")
        value = (item or {}).get(SECRET_ATTRIBUTE)
        return str(value) if value else None

    def get_or_create(self, owner: str) -> str:
        """``owner``'s secret, created on first use. Two first uses at once agree on one secret (if_not_exists)."""
        existing = self.get(owner)
        if existing is not None:
            return existing
        answer = self.table.update_item(
            Key=tenant_key(owner),
            UpdateExpression="SET #secret = if_not_exists(#secret, :secret), "
            "#created = if_not_exists(#created, :now), #tenant = :tenant",
            ExpressionAttributeNames={
                "#secret": SECRET_ATTRIBUTE,
                "#created": "webhook_secret_created_at",
                "#tenant": "tenant",
            },
            ExpressionAttributeValues={
                ":secret": new_secret(self.random_bytes),
                ":now": to_dynamo(self.clock()),
                ":tenant": owner,
            },
            ReturnValues="ALL_NEW",
        )
        return str(answer["Attributes"][SECRET_ATTRIBUTE])
