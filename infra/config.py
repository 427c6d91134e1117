"""The one description of the stack's resources, shared by the CDK stack (infra/) and the local stack (local/).

Plain Python, no CDK import: the local stack reads it without aws-cdk-lib. Names, keys, prefixes, function
settings and the state machine's substitutions live here once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED

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
SECRET_NAME_SUFFIX = "/cometapi-key"  # noqa: S105 - a name, not a secret
"""The CometAPI key's secret is named ``<stack name>/cometapi-key`` (a created one deployed, and the local one)."""
BATCH_STATE_MACHINE_SUFFIX = "-video-batch"
"""The batch state machine is named ``<stack name>-video-batch``: its functions build its ARN from that name."""


def secret_name(stack_name: str) -> str:
    return f"{stack_name}{SECRET_NAME_SUFFIX}"


LOCAL_STACK_NAME = "videogen"
"""What the deployed stack's name is to its names, for the local stack's names that follow a scheme."""
LOCAL_NAMES = {
    "jobs_table": "videogen-jobs",
    "video_bucket": "videogen-videos",
    "event_bus": "videogen-events",
    "state_machine": "videogen-video-generation",
    "secret": secret_name(LOCAL_STACK_NAME),
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


def provider_environment(*, secret_name: str, base_url: str) -> dict[str, str]:
    """Where a deployed function finds CometAPI: the base URL and the *name* of the secret holding the key."""
    return {"COMETAPI_BASE_URL": base_url, "COMETAPI_KEY_SECRET_NAME": secret_name}


def authorizer_environment(*, api_keys_table: str) -> dict[str, str]:
    return {"API_KEYS_TABLE_NAME": api_keys_table}


def deployed_api_environment(*, cors_allow_origins: tuple[str, ...] = (), **names: str) -> dict[str, str]:
    """api_environment() as deployed: Lambda's smaller request limit, and the CORS origins if any were set
    (with Lambda proxy integration, the function's own responses must carry the CORS headers)."""
    environment = {**api_environment(**names), "MAX_REQUEST_BYTES": str(DEPLOYED_MAX_REQUEST_BYTES)}
    if cors_allow_origins:
        environment["CORS_ALLOW_ORIGINS"] = ",".join(cors_allow_origins)
    return environment


# --- deployed stack -----------------------------------------------------------------------------------------

DEFAULT_STACK_NAME = "VideoGenStack"
DEFAULT_COMETAPI_BASE_URL = "https://api.cometapi.com"

LAMBDA_PYTHON_VERSION = "3.13"
LAMBDA_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
"""Wheel platforms for the arm64 Lambda runtime (Amazon Linux 2023, glibc 2.34): newest first."""

API_STAGE = "prod"
API_ROUTES = ("/v1/videos", "/v1/videos/{id}", "/v1/videos/{id}/content")
"""Every method of each route is proxied to the api function (its router answers 404/405 itself)."""
DEPLOYED_MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""The request body limit the deployed api function enforces (MAX_REQUEST_BYTES). Lambda's synchronous payload
is 6 MB and API Gateway passes binary (multipart) bodies base64-encoded, 4/3 larger: 4 MiB is what fits."""
API_BINARY_MEDIA_TYPES = ("multipart/form-data",)
AUTHORIZER_CACHE_SECONDS = 300
"""A TOKEN authorizer on the Authorization header; its answer is cached per token for this long, so its policy
must allow every route of the API (not just the method that was called)."""
AUTHORIZER_TOKEN_PATTERN = r"^[Bb][Ee][Aa][Rr][Ee][Rr] [-0-9A-Za-z._~+/]+=*$"  # noqa: S105 - a pattern
"""RFC 6750's Bearer syntax (scheme in any case, like functions.api.keys.bearer_key): a request whose
Authorization header is anything else is refused by API Gateway without invoking the authorizer."""

POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "videogen",
    "POWERTOOLS_METRICS_NAMESPACE": "videogen",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


# The product metrics (names, units, namespace) are the functions' own: functions.common.metrics.

ALARM_THRESHOLDS = {
    # Errors per function in 5 minutes. Submit and Poll raise retryable provider errors by design (the ASL
    # retries them), so a handful is normal; a sustained rate is not.
    "lambda_errors": 5,
    "lambda_throttles": 1,
    # Any Store error: the provider produced (and billed) a video we may not have kept.
    "store_failures": 1,
    "api_5xx": 5,
}

LAMBDA_ARM_PRICE_PER_GB_SECOND = 0.0000133334
"""List price of arm64 Lambda compute (us-east-1), for the dashboard's cost estimate."""

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def asl_text(path: Path, substitutions: dict[str, str]) -> str:
    """An ASL file, unsubstituted, after checking its ${...} placeholders are exactly ``substitutions``' keys.

    The CDK stack hands this text to Step Functions with its own substitutions; ``load_asl`` fills them here.
    """
    if not path.is_file():
        raise FileNotFoundError(f"The state machine definition is missing: {path}")
    text = path.read_text(encoding="utf-8")
    used = set(PLACEHOLDER.findall(text))
    if used != set(substitutions):
        raise KeyError(f"{path.name} placeholders {sorted(used)} differ from the substitutions {sorted(substitutions)}")
    return text


def load_asl(path: Path, substitutions: dict[str, str], function_arns: dict[str, str]) -> str:
    """An ASL file with every ${...} replaced by the ARN of its function (keyed as in ``substitutions``)."""
    text = asl_text(path, substitutions)
    definition = PLACEHOLDER.sub(lambda m: function_arns[substitutions[m.group(1)]], text)
    json.loads(definition)
    return definition


def load_definition(function_arns: dict[str, str]) -> str:
    """video_generation.asl.json, for the local stack (and the tests that compare it with the CDK's)."""
    return load_asl(ASL_PATH, ASL_SUBSTITUTIONS, function_arns)


# --- S3 inbox and EventBridge-started jobs (functions/intake, statemachine/video_batch.asl.json) ------------

INBOX_PREFIX = "inbox/"
"""Requests dropped here (in the video bucket) start jobs: *.json one, *.jsonl a batch (docs/events-and-inbox.md)."""
BATCH_RESULTS_PREFIX = "batches/"
"""batches/{batch_id}/results.jsonl (and, while the batch runs, its lines index)."""
BATCH_ASL_PATH = ROOT / "statemachine" / "video_batch.asl.json"
BATCH_MAX_CONCURRENCY = 10
"""StartLine steps of one batch running at once (the Map's MaxConcurrencyPath, from BATCH_MAX_CONCURRENCY)."""
REQUESTED_DETAIL_TYPE = "Video Generation Requested"
"""functions.common.events.REQUESTED (tests/workflow/test_intake_contract.py keeps them equal)."""

INTAKE_FUNCTIONS: dict[str, FunctionSpec] = {
    spec.key: spec
    for spec in (
        FunctionSpec(
            "intake", "functions.intake.handler.handler", 512, 60, "Starts jobs from inbox objects and requested events"
        ),
        FunctionSpec(
            "batch-read", "functions.intake.handler.batch_read_handler", 1024, 300, "Reads an inbox batch's lines"
        ),
        FunctionSpec(
            "batch-line", "functions.intake.handler.batch_line_handler", 512, 60, "Starts the job of one batch line"
        ),
        FunctionSpec(
            "batch-seal", "functions.intake.handler.batch_seal_handler", 512, 300, "Seals and completes a batch"
        ),
    )
}
"""In ALL_FUNCTIONS: the deployed stack builds them with the rules and the batch state machine."""

BATCH_ASL_SUBSTITUTIONS: dict[str, str] = {
    "BatchReadFunctionArn": "batch-read",
    "BatchLineFunctionArn": "batch-line",
    "BatchSealFunctionArn": "batch-seal",
}
"""video_batch.asl.json ${placeholder} -> the function (key in INTAKE_FUNCTIONS) whose ARN replaces it."""

INTAKE_LOCAL_NAMES = {
    "batch_state_machine": f"{LOCAL_STACK_NAME}{BATCH_STATE_MACHINE_SUFFIX}",
    "inbox_rule": "videogen-inbox-objects",
    "requested_rule": "videogen-generation-requested",
}
"""The inbox rule goes on the account's *default* bus (where S3 sends its events); the requested-event rule on
the product's bus."""


def inbox_rule_pattern(bucket: str, prefix: str = INBOX_PREFIX) -> dict[str, object]:
    """S3 Object Created events of the inbox (needs EventBridge notifications turned on for the bucket)."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}},
    }


REQUESTED_RULE_PATTERN: dict[str, object] = {"detail-type": [REQUESTED_DETAIL_TYPE]}
"""Any source: the sender chooses it (docs/events-and-inbox.md)."""


def intake_environment(
    *, table: str, bucket: str, bus: str, state_machine_arn: str, batch_state_machine_arn: str
) -> dict[str, str]:
    """The intake and batch functions' environment: the workflow's names plus both state machines."""
    return {
        **workflow_environment(table=table, bucket=bucket, bus=bus),
        "STATE_MACHINE_ARN": state_machine_arn,
        "BATCH_STATE_MACHINE_ARN": batch_state_machine_arn,
        "INBOX_PREFIX": INBOX_PREFIX,
        "BATCH_MAX_CONCURRENCY": str(BATCH_MAX_CONCURRENCY),
    }


def load_batch_definition(function_arns: dict[str, str]) -> str:
    """video_batch.asl.json, for the CDK stack and the local one alike."""
    return load_asl(BATCH_ASL_PATH, BATCH_ASL_SUBSTITUTIONS, function_arns)


# --- webhooks (functions/webhooks: EventBridge rule -> SQS queue -> queue_handler; its DLQ -> dead_letter_handler)

WEBHOOK_FUNCTIONS: dict[str, FunctionSpec] = {
    spec.key: spec
    for spec in (
        FunctionSpec(
            "webhook", "functions.webhooks.handler.queue_handler", 256, 30, "Delivers a terminal event to its webhook"
        ),
        FunctionSpec(
            "webhook-dlq",
            "functions.webhooks.handler.dead_letter_handler",
            256,
            60,
            "Records webhook deliveries whose retries ran out",
        ),
    )
}
WEBHOOK_RULE_PATTERN = {"source": [EVENT_SOURCE], "detail-type": [COMPLETED, FAILED]}
"""Terminal job events, from the product's bus to the webhook queue (deployed and local alike)."""
WEBHOOK_LOCAL_NAMES = {"rule": "videogen-webhooks", "queue": "videogen-webhooks-local"}
WEBHOOK_QUEUE_VISIBILITY_SECONDS = 6 * WEBHOOK_FUNCTIONS["webhook"].timeout_seconds
"""AWS's advice for a Lambda event source: at least six times the function's timeout."""
WEBHOOK_DLQ_VISIBILITY_SECONDS = 6 * WEBHOOK_FUNCTIONS["webhook-dlq"].timeout_seconds
WEBHOOK_QUEUE_RETENTION_DAYS = 4
WEBHOOK_MAX_RECEIVE_COUNT = 50
"""The last safety net: deliver() itself gives an event up after 24 h (about 30 backed-off attempts)."""
WEBHOOK_DLQ_RETENTION_DAYS = 14


def webhook_environment(*, table: str, api_keys_table: str) -> dict[str, str]:
    """functions.webhooks.handler.WebhookSettings: the jobs table and the tenants' secrets (API keys table)."""
    return {"JOBS_TABLE_NAME": table, "API_KEYS_TABLE_NAME": api_keys_table}


REAPER_FUNCTION = FunctionSpec(
    "reaper", "functions.reaper.handler.handler", 256, 60, "Ends a job whose execution ended outside its paths"
)
REAPER_STATUSES = ("TIMED_OUT", "ABORTED", "FAILED")
"""Execution statuses after which a job may have missed Finalize (functions/reaper/logic.py)."""

PROVIDER_CONCURRENCY_FUNCTIONS = ("submit", "poll", "finalize", "api", "intake", "batch-line", "reaper")
"""The functions that take a provider slot (submit) or give one back (poll, and every path that emits a job's
terminal event: finalize, the API's cancel, and the intake's settle_if_ended in intake and batch-line)."""

ALL_FUNCTIONS: dict[str, FunctionSpec] = {
    **WORKFLOW_FUNCTIONS,
    **API_FUNCTIONS,
    **INTAKE_FUNCTIONS,
    **WEBHOOK_FUNCTIONS,
    REAPER_FUNCTION.key: REAPER_FUNCTION,
}
"""Every function the deployed stack builds (its function factory makes one per spec)."""
