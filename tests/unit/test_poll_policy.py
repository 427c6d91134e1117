"""The poll policy: how long the workflow waits before each Poll, for every model in the catalog.

Properties rather than snapshots: a fixed interval wins; the first wait comes no later than the earliest
completion; every wait is a whole number of seconds inside the model's [min, max] interval; waits shrink as a job
nears its expected completion, with and without progress; more progress at the same elapsed time never waits
longer. A few worked examples pin the arithmetic stated in the module's docstring.
"""

from __future__ import annotations

import socket
from itertools import pairwise
from typing import NoReturn

import pytest

from functions.common.poll_policy import first_wait_seconds, next_wait_seconds
from functions.providers.catalog import Dialect, ModelSpec, load_catalog

CATALOG = load_catalog()
ALL_MODELS = CATALOG.ids()
PROGRESS_MODELS = [m for m in ALL_MODELS if CATALOG.models[m].dialect in (Dialect.VIDEOS, Dialect.RUNWAY)]
BLIND_MODELS = [m for m in ALL_MODELS if CATALOG.models[m].dialect is Dialect.KLING]
PROGRESS_GRID: list[int | None] = [None, 0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100]


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in these tests may resolve a name or open a connection."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("network access is blocked in unit tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def spec_of(model_id: str) -> ModelSpec:
    spec = CATALOG.get(model_id)
    assert spec is not None
    return spec


def elapsed_grid(spec: ModelSpec) -> list[float]:
    """From the create to past the give-up time, in 7.5 s steps (fractions included: elapsed is measured)."""
    return [i * 7.5 for i in range(int(spec.polling.max_wait_seconds / 7.5) + 10)]


def is_whole_seconds(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_every_catalog_model_is_covered() -> None:
    # Given the catalog
    # When the models are split by whether their dialect reports progress
    # Then both kinds exist, so every property below is exercised with and without progress
    assert PROGRESS_MODELS
    assert BLIND_MODELS


# --- a fixed interval overrides everything -----------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ALL_MODELS)
@pytest.mark.parametrize("fixed", [0, 1, 7, 10, 45, 600])
def test_fixed_interval_overrides_first_and_every_next_wait(model_id: str, fixed: int) -> None:
    # Given any model and a fixed interval (a request's poll_interval_seconds or the global setting)
    spec = spec_of(model_id)

    # When the policy is asked for the first wait and for every later wait on the grid
    first = first_wait_seconds(spec, fixed_interval=fixed)
    nexts = {
        next_wait_seconds(spec, elapsed_seconds=elapsed, progress=progress, fixed_interval=fixed)
        for elapsed in elapsed_grid(spec)
        for progress in PROGRESS_GRID
    }

    # Then every answer is exactly the fixed interval, even outside the catalog's bounds (0 compresses time)
    assert first == fixed
    assert nexts == {fixed}
    assert is_whole_seconds(first)


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_negative_fixed_interval_is_refused(model_id: str) -> None:
    # Given a model
    spec = spec_of(model_id)

    # When a negative fixed interval is passed
    # Then the policy refuses it rather than scheduling a poll in the past
    with pytest.raises(ValueError, match="negative"):
        first_wait_seconds(spec, fixed_interval=-1)
    with pytest.raises(ValueError, match="negative"):
        next_wait_seconds(spec, elapsed_seconds=30, progress=None, fixed_interval=-5)


# --- the first wait ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_first_wait_is_no_later_than_the_earliest_completion_and_within_bounds(model_id: str) -> None:
    # Given a catalog model
    spec = spec_of(model_id)

    # When the policy chooses the first wait
    first = first_wait_seconds(spec)

    # Then it is whole seconds, at least the model's shortest interval, and no later than its fastest render
    assert is_whole_seconds(first)
    assert spec.polling.min_interval_seconds <= first <= spec.latency.min_seconds
    assert first <= spec.polling.max_wait_seconds


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_first_wait_is_capped_at_the_earliest_completion_even_if_configured_later(model_id: str) -> None:
    # Given a model whose polling block asks for a first wait later than its fastest render
    spec = spec_of(model_id)
    too_late = spec.polling.model_copy(update={"first_wait_seconds": spec.latency.min_seconds + 100})
    misconfigured = spec.model_copy(update={"polling": too_late})

    # When the policy chooses the first wait
    first = first_wait_seconds(misconfigured)

    # Then it waits only until the earliest completion
    assert first == spec.latency.min_seconds


# --- every later wait --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_every_wait_is_whole_seconds_within_the_models_interval_bounds(model_id: str) -> None:
    # Given a catalog model
    spec = spec_of(model_id)
    low, high = spec.polling.min_interval_seconds, spec.polling.max_interval_seconds

    # When the policy is asked at every elapsed time on the grid with every kind of progress report
    waits = [
        next_wait_seconds(spec, elapsed_seconds=elapsed, progress=progress)
        for elapsed in elapsed_grid(spec)
        for progress in PROGRESS_GRID
    ]

    # Then every wait is an integer (a Wait state's seconds), at least 1, within [min_interval, max_interval]
    assert all(is_whole_seconds(w) for w in waits)
    assert all(max(1, low) <= w <= high for w in waits), (min(waits), max(waits), low, high)


@pytest.mark.parametrize("model_id", ALL_MODELS)
@pytest.mark.parametrize("progress", [-10, 150, 1000])
def test_out_of_range_progress_still_gives_a_bounded_wait(model_id: str, progress: int) -> None:
    # Given a provider that reports nonsense progress
    spec = spec_of(model_id)

    # When the policy is asked at a typical elapsed time
    wait = next_wait_seconds(spec, elapsed_seconds=spec.latency.typical_seconds, progress=progress)

    # Then the wait is still whole seconds within the model's bounds
    assert is_whole_seconds(wait)
    assert spec.polling.min_interval_seconds <= wait <= spec.polling.max_interval_seconds


# --- waits shrink toward the expected completion -----------------------------------------------------------------


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_without_progress_waits_shrink_as_the_job_nears_the_end_of_its_latency_range(model_id: str) -> None:
    # Given a job that reports no progress (Kling, or a /v1/videos job still at 0)
    spec = spec_of(model_id)
    start, end = spec.latency.min_seconds, spec.latency.max_seconds
    elapsed_points = [start + (end - start) * i / 20 for i in range(21)]

    # When the policy is asked at successive elapsed times from the fastest to the slowest expected completion
    waits = [next_wait_seconds(spec, elapsed_seconds=e, progress=None) for e in elapsed_points]

    # Then the waits never grow and end shorter than they started
    assert all(later <= earlier for earlier, later in pairwise(waits)), waits
    assert waits[-1] < waits[0], waits


@pytest.mark.parametrize("model_id", PROGRESS_MODELS)
@pytest.mark.parametrize("total_kind", ["min_seconds", "typical_seconds", "max_seconds"])
def test_with_progress_waits_shrink_as_the_job_nears_its_completion(model_id: str, total_kind: str) -> None:
    # Given a job that will take the model's fastest, typical or slowest render time, and reports coarse progress
    spec = spec_of(model_id)
    total = getattr(spec.latency, total_kind)
    observations = [(total * (p + 5) / 100, p) for p in range(10, 100, 10)]  # mid-way through each step of 10

    # When the policy is asked at each observation as the job advances
    waits = [next_wait_seconds(spec, elapsed_seconds=e, progress=p) for e, p in observations]

    # Then the waits never grow, end shorter than they started (unless the render is so short that every wait is
    # already the shortest interval), and never overshoot the time actually left
    assert all(later <= earlier for earlier, later in pairwise(waits)), waits
    assert waits[-1] < waits[0] or waits[0] == spec.polling.min_interval_seconds, waits
    for (elapsed, _), wait in zip(observations, waits, strict=True):
        assert wait <= max(spec.polling.min_interval_seconds, total - elapsed)


@pytest.mark.parametrize("model_id", PROGRESS_MODELS)
def test_high_progress_early_waits_less_than_low_progress_at_the_same_elapsed_time(model_id: str) -> None:
    # Given two jobs of the same model at the same elapsed time, one far along and one barely started
    spec = spec_of(model_id)
    elapsed = spec.latency.typical_seconds / 2

    # When the policy is asked for each
    fast = next_wait_seconds(spec, elapsed_seconds=elapsed, progress=80)
    slow = next_wait_seconds(spec, elapsed_seconds=elapsed, progress=10)

    # Then the job reporting more progress is polled sooner
    assert fast < slow


@pytest.mark.parametrize("model_id", PROGRESS_MODELS)
def test_more_progress_never_waits_longer_at_any_elapsed_time(model_id: str) -> None:
    # Given a progress-reporting model
    spec = spec_of(model_id)

    for elapsed in elapsed_grid(spec):
        # When the policy is asked at one elapsed time for progress 10, 20, … 100
        waits = [next_wait_seconds(spec, elapsed_seconds=elapsed, progress=p) for p in range(10, 101, 10)]

        # Then the waits never grow with progress
        assert all(later <= earlier for earlier, later in pairwise(waits)), (elapsed, waits)


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_zero_progress_counts_as_no_information(model_id: str) -> None:
    # Given a job reporting 0 (queued or just started) and one reporting nothing
    spec = spec_of(model_id)

    for elapsed in elapsed_grid(spec):
        # When the policy is asked for both at the same elapsed time
        zero = next_wait_seconds(spec, elapsed_seconds=elapsed, progress=0)
        none = next_wait_seconds(spec, elapsed_seconds=elapsed, progress=None)

        # Then they wait the same
        assert zero == none


@pytest.mark.parametrize("model_id", BLIND_MODELS)
def test_an_overdue_job_without_progress_backs_off(model_id: str) -> None:
    # Given a job without progress that has run past the model's slowest expected completion
    spec = spec_of(model_id)
    end = spec.latency.max_seconds

    # When the policy is asked as it runs later and later
    waits = [next_wait_seconds(spec, elapsed_seconds=end + overdue, progress=None) for overdue in range(0, 601, 30)]

    # Then the waits never shrink, and a long-overdue job is polled at the model's longest interval
    assert all(later >= earlier for earlier, later in pairwise(waits)), waits
    assert waits[-1] == spec.polling.max_interval_seconds


# --- worked examples of the stated rule ---------------------------------------------------------------------------


def with_bounds(spec: ModelSpec, low: int, high: int) -> ModelSpec:
    polling = spec.polling.model_copy(update={"min_interval_seconds": low, "max_interval_seconds": high})
    return spec.model_copy(update={"polling": polling})


def test_worked_example_with_progress() -> None:
    # Given a /v1/videos model with wide bounds, 270 s into a render that reports 80 %
    spec = with_bounds(spec_of(PROGRESS_MODELS[0]), 2, 60)

    # When the policy is asked for the next wait
    wait = next_wait_seconds(spec, elapsed_seconds=270, progress=80)

    # Then 80 reads as 85 %, the time left extrapolates to 270 x 15 / 85 = 47.6 s, and we wait half: 24 s
    assert wait == 24


def test_worked_example_without_progress() -> None:
    # Given a Kling model with wide bounds, 150 s into a render whose slowest expected completion is 300 s
    spec = with_bounds(spec_of(BLIND_MODELS[0]), 2, 60)
    spec = spec.model_copy(update={"latency": spec.latency.model_copy(update={"max_seconds": 300})})

    # When the policy is asked for the next wait, on time and 150 s overdue
    on_time = next_wait_seconds(spec, elapsed_seconds=150, progress=None)
    overdue = next_wait_seconds(spec, elapsed_seconds=450, progress=None)

    # Then it waits a fifteenth of the distance to 300 s either way: 150 / 15 = 10 s
    assert on_time == 10
    assert overdue == 10
