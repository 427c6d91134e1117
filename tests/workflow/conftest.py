from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from functions.common.workflow import workflow_dependencies
from local.lambdas import LambdaRegistry, route_invocations
from local.resources import REGION, provision
from local.simulator import CometApiSimulator
from tests.workflow.harness import WorkflowHarness

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture
def simulator() -> Iterator[CometApiSimulator]:
    with CometApiSimulator(time_scale=0.0) as sim:
        yield sim


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config=MOTO_CONFIG):
        yield


@pytest.fixture
def workflow(aws: None, simulator: CometApiSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkflowHarness]:
    """The whole workflow on moto: resources from infra.config, the real ASL, the real handlers, the simulator."""
    resources = provision()
    for name, value in resources.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COMETAPI_BASE_URL", simulator.base_url)
    monkeypatch.setenv("COMETAPI_KEY", simulator.api_key)
    monkeypatch.setenv("VIDEOGEN_POLL_INTERVAL_SECONDS", "0")
    workflow_dependencies.cache_clear()
    with route_invocations(LambdaRegistry.workflow()) as registry:
        yield WorkflowHarness(resources, registry, simulator)
    workflow_dependencies.cache_clear()
