"""The stack's options, read from CDK context (``cdk.json`` or ``-c key=value``), validated before any resource.

Every option has a safe default: ``npx cdk deploy`` with no context at all gives the secure, low-cost stack.
Values given with ``-c`` arrive as strings, values in ``cdk.json`` as JSON: both are accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from infra.config import DEFAULT_COMETAPI_BASE_URL, DEFAULT_STACK_NAME, ROOT

# fmt: off
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on
"""The retention periods CloudWatch Logs accepts."""
MIN_INFREQUENT_ACCESS_DAYS = 30
"""S3 refuses a transition to Standard-IA earlier than 30 days after creation."""


class OptionError(ValueError):
    """A context value the stack cannot use; the message names the context key and what it accepts."""


@dataclass(frozen=True)
class StackOptions:
    stack_name: str = DEFAULT_STACK_NAME
    # storage
    bucket_kms: bool = False
    """Encrypt the video bucket with a customer-managed KMS key (rotated yearly) instead of S3-managed keys."""
    versioning: bool = False
    access_logs: bool = False
    """S3 server access logs of the video bucket, into a separate log bucket."""
    video_expiration_days: int | None = None
    video_infrequent_access_days: int | None = None
    input_expiration_days: int | None = None
    input_infrequent_access_days: int | None = None
    retain_data: bool = True
    """Keep the bucket, the tables and the KMS key when the stack is destroyed (your videos are data)."""
    # provider
    comet_api_key_secret_name: str | None = None
    """Import this existing Secrets Manager secret instead of creating one."""
    comet_api_base_url: str = DEFAULT_COMETAPI_BASE_URL
    # api
    cors_allow_origins: tuple[str, ...] = ()
    api_rate_limit: int = 20
    """Requests per second, steady state (stage and usage plan)."""
    api_burst_limit: int = 40
    api_daily_quota: int = 10_000
    """Requests per day allowed by the usage plan."""
    # operations
    log_retention_days: int = 30
    event_archive_days: int = 30
    """How long the event bus archive keeps events for replay (0: forever)."""
    alarm_email: str | None = None
    # providers
    provider_concurrency: tuple[tuple[str, int], ...] = ()
    """Caps on in-flight provider tasks per dialect (context JSON '{"kling": 5}'); none by default."""

    def __post_init__(self) -> None:
        dialects = provider_dialects()
        for dialect, cap in self.provider_concurrency:
            if dialect not in dialects:
                raise OptionError(f"providerConcurrency: unknown dialect {dialect!r}; one of {sorted(dialects)}")
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                raise OptionError(f"providerConcurrency: the cap of {dialect} must be a positive whole number")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise OptionError(f"logRetentionDays must be one of {LOG_RETENTION_DAYS}, not {self.log_retention_days}")
        for prefix in ("video", "input"):
            expire = getattr(self, f"{prefix}_expiration_days")
            cold = getattr(self, f"{prefix}_infrequent_access_days")
            if cold is not None and cold < MIN_INFREQUENT_ACCESS_DAYS:
                raise OptionError(
                    f"{prefix}InfrequentAccessDays must be at least {MIN_INFREQUENT_ACCESS_DAYS} (an S3 rule), "
                    f"not {cold}"
                )
            if expire is not None and expire < 1:
                raise OptionError(f"{prefix}ExpirationDays must be at least 1, not {expire}")
            if expire is not None and cold is not None and expire <= cold:
                raise OptionError(f"{prefix}ExpirationDays ({expire}) must come after {prefix}InfrequentAccessDays")
        if self.event_archive_days < 0:
            raise OptionError(f"eventArchiveDays must be 0 (forever) or more, not {self.event_archive_days}")
        for name in ("api_rate_limit", "api_burst_limit", "api_daily_quota"):
            if getattr(self, name) < 1:
                raise OptionError(f"{context_key(name)} must be at least 1")
        if not self.comet_api_base_url.startswith("https://"):
            raise OptionError(f"cometApiBaseUrl must be an https:// URL, not {self.comet_api_base_url!r}")

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StackOptions:
        """From CDK context: ``get`` is ``app.node.try_get_context``. Absent keys keep their defaults."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = context_key(field.name)
            raw = get(key)
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(key, raw, field.default)
        return cls(**values)

    @property
    def secret_imported(self) -> bool:
        return self.comet_api_key_secret_name is not None

    @property
    def provider_concurrency_json(self) -> str | None:
        """PROVIDER_CONCURRENCY for the functions (functions.common.settings), or None when no cap is set."""
        if not self.provider_concurrency:
            return None
        return json.dumps(dict(sorted(self.provider_concurrency)), separators=(",", ":"))


def provider_dialects() -> set[str]:
    """The dialects functions.providers.catalog knows (imported here only: the options stay light)."""
    from functions.providers.catalog import Dialect  # noqa: PLC0415

    return {dialect.value for dialect in Dialect}


def context_key(field_name: str) -> str:
    """``video_expiration_days`` -> ``videoExpirationDays`` (the context key of an option)."""
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _parse(key: str, raw: Any, default: Any) -> Any:
    if key == "providerConcurrency":
        return _parse_caps(raw)
    if key == "corsAllowOrigins":
        origins = raw if isinstance(raw, list) else [o for o in str(raw).split(",")]
        return tuple(o.strip() for o in origins if o.strip())
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "no"):
            return False
        raise OptionError(f"{key} must be true or false, not {raw!r}")
    if isinstance(default, int) or key.endswith("Days"):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise OptionError(f"{key} must be a whole number, not {raw!r}") from None
    return str(raw)


def _parse_caps(raw: Any) -> tuple[tuple[str, int], ...]:
    """'{"kling": 5}' (from -c) or {"kling": 5} (from cdk.json) -> (("kling", 5),)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise OptionError(
                f"providerConcurrency must be a JSON object such as '{{\"kling\": 5}}', not {raw!r}"
            ) from None
    if not isinstance(raw, dict):
        raise OptionError(f"providerConcurrency must be a JSON object of dialect -> cap, not {raw!r}")
    return tuple(sorted((str(dialect), cap) for dialect, cap in raw.items()))


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of cdk.json: the feature flags ``cdk synth`` applies, for a synth outside the CLI."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    return context
