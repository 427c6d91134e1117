"""API keys: random, shown once, stored only as a SHA-256 hash, each with its owner (tenant)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr
from pydantic import BaseModel

from functions.common.jobs import from_dynamo, to_dynamo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

KEY_PREFIX = "vg_"


class ApiKeyRecord(BaseModel):
    key_hash: str
    key_id: str
    """A short, non-secret handle for listing and revoking (the first 12 hex digits of the hash)."""
    owner: str
    name: str = ""
    created_at: float
    revoked_at: float | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class ApiKeyStore:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time):
        self.table = table
        self.clock = clock

    def create(self, owner: str, name: str = "", key: str | None = None) -> tuple[str, ApiKeyRecord]:
        """A new key for ``owner``. The key itself is returned once and never stored."""
        key = key or KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(key)
        record = ApiKeyRecord(key_hash=digest, key_id=digest[:12], owner=owner, name=name, created_at=self.clock())
        self.table.put_item(Item=to_dynamo(record.model_dump(exclude_none=True)))
        return key, record

    def owner_of(self, key: str | None) -> str | None:
        """The owner of a valid, unrevoked key; None for anything else."""
        if not key:
            return None
        item = self.table.get_item(Key={"key_hash": hash_key(key)}).get("Item")
        if not item:
            return None
        record = ApiKeyRecord.model_validate(from_dynamo(item))
        return None if record.revoked_at is not None else record.owner

    def list(self) -> list[ApiKeyRecord]:
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {}
        while True:
            page = self.table.scan(FilterExpression=Attr("key_id").exists(), **scan)  # not tenant# items
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((ApiKeyRecord.model_validate(from_dynamo(i)) for i in items), key=lambda r: r.created_at)

    def revoke(self, key_id: str) -> bool:
        for record in self.list():
            if record.key_id == key_id and record.revoked_at is None:
                self.table.update_item(
                    Key={"key_hash": record.key_hash},
                    UpdateExpression="SET revoked_at = :now",
                    ExpressionAttributeValues={":now": to_dynamo(self.clock())},
                )
                return True
        return False
