"""Secure by default: least-privilege IAM, cdk-nag clean with a reason for each acknowledgment, cfn-lint clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import ROOT
from infra.nag import add_checks, unacknowledged
from tests.infra.conftest import FULL_STACK_NAME, Synth, Template

ACTIONS_ON_ANY_RESOURCE = {
    # X-Ray takes no resource-level permissions
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions' log delivery to CloudWatch Logs (vended logs) takes none either
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def allow_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    statements = []
    for name, policy in template.of_type("AWS::IAM::Policy").items():
        statements += [(name, s) for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    for name, role in template.of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            statements += [(name, s) for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stack", ["template", "full"])
def test_no_wildcard_action_anywhere_and_only_resourceless_actions_on_star(
    stack: str, request: pytest.FixtureRequest
) -> None:
    template: Template = request.getfixturevalue(stack)
    for policy, statement in allow_statements(template):
        actions = as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], (policy, actions)
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= ACTIONS_ON_ANY_RESOURCE, (policy, actions)


def test_only_the_api_gateway_logging_role_has_a_managed_policy(template: Template) -> None:
    managed = {
        name: role["Properties"]["ManagedPolicyArns"]
        for name, role in template.of_type("AWS::IAM::Role").items()
        if "ManagedPolicyArns" in role["Properties"]
    }
    [(name, [arn])] = managed.items()
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(arn)
    assert name == template.by_path("/Api/RestApi/CloudWatchRole/Resource")


def test_each_function_has_its_own_role(template: Template) -> None:
    roles = [
        props["Role"]["Fn::GetAtt"][0]
        for props in (r["Properties"] for r in template.of_type("AWS::Lambda::Function").values())
    ]
    assert len(set(roles)) == len(roles)


def test_kms_is_granted_per_action_when_the_bucket_uses_a_key(full: Template) -> None:
    kms = {
        key: sorted(a for s in full.function_statements(key) for a in as_list(s["Action"]) if a.startswith("kms:"))
        for key in ("submit", "poll", "store", "finalize", "api", "authorizer")
    }
    assert kms == {
        "submit": ["kms:Decrypt"],
        "poll": [],
        "store": ["kms:Decrypt", "kms:GenerateDataKey"],
        "finalize": ["kms:GenerateDataKey"],  # a batch's results.jsonl, when its last job ends
        "api": ["kms:Decrypt", "kms:GenerateDataKey"],
        "authorizer": [],
    }


def test_cdk_nag_finds_nothing_unacknowledged(synth: Synth) -> None:
    # Given both stacks synthesised with the AwsSolutions checks / Then the report holds no finding at all
    assert synth.findings == []


def test_every_acknowledgment_has_a_specific_reason(synth: Synth) -> None:
    assert synth.acknowledgments
    for path, rule, reason in synth.acknowledgments:
        assert rule.startswith("AwsSolutions::AwsSolutions-"), (path, rule)
        assert len(reason) >= 40, (path, rule, reason)
        assert reason.endswith("."), (path, rule, reason)
    # the same reason text is never pasted onto different rules
    reasons: dict[str, set[str]] = {}
    for _, rule, reason in synth.acknowledgments:
        reasons.setdefault(reason, set()).add(rule.split("[")[0])
    assert all(len(rules) == 1 for rules in reasons.values()), reasons


def test_a_warning_left_in_the_report_fails_too(tmp_path: Path) -> None:
    # Given a report with only a warning (CDK itself would let the synth pass) / Then app.py counts it
    report = {
        "pluginReports": [
            {
                "pluginName": "AwsSolutions",
                "violations": [
                    {
                        "ruleName": "AwsSolutions-APIG3",
                        "severity": "warning",
                        "description": "no WAF",
                        "violatingConstructs": [{"constructPath": "VideoGenStack/Api"}],
                    }
                ],
            }
        ]
    }
    (tmp_path / "validation-report.json").write_text(json.dumps(report))
    assert unacknowledged(tmp_path) == ["AwsSolutions-APIG3 (warning) at VideoGenStack/Api: no WAF"]
    assert unacknowledged(tmp_path / "absent") == []


def test_cdk_nag_fails_the_synth_on_an_insecure_resource(tmp_path: Path) -> None:
    # Given the app's checks and a bucket that allows plain HTTP / When synthesised / Then the synth fails
    from aws_cdk import App, Stack
    from aws_cdk import aws_s3 as s3

    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Insecure"), "Bucket")
    add_checks(app)
    with pytest.raises(RuntimeError, match="AwsSolutions-S10"):
        app.synth()


def test_cfn_lint_finds_nothing(synth: Synth) -> None:
    # Given both templates / When cfn-lint checks them with the repository's settings (.cfnlintrc.yaml)
    templates = [str(synth.outdir / f"{stack}.template.json") for stack in ("VideoGenStack", FULL_STACK_NAME)]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "us-east-1", "--", *templates],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    # Then it has nothing to say: no error, no warning
    assert result.returncode == 0, result.stdout + result.stderr
