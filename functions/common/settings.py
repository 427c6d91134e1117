"""Provider configuration. Locally the key comes from COMETAPI_KEY; in Lambda from Secrets Manager, by name."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.common.errors import UnauthorizedError

DEFAULT_COMETAPI_BASE_URL = "https://api.cometapi.com"


class ProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    cometapi_base_url: str = DEFAULT_COMETAPI_BASE_URL
    cometapi_key: SecretStr | None = None
    cometapi_key_secret_name: str | None = None
    """Deployed: the Secrets Manager secret holding the key (the environment never holds the key itself)."""

    def api_key(self) -> SecretStr:
        """The CometAPI key: the environment's if set, else the named secret's (cached by Powertools)."""
        if self.cometapi_key is not None and self.cometapi_key.get_secret_value():
            return self.cometapi_key
        if self.cometapi_key_secret_name:
            from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 - only needed in Lambda

            value = parameters.get_secret(self.cometapi_key_secret_name, max_age=300)
            return SecretStr(str(value).strip())
        raise UnauthorizedError(
            "No CometAPI key is configured: set COMETAPI_KEY (or COMETAPI_KEY_SECRET_NAME to a Secrets Manager "
            "secret that holds it)."
        )


class WorkflowSettings(BaseSettings):
    """What every workflow Lambda needs: where jobs, videos and events live. Names come from the stack."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    jobs_table_name: str
    video_bucket_name: str
    event_bus_name: str
    video_prefix: str = "videos/"
    input_prefix: str = "inputs/"
    max_video_bytes: int = 2 * 1024**3
    videogen_poll_interval_seconds: int | None = Field(default=None, ge=0)
    """Fixes the polling interval for every job (local testing, or a provider that misreports progress)."""
    provider_concurrency: dict[str, int] = {}
    """Caps on in-flight provider tasks per dialect, as JSON: PROVIDER_CONCURRENCY='{"kling": 5}'."""


class ApiSettings(WorkflowSettings):
    """The API Lambda: the workflow's names plus where executions, keys and idempotency records live."""

    state_machine_arn: str
    api_keys_table_name: str
    idempotency_table_name: str
    content_url_ttl_seconds: int = 900
    max_request_bytes: int = 10 * 1024 * 1024
