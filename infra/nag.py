"""cdk-nag: the AwsSolutions checks run at every synth, and each acknowledged finding says why.

cdk-nag 3 is a CDK policy-validation plugin (``Validations.of(app).add_plugins``): an unacknowledged finding
fails the synth. Acknowledgments go through ``Validations.of(construct).acknowledge`` on the narrowest construct
that has the finding, one finding at a time (an IAM5 finding names its action or resource).
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

NAG_PACK = "AwsSolutions"
REPORT = "validation-report.json"


def add_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (``AwsSolutions-S1`` or ``AwsSolutions-IAM5[Resource::...]``) on ``scope``."""
    if len(reason) < 40:
        raise ValueError(f"An acknowledgment of {rule} needs a specific reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_PACK}::{rule}", reason=reason))


def arn_reference(construct: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag writes ``Fn::GetAtt`` of a construct's resource in a finding: ``<LogicalId.Arn>``."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource of its own")
    stack = Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(resource))}.{attribute}>"


def unacknowledged(outdir: str | Path) -> list[str]:
    """Every finding of the synth's validation report, warnings included, as ``rule at construct path`` lines.

    CDK fails the synth on a plugin's errors by itself; its warnings (AwsSolutions-APIG3, say, or a construct's
    own annotation) only end up in the report. The stack's rule is stricter: nothing unacknowledged at all.
    """
    report = Path(outdir) / REPORT
    if not report.exists():
        return []
    findings = []
    for plugin in json.loads(report.read_text(encoding="utf-8")).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                findings.append(
                    f"{violation['ruleName']} ({violation.get('severity', '?')}) at {construct['constructPath']}: "
                    f"{violation.get('description', '')}"
                )
    return findings
