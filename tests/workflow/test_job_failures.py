"""Jobs the provider fails, filters, leaves stuck or loses track of: what the user is told, and what is spent."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from functions.common.cancel import cancel_job
from functions.common.workflow import WorkflowDeps
from tests.fixtures.images import png_bytes
from tests.workflow.harness import ShiftedClock, WorkflowHarness, catalog_with_polling
from tests.workflow.outcomes import assert_completed, assert_failed

KLING_SIZED_IMAGE = png_bytes(640, 384, (90, 160, 60))


def request_for(workflow: WorkflowHarness, model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    """A request for ``model``; Runway (image-to-video only) gets an uploaded image."""
    fields: dict[str, Any] = {"model": model, "prompt": prompt, **extra}
    if model == "gen3a_turbo":
        fields["images"] = [workflow.upload_image(KLING_SIZED_IMAGE)]
    return fields


def cancels(workflow: WorkflowHarness, task_id: str) -> list[str]:
    return [r.path for r in workflow.simulator.received if r.method == "DELETE" and r.path.endswith(task_id)]


# -- the provider says no


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6", "gen3a_turbo"])
def test_content_filter_fails_the_job_with_content_filtered(workflow: WorkflowHarness, model: str) -> None:
    # Given a task the provider fails without any reason (what its content filter does)
    # When the job runs
    run = workflow.run(request_for(workflow, model, "Something the filter dislikes [sim:filter]"))
    # Then the job failed as content_filtered, told the user to rephrase, and one Failed event says so
    detail = assert_failed(workflow, run, "content_filtered")
    assert "content filter" in detail["error"]["message"]
    assert run.record.attempts[0].error_code == "content_filtered"


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6", "gen3a_turbo"])
def test_failure_with_a_message_is_a_provider_error_carrying_it(workflow: WorkflowHarness, model: str) -> None:
    # Given a task that fails with a message
    # When the job runs
    run = workflow.run(request_for(workflow, model, "A waterfall [sim:fail=GPU pool exhausted]"))
    # Then the job failed as provider_error and the user sees the provider's message
    detail = assert_failed(workflow, run, "provider_error")
    assert "GPU pool exhausted" in detail["error"]["message"]


def test_every_model_filtered_fails_with_the_last_verdict(workflow: WorkflowHarness) -> None:
    # Given a prompt every model's filter rejects, and one fallback model
    # When the job runs
    run = workflow.run(
        {"model": "veo3-fast", "prompt": "Something no filter likes [sim:filter]", "fallback_models": ["sora-2"]}
    )
    # Then both models were tried, each once, and the job failed as content_filtered after the fallback
    assert_failed(workflow, run, "content_filtered")
    assert [a.model for a in run.record.attempts] == ["veo3-fast", "sora-2"]
    assert [a.error_code for a in run.record.attempts] == ["content_filtered", "content_filtered"]
    assert [c.form["model"] for c in workflow.simulator.creates("videos")] == [["veo3-fast"], ["sora-2"]]
    assert run.events[0]["detail"]["attempts"] == ["veo3-fast", "sora-2"]


# -- stuck in the queue: fall back to the next model


def stuck_only_on_the_first_create(workflow: WorkflowHarness) -> None:
    """Every create's task is stuck in the queue until the first Submit has returned."""
    workflow.simulator.set_global_faults("stuck")

    def unstick(event: dict[str, Any], result: Any, calls: int) -> None:
        if calls == 1:
            workflow.simulator.clear_global_faults()

    workflow.intercept("submit", after=unstick)


def test_stuck_in_queue_falls_back_to_the_next_model(workflow: WorkflowHarness) -> None:
    # Given a catalog whose stuck-in-queue threshold is 0 s (instead of 600 s), and a first task that never
    # leaves the queue
    workflow.use_dependencies(catalog=catalog_with_polling(stuck_queue_seconds=0))
    stuck_only_on_the_first_create(workflow)
    # When a job with one fallback model runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A heron taking off", "fallback_models": ["sora-2"]})
    # Then the first attempt was abandoned as stuck_in_queue and the fallback's video was stored
    assert_completed(workflow, run, attempt=1)
    first, second = run.record.attempts
    assert (first.model, first.error_code) == ("veo3-fast", "stuck_in_queue")
    assert (second.model, second.error_code) == ("sora-2", None)
    assert run.record.model == "sora-2"
    assert run.events[0]["detail"]["attempts"] == ["veo3-fast", "sora-2"]
    assert [c.form["model"] for c in workflow.simulator.creates("videos")] == [["veo3-fast"], ["sora-2"]]


def test_stuck_runway_task_is_cancelled_before_the_fallback(workflow: WorkflowHarness) -> None:
    # Given a stuck Runway image-to-video task, a 0 s stuck threshold and a Kling fallback
    workflow.use_dependencies(catalog=catalog_with_polling(stuck_queue_seconds=0))
    stuck_only_on_the_first_create(workflow)
    # When the job runs
    run = workflow.run(request_for(workflow, "gen3a_turbo", "A heron taking off", fallback_models=["kling-v1-6"]))
    # Then the abandoned Runway task was cancelled (we stop paying for it) and Kling's video was stored
    assert_completed(workflow, run, attempt=1)
    assert cancels(workflow, run.task_id(0)) == [f"/runwayml/v1/tasks/{run.task_id(0)}"]
    (kling_create,) = workflow.simulator.creates("kling")
    assert kling_create.path == "/kling/v1/videos/image2video"


def test_stuck_kling_task_falls_back_to_another_kling_model_under_its_own_external_task_id(
    workflow: WorkflowHarness,
) -> None:
    # Given a 0 s stuck threshold, a first Kling task that never leaves the queue, and a Kling fallback
    # (Kling refuses a second task with an external_task_id it has seen: code 1201 "already exists")
    workflow.use_dependencies(catalog=catalog_with_polling(stuck_queue_seconds=0))
    stuck_only_on_the_first_create(workflow)
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A heron taking off", "fallback_models": ["kling-v2-master"]})
    # Then the fallback's video was stored
    assert_completed(workflow, run, attempt=1)
    assert [(a.model, a.error_code) for a in run.record.attempts] == [
        ("kling-v1-6", "stuck_in_queue"),
        ("kling-v2-master", None),
    ]
    # And each attempt's create carried its own external_task_id, and the provider accepted both
    first, second = workflow.simulator.creates("kling")
    assert [c.status for c in (first, second)] == [200, 200]
    assert first.json["external_task_id"] == run.job_id
    assert second.json["external_task_id"] == f"{run.job_id}-a1"
    assert [first.task_id, second.task_id] == [run.task_id(0), run.task_id(1)]


def test_ambiguous_create_on_a_kling_fallback_is_reconciled_to_the_fallbacks_own_task(
    workflow: WorkflowHarness,
) -> None:
    # Given a 0 s stuck threshold, a first Kling task stuck in the queue, and a Kling fallback whose create the
    # provider processes but whose answer never arrives
    workflow.use_dependencies(catalog=catalog_with_polling(stuck_queue_seconds=0))
    stuck_only_on_the_first_create(workflow)

    def lose_the_fallbacks_answer(event: dict[str, Any], calls: int) -> None:
        if event.get("attempt") == 1:
            workflow.simulator.set_global_faults("ambiguous")

    workflow.intercept("submit", before=lose_the_fallbacks_answer)
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A heron landing", "fallback_models": ["kling-v2-master"]})
    # Then reconciliation found the fallback's task (not the abandoned first one) and its video was stored
    assert_completed(workflow, run, attempt=1)
    first, second = workflow.simulator.creates("kling")
    assert second.status is None  # the answer was dropped
    assert run.task_id(1) == second.task_id != first.task_id


def test_stuck_without_fallback_fails_as_stuck_in_queue(workflow: WorkflowHarness) -> None:
    # Given a 0 s stuck threshold and a task stuck in the queue, no fallback
    workflow.use_dependencies(catalog=catalog_with_polling(stuck_queue_seconds=0))
    # When the job runs
    run = workflow.run({"model": "kling-v2-master", "prompt": "A heron taking off [sim:stuck]"})
    # Then it failed as stuck_in_queue after one poll
    assert_failed(workflow, run, "stuck_in_queue")
    assert len(workflow.polls_of(run.task_id())) == 1


@pytest.mark.parametrize("shape", ["reference", "tutorial", "wrapped"])
def test_throttled_runway_task_is_waited_for_not_failed_as_stuck(workflow: WorkflowHarness, shape: str) -> None:
    # Given a 0 s stuck threshold, and a Runway task held back by the account's concurrency limit (THROTTLED,
    # which Runway reports instead of PENDING) for its first two polls
    workflow.use_dependencies(catalog=catalog_with_polling(stuck_queue_seconds=0))
    # When the job runs
    run = workflow.run(request_for(workflow, "gen3a_turbo", f"A heron taking off [sim:throttled=2,shape={shape}]"))
    # Then Poll kept waiting through the throttled polls (bounded only by the max wait) and the video was stored
    assert_completed(workflow, run)
    assert len(workflow.polls_of(run.task_id())) == 3


# -- the deadline


@pytest.mark.parametrize("model", ["veo3-fast", "gen3a_turbo"])
def test_deadline_passed_fails_as_timeout(workflow: WorkflowHarness, model: str) -> None:
    # Given a request that waits at most 30 s, a task stuck in the queue, and a clock that moves 20 s
    # before every poll
    clock = ShiftedClock()
    workflow.use_dependencies(clock=clock)
    workflow.intercept("poll", before=lambda event, calls: clock.advance(20))
    # When the job runs
    run = workflow.run(request_for(workflow, model, "A slow sunrise [sim:stuck]", max_wait_seconds=30))
    # Then the first poll (20 s) kept waiting, the second (40 s) stopped the job as a timeout
    detail = assert_failed(workflow, run, "timeout")
    assert "within 30 s" in detail["error"]["message"]
    assert len(workflow.polls_of(run.task_id())) == 2
    if model == "gen3a_turbo":  # the dialect that can cancel does, so the abandoned task stops costing
        assert len(cancels(workflow, run.task_id())) == 1


# -- a create whose answer was lost


def test_ambiguous_create_on_veo_fails_visibly_and_never_creates_twice(workflow: WorkflowHarness) -> None:
    # Given a create the provider processes but whose answer never arrives
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A glass of water on a table [sim:ambiguous]"})
    # Then the job failed as submit_ambiguous, telling the user the provider may still render and bill it
    detail = assert_failed(workflow, run, "submit_ambiguous")
    message = detail["error"]["message"]
    assert "may still be rendering" in message
    assert "billing" in message
    # And no second create reached the provider, although the first one did create a task
    creates = workflow.simulator.creates("videos")
    assert len(creates) == 1
    assert creates[0].task_id is not None
    assert creates[0].status is None
    # And the record keeps the evidence: a create was started, no task is known
    (attempt,) = run.record.attempts
    assert attempt.create_started_at is not None
    assert attempt.task is None


def test_ambiguous_create_on_kling_is_reconciled_by_external_task_id(workflow: WorkflowHarness) -> None:
    # Given a Kling create the provider processes but whose answer never arrives
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A glass of water on a table [sim:ambiguous]"})
    # Then Submit found the task by the job id (Kling's external_task_id) and the job completed with its video
    assert_completed(workflow, run)
    (create,) = workflow.simulator.creates("kling")
    assert create.json["external_task_id"] == run.job_id
    assert create.task_id == run.task_id()


def test_lost_kling_create_that_never_arrived_is_created_again(
    workflow: WorkflowHarness, sfn_retry_waits: list[float]
) -> None:
    # Given a Kling create whose connection is reset before the provider processed it (nothing was created),
    # so the outcome looks unknown to us
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A glass of milk on a table [sim:reset]"})
    # Then reconciliation by external_task_id proved nothing was accepted, Submit ran again and created the task,
    # and the job completed: one task made, never two
    assert_completed(workflow, run)
    creates = workflow.simulator.creates("kling")
    assert [c.status for c in creates] == [None, 200]
    assert [c.task_id for c in creates if c.task_id] == [run.task_id()]


# -- cancelled while the create is in flight


def test_a_job_cancelled_while_its_create_is_in_flight_cancels_the_task_the_create_made(
    workflow: WorkflowHarness,
) -> None:
    # Given a Runway job whose create the provider accepts at once but answers a second later
    job_id = workflow.start(request_for(workflow, "gen3a_turbo", "A lantern on a jetty [sim:slow=1]"))
    deadline = time.monotonic() + 10
    while not workflow.simulator.creates():
        assert time.monotonic() < deadline, "the create never reached the provider"
        time.sleep(0.02)
    assert workflow.jobs.require(job_id).current_attempt.task is None  # type: ignore[union-attr]

    # When the user cancels the job before Submit has the task id (DELETE /v1/videos/{id}, Ctrl-C)
    cancel_job(
        job_id,
        deps=WorkflowDeps.from_environment(),
        sfn=boto3.client("stepfunctions"),
        state_machine_arn=workflow.resources.state_machine_arn,
    )

    # Then, once the create answers, Submit cancels the task it made: nobody keeps paying for it
    ((create,),) = [workflow.simulator.creates()]
    task_id = create.task_id
    assert task_id is not None
    deadline = time.monotonic() + 10
    while not cancels(workflow, task_id):
        assert time.monotonic() < deadline, f"task {task_id} was never cancelled at the provider"
        time.sleep(0.05)
    assert cancels(workflow, task_id) == [f"/runwayml/v1/tasks/{task_id}"]
    # And the job stays cancelled, with one Failed event (code cancelled)
    assert workflow.wait(job_id) == "ABORTED"
    record = workflow.jobs.require(job_id)
    assert (record.status.value, record.error_code) == ("cancelled", "cancelled")
    assert [event["detail"]["error"]["code"] for event in workflow.events_for(job_id)] == ["cancelled"]
