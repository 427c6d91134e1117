"""Per-dialect caps on in-flight provider tasks (a CometAPI account has a concurrency limit: Kling answers
1303 when it is over it). A job above the cap waits, queued, instead of failing.

The slots of a dialect are one item in the jobs table (key ``~slots:<dialect>``, never a job id: job ids
match ``[A-Za-z0-9_-]``) holding the set of job ids in flight. Taking and giving back a slot are single
conditional writes, and both are idempotent, so retried steps cannot leak or double-count a slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

SLOTS_KEY_PREFIX = "~slots:"


class ProviderSlots:
    def __init__(self, table: Table, caps: Mapping[str, int]):
        self.table = table
        self.caps = dict(caps)

    def acquire(self, dialect: str, job_id: str) -> bool:
        """Take a slot for ``job_id`` (or find it already held). False when the dialect is at its cap."""
        cap = self.caps.get(dialect)
        if cap is None:
            return True
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.table.update_item(
                Key={"job_id": SLOTS_KEY_PREFIX + dialect},
                UpdateExpression="ADD slots :job",
                ConditionExpression="attribute_not_exists(slots) OR size(slots) < :cap OR contains(slots, :id)",
                ExpressionAttributeValues={":job": {job_id}, ":cap": cap, ":id": job_id},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, dialect: str, job_id: str) -> None:
        if dialect not in self.caps:
            return
        self.table.update_item(
            Key={"job_id": SLOTS_KEY_PREFIX + dialect},
            UpdateExpression="DELETE slots :job",
            ExpressionAttributeValues={":job": {job_id}},
        )

    def in_flight(self, dialect: str) -> set[str]:
        item = self.table.get_item(Key={"job_id": SLOTS_KEY_PREFIX + dialect}, ConsistentRead=True).get("Item")
        slots = item.get("slots") if item else None
        return {str(job) for job in slots} if isinstance(slots, set) else set()
