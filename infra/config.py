"""The one description of the stack's resources, shared by the CDK stack (infra/) and the local stack (local/).

Plain Python, no CDK import: the local stack reads it without aws-cdk-lib. Names, keys, prefixes, function
settings and the state machine's substitutions live here once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = ROOT / "statemachine" / "video_generation.asl.json"


@dataclass(frozen=True)
class FunctionSpec:
    key: str
    handler: str
    memory_mb: int
    timeout_seconds: int
    description: str

    @property
    def local_name(self) -> str:
        return f"videogen-{self.key}"


WORKFLOW_FUNCTIONS: dict[str, FunctionSpec] = {
    spec.key: spec
    for spec in (
        FunctionSpec("submit", "functions.submit.handler.handler", 512, 120, "Creates the provider task, exactly once"),
        FunctionSpec("poll", "functions.poll.handler.handler", 256, 60, "Polls the provider task, picks the next wait"),
        FunctionSpec("store", "functions.store.handler.handler", 1024, 900, "Streams the video into S3, verified"),
        FunctionSpec("finalize", "functions.finalize.handler.handler", 256, 60, "Terminal record + exactly one event"),
    )
}

ASL_SUBSTITUTIONS: dict[str, str] = {
    "SubmitFunctionArn": "submit",
    "PollFunctionArn": "poll",
    "StoreFunctionArn": "store",
    "FinalizeFunctionArn": "finalize",
}
"""ASL ${placeholder} -> the function (key in WORKFLOW_FUNCTIONS) whose ARN replaces it."""


@dataclass(frozen=True)
class JobsTableSpec:
    partition_key: str = "job_id"
    owner_index: str = "by_owner"
    owner_key: str = "owner"
    owner_sort_key: str = "created_at"
    ttl_attribute: str = "expires_at"


JOBS_TABLE = JobsTableSpec()
VIDEO_PREFIX = "videos/"
INPUT_PREFIX = "inputs/"
LOCAL_NAMES = {
    "jobs_table": "videogen-jobs",
    "video_bucket": "videogen-videos",
    "event_bus": "videogen-events",
    "state_machine": "videogen-video-generation",
    "secret": "videogen/cometapi-key",
    "api_keys_table": "videogen-api-keys",
    "idempotency_table": "videogen-idempotency",
}

API_FUNCTIONS: dict[str, FunctionSpec] = {
    spec.key: spec
    for spec in (
        FunctionSpec("api", "functions.api.handler.handler", 512, 29, "The OpenAI-compatible /v1/videos API"),
        FunctionSpec("authorizer", "functions.api.authorizer.handler", 256, 10, "Checks API keys (Bearer)"),
    )
}
API_KEYS_TABLE_KEY = "key_hash"
IDEMPOTENCY_TABLE_KEY = "id"
"""Powertools idempotency's default key attribute; its TTL attribute is "expiration"."""
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
MAX_REQUEST_BYTES = 10 * 1024 * 1024


def workflow_environment(*, table: str, bucket: str, bus: str) -> dict[str, str]:
    """The environment every workflow function gets (names only: the key stays in Secrets Manager)."""
    return {
        "JOBS_TABLE_NAME": table,
        "VIDEO_BUCKET_NAME": bucket,
        "EVENT_BUS_NAME": bus,
        "VIDEO_PREFIX": VIDEO_PREFIX,
        "INPUT_PREFIX": INPUT_PREFIX,
    }


def api_environment(
    *, table: str, bucket: str, bus: str, state_machine_arn: str, api_keys_table: str, idempotency_table: str
) -> dict[str, str]:
    """The API function's environment: the workflow's names plus executions, keys and idempotency."""
    return {
        **workflow_environment(table=table, bucket=bucket, bus=bus),
        "STATE_MACHINE_ARN": state_machine_arn,
        "API_KEYS_TABLE_NAME": api_keys_table,
        "IDEMPOTENCY_TABLE_NAME": idempotency_table,
        "MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
    }


PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def load_definition(function_arns: dict[str, str]) -> str:
    """The ASL with every ${...} replaced by the ARN of its function; fails loudly on anything left over."""
    text = ASL_PATH.read_text(encoding="utf-8")
    names = set(PLACEHOLDER.findall(text))
    unknown = names - set(ASL_SUBSTITUTIONS)
    if unknown:
        raise KeyError(f"{ASL_PATH.name} uses placeholders with no substitution: {sorted(unknown)}")
    definition = PLACEHOLDER.sub(lambda m: function_arns[ASL_SUBSTITUTIONS[m.group(1)]], text)
    json.loads(definition)
    return definition
