"""The provider's many ways of answering: task_not_exist, the tutorial and wrapped shapes, rate limits."""

from __future__ import annotations

from typing import Any

import pytest

from functions.common.settings import ProviderSettings
from functions.common.workflow import ProviderSource
from tests.fixtures.images import png_bytes
from tests.workflow.harness import WorkflowHarness, catalog_with_polling
from tests.workflow.outcomes import assert_completed, assert_failed


def request_for(workflow: WorkflowHarness, model: str, prompt: str) -> dict[str, Any]:
    """A request for ``model``; Runway (image-to-video only) gets an uploaded image."""
    fields: dict[str, Any] = {"model": model, "prompt": prompt}
    if model == "gen3a_turbo":
        fields["images"] = [workflow.upload_image(png_bytes(640, 384))]
    return fields


# -- task_not_exist right after the create


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6", "gen3a_turbo"])
def test_task_not_exist_for_two_polls_then_success(workflow: WorkflowHarness, model: str) -> None:
    # Given a provider that says the task does not exist for the first two polls
    # When the job runs
    run = workflow.run(request_for(workflow, model, "A tram crossing a bridge [sim:not-exist=2]"))
    # Then those polls count as "still initialising" and the third poll finds the finished video
    assert_completed(workflow, run)
    assert len(workflow.polls_of(run.task_id())) == 3
    assert run.record.poll_count == 3
    assert len(workflow.simulator.creates()) == 1


def test_task_not_exist_answered_with_http_200(workflow: WorkflowHarness) -> None:
    # Given the variant where task_not_exist comes in an HTTP 200 body
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A tram crossing a bridge [sim:not-exist-200=2]"})
    # Then it is still read as "not yet", and the job completes
    assert_completed(workflow, run)
    assert len(workflow.polls_of(run.task_id())) == 3


def test_task_not_exist_past_the_grace_period_fails_the_job(workflow: WorkflowHarness) -> None:
    # Given a 0 s grace period for task_not_exist (instead of 60 s) and a task that never shows up. The adapters
    # read the grace period from their own catalog (ProviderSource's), so both catalogs are replaced.
    catalog = catalog_with_polling(not_found_grace_seconds=0)
    workflow.use_dependencies(catalog=catalog, providers=ProviderSource(ProviderSettings(), catalog))
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A tram crossing a bridge [sim:not-exist=5]"})
    # Then the first poll already counts the task as lost upstream, and the user is told to submit again
    detail = assert_failed(workflow, run, "provider_error")
    assert "does not exist" in detail["error"]["message"]
    assert len(workflow.polls_of(run.task_id())) == 1


# -- response shapes


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        ("veo3-fast", "tutorial"),
        ("sora-2", "tutorial"),
        ("gen3a_turbo", "tutorial"),
        ("gen3a_turbo", "wrapped"),
    ],
)
def test_other_response_shapes_complete(workflow: WorkflowHarness, model: str, shape: str) -> None:
    # Given a task whose polls answer in the tutorial's shape (or CometAPI's wrapped Runway shape)
    # When the job runs
    run = workflow.run(request_for(workflow, model, f"Clouds racing over hills [sim:shape={shape}]"))
    # Then the job completes just as with the reference shape
    assert_completed(workflow, run)


def test_tutorial_shape_failure_message_reaches_the_user(workflow: WorkflowHarness) -> None:
    # Given a tutorial-shaped task that fails with a plain string error
    # When the job runs
    run = workflow.run({"model": "sora-2", "prompt": "A storm [sim:shape=tutorial,fail=render node crashed]"})
    # Then the job failed with provider_error and the provider's message
    assert_failed(workflow, run, "provider_error")
    assert "render node crashed" in (run.record.error_message or "")


def test_wrapped_runway_failure_without_reason_is_a_content_filter(workflow: WorkflowHarness) -> None:
    # Given a wrapped Runway task that fails with no reason at all
    # When the job runs
    run = workflow.run(request_for(workflow, "gen3a_turbo", "A storm [sim:shape=wrapped,filter]"))
    # Then the job is reported as content_filtered
    assert_failed(workflow, run, "content_filtered")


# -- rate limits


def test_429_burst_on_create_is_retried_to_success(workflow: WorkflowHarness) -> None:
    # Given a create refused three times with 429 (Retry-After: 0), then accepted
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "Bees around lavender [sim:429x3-retry-after=0]"})
    # Then it completed from the one accepted create, after exactly four create calls
    assert_completed(workflow, run)
    creates = workflow.simulator.creates("videos")
    assert [c.status for c in creates] == [429, 429, 429, 200]
    assert creates[-1].task_id == run.task_id()
    # And the HTTP client's own retries were enough: Submit ran once, without error
    assert [c.error_type for c in workflow.registry.calls("videogen-submit")] == [None]


def test_kling_1303_concurrency_limit_waits_and_succeeds(workflow: WorkflowHarness) -> None:
    # Given Kling answering 1303 (too many tasks in flight) twice
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A koi pond in rain [sim:1303x2-retry-after=0]"})
    # Then the job waited it out and completed, with one task created
    assert_completed(workflow, run)
    creates = workflow.simulator.creates("kling")
    assert [c.status for c in creates] == [429, 429, 200]
    assert [c.task_id for c in creates if c.task_id] == [run.task_id()]


def test_kling_1303_beyond_the_http_retries_waits_for_a_slot_instead_of_failing(workflow: WorkflowHarness) -> None:
    # Given Kling answering 1303 (account over its concurrency limit) five times: more than the HTTP client's four
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A koi pond at night [sim:1303x5-retry-after=0]"})
    # Then Submit answered "throttled" once (no error), the job waited queued in WaitForSlot, and then created it
    assert_completed(workflow, run)
    submits = workflow.registry.calls("videogen-submit")
    assert [c.error_type for c in submits] == [None, None]
    assert "WaitForSlot" in run.describe()
    # And exactly one task exists: the refused creates made none
    creates = workflow.simulator.creates("kling")
    assert [c.status for c in creates] == [429] * 5 + [200]
    assert [c.task_id for c in creates if c.task_id] == [run.task_id()]
