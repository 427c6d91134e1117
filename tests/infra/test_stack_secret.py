"""Secret: the CometAPI key in Secrets Manager, created with a placeholder or imported; readable by the
functions that call the provider, and by nothing else."""

from __future__ import annotations

import json

from infra.secret import PLACEHOLDER_VALUE
from tests.infra.conftest import Template

PROVIDER_CALLERS = {"submit", "poll", "store", "api"}


def secret_statements(template: Template, key: str) -> list[dict[str, object]]:
    return [s for s in template.function_statements(key) if "secretsmanager:" in json.dumps(s["Action"])]


def test_created_with_a_placeholder_and_instructions(template: Template) -> None:
    _, resource = template.one("AWS::SecretsManager::Secret")
    props = resource["Properties"]
    assert props["Name"] == "VideoGenStack/cometapi-key"
    assert props["SecretString"] == PLACEHOLDER_VALUE
    assert "put-secret-value --secret-id VideoGenStack/cometapi-key" in props["Description"]
    assert template.outputs()["CometApiKeySecretName"]["Value"] == "VideoGenStack/cometapi-key"


def test_only_the_provider_callers_may_read_it_and_only_it(template: Template) -> None:
    secret, _ = template.one("AWS::SecretsManager::Secret")
    for key in ("submit", "poll", "store", "finalize", "api", "authorizer"):
        statements = secret_statements(template, key)
        if key in PROVIDER_CALLERS:
            assert statements == [
                {
                    "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                    "Effect": "Allow",
                    "Resource": {"Ref": secret},
                }
            ], key
        else:
            assert statements == [], key


def test_imported_by_name(full: Template) -> None:
    # Given cometApiKeySecretName / Then no secret is created, and the grant names that secret only
    assert full.of_type("AWS::SecretsManager::Secret") == {}
    [statement] = secret_statements(full, "poll")
    resource = json.dumps(statement["Resource"])
    assert ":secret:shared/cometapi-key-??????" in resource
    assert full.outputs()["CometApiKeySecretName"]["Value"] == "shared/cometapi-key"


def test_the_key_never_reaches_an_environment(template: Template, full: Template) -> None:
    for stack in (template, full):
        for resource in stack.of_type("AWS::Lambda::Function").values():
            variables = resource["Properties"]["Environment"]["Variables"]
            assert "COMETAPI_KEY" not in variables
            assert PLACEHOLDER_VALUE not in json.dumps(variables)
