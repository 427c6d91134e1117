"""The wait Submit and Poll hand to the Wait state: the adaptive policy, or the fixed interval that overrides it.

Every other workflow test fixes the interval to 0 (VIDEOGEN_POLL_INTERVAL_SECONDS) to compress time. Here the
Submit and Poll handlers run one at a time against a simulator whose renders take their real (catalog) time on
a clock the test moves, so the progress a Poll sees, and the elapsed time it measures, are known exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from functions.common.poll_policy import first_wait_seconds, next_wait_seconds
from functions.common.settings import ProviderSettings
from functions.common.workflow import ProviderSource
from functions.providers.catalog import load_catalog
from local.simulator import CometApiSimulator
from tests.workflow.harness import WorkflowHarness

POLL_AFTER_SECONDS = 30
"""When the Poll runs, after Submit: veo3-fast (60 s render) reports 50 %; Kling (180 s) runs, without progress."""

ENV_INTERVAL = 7
REQUEST_INTERVAL = 3


class FrozenClock:
    """Unix seconds that move only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sim_clock() -> FrozenClock:
    return FrozenClock(1000.0)


@pytest.fixture
def simulator(sim_clock: FrozenClock) -> Iterator[CometApiSimulator]:
    """Renders take the catalog's typical time (time scale 1) on the test's clock."""
    with CometApiSimulator(time_scale=1.0, clock=sim_clock) as sim:
        yield sim


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_800_000_000.0)


def use_clock(workflow: WorkflowHarness, clock: FrozenClock) -> None:
    """The workflow Lambdas (and the adapters, which stamp submitted_at) read ``clock``, with the environment
    as it is now (VIDEOGEN_POLL_INTERVAL_SECONDS included)."""
    workflow.use_dependencies(clock=clock, providers=ProviderSource(ProviderSettings(), clock=clock))


def submit_then_poll(
    workflow: WorkflowHarness, clock: FrozenClock, sim_clock: FrozenClock, fields: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Submit the job, let POLL_AFTER_SECONDS pass (for us and the simulator), Poll it: the job id and both answers."""
    use_clock(workflow, clock)
    job_id = workflow.create_record(fields)
    submitted, error_type = workflow.invoke("submit", {"job_id": job_id, "attempt": 0})
    assert (submitted.get("outcome"), error_type) == ("submitted", None), submitted
    assert workflow.jobs.require(job_id).next_poll_at == clock() + submitted["wait_seconds"]
    clock.advance(POLL_AFTER_SECONDS)
    sim_clock.advance(POLL_AFTER_SECONDS)
    polled, error_type = workflow.invoke("poll", submitted)
    assert (polled.get("outcome"), error_type) == ("running", None), polled
    return job_id, submitted, polled


@pytest.mark.parametrize(
    ("model", "progress"),
    [
        pytest.param("veo3-fast", 50, id="veo3-fast-with-progress"),
        pytest.param("kling-v1-6", None, id="kling-without-progress"),
    ],
)
def test_without_an_override_the_waits_are_the_adaptive_policys(
    workflow: WorkflowHarness,
    monkeypatch: pytest.MonkeyPatch,
    clock: FrozenClock,
    sim_clock: FrozenClock,
    model: str,
    progress: int | None,
) -> None:
    # Given no fixed interval anywhere: neither VIDEOGEN_POLL_INTERVAL_SECONDS nor the request's
    monkeypatch.delenv("VIDEOGEN_POLL_INTERVAL_SECONDS")
    spec = load_catalog().models[model]
    # When the job is submitted, and polled while the provider renders it
    job_id, submitted, polled = submit_then_poll(
        workflow, clock, sim_clock, {"model": model, "prompt": "A heron waiting in the reeds"}
    )
    # Then Submit's wait is the policy's first wait for the model
    assert submitted["wait_seconds"] == first_wait_seconds(spec)
    # And Poll's is the policy's next wait for the elapsed time and the progress the simulator reported
    record = workflow.jobs.require(job_id)
    assert record.progress == (progress or 0)
    expected = next_wait_seconds(spec, elapsed_seconds=POLL_AFTER_SECONDS, progress=progress)
    assert polled["wait_seconds"] == expected
    # And the record says when the next poll is due, which the API's openai-poll-after-ms is taken from
    assert record.next_poll_at == clock() + expected
    # (the adaptive waits are not some fixed value in disguise)
    assert {submitted["wait_seconds"], polled["wait_seconds"]}.isdisjoint({0, ENV_INTERVAL, REQUEST_INTERVAL})


def test_the_environment_interval_replaces_the_adaptive_waits(
    workflow: WorkflowHarness, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock, sim_clock: FrozenClock
) -> None:
    # Given VIDEOGEN_POLL_INTERVAL_SECONDS, and a request without poll_interval_seconds
    monkeypatch.setenv("VIDEOGEN_POLL_INTERVAL_SECONDS", str(ENV_INTERVAL))
    # When the job is submitted and polled
    job_id, submitted, polled = submit_then_poll(
        workflow, clock, sim_clock, {"model": "veo3-fast", "prompt": "A heron waiting in the reeds"}
    )
    # Then both waits are the environment's interval, and so is the next poll's due time
    assert (submitted["wait_seconds"], polled["wait_seconds"]) == (ENV_INTERVAL, ENV_INTERVAL)
    assert workflow.jobs.require(job_id).next_poll_at == clock() + ENV_INTERVAL


@pytest.mark.parametrize("env_interval", [None, ENV_INTERVAL], ids=["env-unset", "env-set"])
def test_the_requests_interval_wins_over_the_environment(
    workflow: WorkflowHarness,
    monkeypatch: pytest.MonkeyPatch,
    clock: FrozenClock,
    sim_clock: FrozenClock,
    env_interval: int | None,
) -> None:
    # Given a request with poll_interval_seconds, with VIDEOGEN_POLL_INTERVAL_SECONDS unset or set to another value
    if env_interval is None:
        monkeypatch.delenv("VIDEOGEN_POLL_INTERVAL_SECONDS")
    else:
        monkeypatch.setenv("VIDEOGEN_POLL_INTERVAL_SECONDS", str(env_interval))
    fields = {"model": "veo3-fast", "prompt": "A heron waiting in the reeds", "poll_interval_seconds": REQUEST_INTERVAL}
    # When the job is submitted and polled
    job_id, submitted, polled = submit_then_poll(workflow, clock, sim_clock, fields)
    # Then both waits are the request's (WorkflowDeps.fixed_poll_interval: the request, then the environment)
    assert (submitted["wait_seconds"], polled["wait_seconds"]) == (REQUEST_INTERVAL, REQUEST_INTERVAL)
    assert workflow.jobs.require(job_id).next_poll_at == clock() + REQUEST_INTERVAL
