from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from functions.common.container import forget_container_state
from local.lambdas import LambdaRegistry, route_invocations
from local.moto_dynamodb import atomic_dynamodb_writes
from local.resources import REGION, provision
from local.simulator import CometApiSimulator
from tests.fixtures.aws import use_fake_aws
from tests.workflow.harness import WorkflowHarness

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture
def simulator() -> Iterator[CometApiSimulator]:
    with CometApiSimulator(time_scale=0.0) as sim:
        yield sim


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_fake_aws(monkeypatch, REGION)
    with mock_aws(config=MOTO_CONFIG), atomic_dynamodb_writes():
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
    forget_container_state()
    with route_invocations(LambdaRegistry.workflow()) as registry:
        yield WorkflowHarness(resources, registry, simulator, monkeypatch)
    forget_container_state()


@pytest.fixture
def sfn_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Compress the waits of the ASL's Retry blocks; the list collects every wait Step Functions asked for.

    moto's executor sleeps each Retry interval for real (``time.sleep`` in its retrier). Tests of a Retry path
    (IntervalSeconds 2-5 s with full jitter) let it sleep at most 10 ms instead.
    """
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    assert vars(retrier_decl).get("time") is time, "moto's retrier no longer sleeps through time.sleep"
    asked: list[float] = []

    def short_sleep(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(min(seconds, 0.01))

    monkeypatch.setattr(f"{retrier_decl.__name__}.time", SimpleNamespace(sleep=short_sleep))
    return asked
