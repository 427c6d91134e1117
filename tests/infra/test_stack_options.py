"""The stack's options from CDK context: defaults, values from -c (strings) and cdk.json (JSON), and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import DEFAULT_STACK_NAME
from infra.options import OptionError, StackOptions, context_key
from tests.infra.conftest import Template


def options(**context: Any) -> StackOptions:
    return StackOptions.from_context(context.get)


def test_no_context_gives_the_defaults() -> None:
    assert options() == StackOptions()
    assert StackOptions().stack_name == DEFAULT_STACK_NAME


def test_values_from_the_command_line_are_parsed() -> None:
    # Given -c values, which arrive as strings
    parsed = options(
        stackName="Videos",
        bucketKms="true",
        versioning="false",
        videoExpirationDays="400",
        videoInfrequentAccessDays="60",
        corsAllowOrigins="https://a.example.com, https://b.example.com",
        apiRateLimit="7",
        cometApiKeySecretName="team/cometapi",
    )
    assert parsed.stack_name == "Videos"
    assert parsed.bucket_kms is True
    assert parsed.versioning is False
    assert (parsed.video_expiration_days, parsed.video_infrequent_access_days) == (400, 60)
    assert parsed.cors_allow_origins == ("https://a.example.com", "https://b.example.com")
    assert parsed.api_rate_limit == 7
    assert parsed.secret_imported


def test_values_from_cdk_json_are_accepted() -> None:
    parsed = options(accessLogs=True, corsAllowOrigins=["https://a.example.com"], logRetentionDays=90)
    assert parsed.access_logs is True
    assert parsed.cors_allow_origins == ("https://a.example.com",)
    assert parsed.log_retention_days == 90


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"logRetentionDays": "31"}, "logRetentionDays"),
        ({"videoInfrequentAccessDays": "10"}, "at least 30"),
        ({"inputExpirationDays": "30", "inputInfrequentAccessDays": "30"}, "must come after"),
        ({"bucketKms": "maybe"}, "true or false"),
        ({"apiDailyQuota": "lots"}, "whole number"),
        ({"cometApiBaseUrl": "http://api.example.com"}, "https://"),
    ],
)
def test_unusable_values_are_refused_with_the_key_named(context: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        options(**context)


def test_context_keys_are_camel_case() -> None:
    assert context_key("video_infrequent_access_days") == "videoInfrequentAccessDays"
    assert context_key("stack_name") == "stackName"


def test_stack_is_named_by_context_default(template: Template) -> None:
    # build() names the stack from context; with none, VideoGenStack (the template fixture is that stack)
    assert "VideoGenStack/cometapi-key" in str(template.outputs()["CometApiKeySecretName"])


def test_outputs(template: Template) -> None:
    assert {
        "ApiUrl",
        "VideoBucketName",
        "EventBusName",
        "StateMachineArn",
        "CometApiKeySecretName",
        "JobsTableName",
    } <= set(template.outputs())
