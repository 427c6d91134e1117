"""One synth per test session (per xdist worker), shared by every stack test.

The app holds two stacks: the default one, built by ``infra.stack.build`` from cdk.json's context exactly as
``cdk synth`` builds it, and one with every option switched on (KMS, versioning, access logs, lifecycle, an
imported secret, CORS, alarm e-mail). cdk-nag runs over both. No AWS call is made; the Lambda asset's
dependencies come from PyPI once, then from build/lambda-deps/.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Validations

from infra.config import DEFAULT_STACK_NAME
from infra.nag import unacknowledged
from infra.options import StackOptions, cdk_json_context
from infra.stack import VideoGenStack, build

FULL_STACK_NAME = "VideoGenStackAllOptions"
FULL_OPTIONS = StackOptions(
    stack_name=FULL_STACK_NAME,
    bucket_kms=True,
    versioning=True,
    access_logs=True,
    video_expiration_days=365,
    video_infrequent_access_days=30,
    input_expiration_days=7,
    retain_data=False,
    comet_api_key_secret_name="shared/cometapi-key",
    comet_api_base_url="https://cometapi.example.com",
    cors_allow_origins=("https://app.example.com",),
    api_rate_limit=5,
    api_burst_limit=10,
    api_daily_quota=500,
    log_retention_days=90,
    event_archive_days=0,
    alarm_email="ops@example.com",
)


@dataclass
class Template:
    """A synthesised template, with the look-ups the tests share."""

    body: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.body["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def props(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return properties

    def by_path(self, path_suffix: str) -> str:
        """The logical id of the resource whose construct path ends with ``path_suffix``."""
        found = [
            name
            for name, r in self.resources.items()
            if r.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix)
        ]
        assert len(found) == 1, f"{path_suffix}: {found}"
        return found[0]

    def function(self, key: str) -> tuple[str, dict[str, Any]]:
        name = self.by_path(f"/Functions/{key.capitalize()}/Function/Resource")
        return name, self.props(name)

    def policy_statements(self, role_logical_id: str) -> list[dict[str, Any]]:
        """Every statement of the IAM policies attached to a role."""
        statements = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
                statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return statements

    def function_statements(self, key: str) -> list[dict[str, Any]]:
        _, props = self.function(key)
        return self.policy_statements(props["Role"]["Fn::GetAtt"][0])

    def outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = self.body.get("Outputs", {})
        return outputs


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, Template]
    findings: list[str]
    acknowledgments: list[tuple[str, str, str]] = field(default_factory=list)
    """(construct path, rule id, reason) of every acknowledgment in the app."""


def synthesize(outdir: Path) -> dict[str, Any]:
    """Both stacks into ``outdir``; what the tests need beyond the files (findings, acknowledgments) returned."""
    # As `cdk synth` runs it: cdk.json's feature flags, and construct paths in the template's metadata.
    app = App(outdir=str(outdir), context={**cdk_json_context(), "aws:cdk:enable-path-metadata": True})
    build(app)
    VideoGenStack(app, FULL_STACK_NAME, options=FULL_OPTIONS)
    assembly = app.synth()
    acknowledgments = [
        (construct.node.path, str(key), str(reason))
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for key, reason in entry.data.items()
    ]
    return {"findings": unacknowledged(assembly.directory), "acknowledgments": acknowledgments}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """One synth per test run: with pytest-xdist, the first worker synthesises and the others read its output."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's own directory
    outdir = shared / "cdk.out"
    summary = shared / "cdk.out.json"
    with (shared / "cdk.out.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not summary.exists():
            summary.write_text(json.dumps(synthesize(outdir)))
    data = json.loads(summary.read_text())
    templates = {
        name: Template(json.loads((outdir / f"{name}.template.json").read_text()))
        for name in (DEFAULT_STACK_NAME, FULL_STACK_NAME)
    }
    return Synth(outdir, templates, data["findings"], [tuple(a) for a in data["acknowledgments"]])


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    """The default stack: what ``npx cdk deploy`` with no context deploys."""
    return synth.templates[DEFAULT_STACK_NAME]


@pytest.fixture(scope="session")
def full(synth: Synth) -> Template:
    """The stack with every option on (FULL_OPTIONS)."""
    return synth.templates[FULL_STACK_NAME]
