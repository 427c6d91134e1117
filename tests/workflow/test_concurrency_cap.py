"""Per-dialect concurrency caps: jobs over the cap wait queued, none fails, the cap is never exceeded."""

from __future__ import annotations

import itertools

import boto3
import pytest

from functions.common.concurrency import SLOTS_KEY_PREFIX, ProviderSlots
from functions.common.workflow import workflow_dependencies
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
