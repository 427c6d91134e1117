"""Per-dialect concurrency caps: jobs over the cap wait queued, none fails, the cap is never exceeded."""

from __future__ import annotations

import dataclasses
import itertools
import time

import boto3
import pytest

from functions.common.cancel import cancel_job
from functions.common.concurrency import SLOTS_KEY_PREFIX, ProviderSlots
from functions.common.terminal_event import release_slots
from functions.common.workflow import WorkflowDeps, workflow_dependencies
from tests.fixtures.images import png_bytes
from tests.workflow.harness import WorkflowHarness


def test_jobs_over_the_cap_wait_and_all_complete_without_overlapping(
    workflow: WorkflowHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cap of one in-flight task on the /v1/videos dialect
    monkeypatch.setenv("PROVIDER_CONCURRENCY", '{"videos": 1}')
    workflow_dependencies.cache_clear()
    # When three jobs start at once
    job_ids = [workflow.start({"model": "veo3-fast", "prompt": f"A lighthouse, take {n}"}) for n in range(3)]
    statuses = [workflow.wait(job_id, timeout=60) for job_id in job_ids]
    records = [workflow.jobs.require(job_id) for job_id in job_ids]
    # Then every job completed: none failed because of the cap
    assert statuses == ["SUCCEEDED"] * 3
    assert [r.status.value for r in records] == ["completed"] * 3, [r.error_message for r in records]
    # And no two provider tasks were ever in flight together (created -> seen finished)
    spans = sorted((r.submitted_at or 0, r.provider_completed_at or 0) for r in records)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert second_start >= first_end
    # And jobs waited (Submit answered "throttled" and ran again), and no slot is left held
    throttled = [c for c in workflow.registry.calls("videogen-submit") if c.error_type is None]
    assert len(throttled) > len(job_ids)
    table = boto3.resource("dynamodb").Table(workflow.resources.table)
    assert ProviderSlots(table, {"videos": 1}).in_flight("videos") == set()
    assert table.get_item(Key={"job_id": SLOTS_KEY_PREFIX + "videos"})["Item"].get("slots") is None


def test_a_slot_is_taken_once_per_job_and_given_back_idempotently(aws: None) -> None:
    # Given a cap of two, as one item in a jobs table
    from local.resources import provision

    resources = provision()
    slots = ProviderSlots(boto3.resource("dynamodb").Table(resources.table), {"kling": 2})
    # When a job takes a slot twice (a retried Submit), another takes one, and a third asks
    assert slots.acquire("kling", "video_a")
    assert slots.acquire("kling", "video_a")
    assert slots.acquire("kling", "video_b")
    # Then the retry did not count twice, and the third job is refused
    assert slots.in_flight("kling") == {"video_a", "video_b"}
    assert not slots.acquire("kling", "video_c")
    # And giving a slot back twice frees exactly one
    slots.release("kling", "video_a")
    slots.release("kling", "video_a")
    assert slots.acquire("kling", "video_c")
    assert slots.in_flight("kling") == {"video_b", "video_c"}
    # And a dialect without a cap is never limited
    assert all(slots.acquire("runway", f"video_{n}") for n in range(10))


def wait_for_submit(workflow: WorkflowHarness, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not workflow.registry.calls("videogen-submit"):
        assert time.monotonic() < deadline, "Submit never returned"
        time.sleep(0.05)


def test_a_job_cancelled_just_before_submit_takes_its_slot_gives_the_slot_back(
    workflow: WorkflowHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cap of one in-flight Kling task, and a user who cancels the job after Submit read its record and
    # before Submit takes a slot (so the cancel, which gives back the slots a job holds, finds none yet)
    monkeypatch.setenv("PROVIDER_CONCURRENCY", '{"kling": 1}')
    deps = WorkflowDeps.from_environment()

    class CancelledFirst(ProviderSlots):
        def acquire(self, dialect: str, job_id: str) -> bool:
            cancel_job(
                job_id,
                deps=deps,
                sfn=boto3.client("stepfunctions"),
                state_machine_arn=workflow.resources.state_machine_arn,
            )
            return super().acquire(dialect, job_id)

    workflow.use_dependencies(slots=CancelledFirst(deps.slots.table, deps.slots.caps))
    # When the job runs
    job_id = workflow.start({"model": "kling-v1-6", "prompt": "A kite over the dunes"})
    wait_for_submit(workflow)
    # Then the job is cancelled, nothing was created, and no slot is left held
    record = workflow.jobs.require(job_id)
    assert (record.status.value, record.error_code) == ("cancelled", "cancelled")
    assert workflow.simulator.creates() == []
    assert deps.slots.in_flight("kling") == set()


def test_slots_a_job_took_without_recording_an_attempt_are_given_back_when_it_ends(
    workflow: WorkflowHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cap of one in-flight Kling task, and a slot write that is applied but whose answer is lost, so
    # Submit fails before it has recorded the attempt (the only place Finalize looked for slots to give back)
    monkeypatch.setenv("PROVIDER_CONCURRENCY", '{"kling": 1}')
    deps = WorkflowDeps.from_environment()

    class AnswerLost(ProviderSlots):
        def acquire(self, dialect: str, job_id: str) -> bool:
            super().acquire(dialect, job_id)
            raise RuntimeError("the connection dropped after DynamoDB applied the write")

    workflow.use_dependencies(slots=AnswerLost(deps.slots.table, deps.slots.caps))
    # When the job runs and ends
    run = workflow.run({"model": "kling-v1-6", "prompt": "A kite over the dunes"})
    # Then it failed with no attempt recorded, and Finalize gave back the slot of the request's model anyway
    assert run.record.status.value == "failed", run.describe()
    assert run.record.attempts == []
    assert deps.slots.in_flight("kling") == set()


def test_finalize_gives_back_slots_of_every_model_the_request_names(workflow: WorkflowHarness) -> None:
    # Given a job on Kling with a Runway fallback, holding a slot on each dialect but no attempt recorded
    deps = dataclasses.replace(
        WorkflowDeps.from_environment(),
        slots=ProviderSlots(boto3.resource("dynamodb").Table(workflow.resources.table), {"kling": 1, "runway": 1}),
    )
    image = workflow.upload_image(png_bytes(640, 384, (90, 160, 60)))
    job_id = workflow.start(
        {"model": "kling-v1-6", "prompt": "A kite", "images": [image], "fallback_models": ["gen3a_turbo"]}
    )
    workflow.wait(job_id)
    for dialect in ("kling", "runway"):
        assert deps.slots.acquire(dialect, job_id)
    # When the job's slots are given back (as Finalize and cancel do)
    release_slots(workflow.jobs.require(job_id), deps)
    # Then none is held, whatever the attempts record says
    assert deps.slots.in_flight("kling") == deps.slots.in_flight("runway") == set()
