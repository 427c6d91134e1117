"""Idempotency-Key on POST /v1/videos: a retried create never makes a second job, execution or provider task."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
import requests

from tests.api.conftest import OWNER_A, ApiStack, finished, wait_for

pytestmark = pytest.mark.filterwarnings(
    "ignore:The Sora API is scheduled:DeprecationWarning",
    # Powertools idempotency outside a real Lambda (no remaining-time context): irrelevant here.
    "ignore:Couldn't determine the remaining time left:UserWarning",
)

PARALLEL_REQUESTS = 8


def jobs_with_prompt(api: ApiStack, prompt: str) -> list[dict[str, Any]]:
    return [item for item in api.job_items() if item["request"]["prompt"] == prompt]


def test_same_key_same_body_gives_the_same_video_once(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given an Idempotency-Key and a body
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    prompt = f"idempotent kite {uuid.uuid4()}"
    executions_before = len(api.executions())
    creates_before = len(api.sim_creates())

    # When the same create is sent twice (a client retrying after a lost answer)
    first = client_a.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)
    second = client_a.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)

    # Then both answers are the same video
    assert second.id == first.id
    assert second.created_at == first.created_at

    # And there is one job, one execution (named by the job id), and, once it has run, one provider create
    done = wait_for(lambda: finished(client_a, first.id), what="the job to end")
    assert done.status == "completed", done.error
    assert [item["job_id"] for item in jobs_with_prompt(api, prompt)] == [first.id]
    assert len(api.executions()) == executions_before + 1
    assert api.execution_names().count(first.id) == 1
    assert len(api.sim_creates()) == creates_before + 1

    # And a third call after completion still answers the same video, now completed
    third = client_a.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)
    assert (third.id, third.status) == (first.id, "completed")
    assert len(api.executions()) == executions_before + 1


def test_same_key_different_body_is_409(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a key already used for one body
    key = {"Idempotency-Key": f"reused-{uuid.uuid4()}"}
    first = client_a.videos.create(model="veo3-fast", prompt="[sim:stuck] the first body", extra_headers=key)
    jobs_before = api.job_ids()

    # When the same key comes with another body
    with pytest.raises(openai.ConflictError) as raised:
        client_a.videos.create(model="veo3-fast", prompt="[sim:stuck] a different body", extra_headers=key)

    # Then it is a 409 in OpenAI's envelope naming the header, and no second job exists
    body = raised.value.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "conflict"
    assert body["param"] == "Idempotency-Key"
    assert "different request body" in body["message"]
    assert api.job_ids() == jobs_before
    assert first.id in jobs_before


def test_same_key_after_the_video_was_deleted_is_409_and_starts_nothing(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a video created with an Idempotency-Key, completed, then deleted by its owner
    key = {"Idempotency-Key": f"deleted-{uuid.uuid4()}"}
    prompt = f"idempotent then deleted {uuid.uuid4()}"
    first = client_a.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)
    done = wait_for(lambda: finished(client_a, first.id), what="the job to end")
    assert done.status == "completed", done.error
    assert client_a.videos.delete(first.id).deleted
    executions_before = len(api.executions())
    creates_before = len(api.sim_creates())

    # When the same create is sent again with the same key, within the key's 24 h
    with pytest.raises(openai.ConflictError) as raised:
        client_a.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)

    # Then it is a 409 naming the key, saying the video was deleted and that a new key makes a new video
    body = raised.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["code"], body["param"]) == ("invalid_request_error", "conflict", "Idempotency-Key")
    assert first.id in body["message"]
    assert "deleted" in body["message"]
    assert "new Idempotency-Key" in body["message"]

    # And no job, execution or provider task was started for it
    assert [item["job_id"] for item in jobs_with_prompt(api, prompt)] == [first.id]
    assert len(api.executions()) == executions_before
    assert len(api.sim_creates()) == creates_before

    # And a new key does make a new video
    fresh = client_a.videos.create(
        model="veo3-fast", prompt=prompt, extra_headers={"Idempotency-Key": f"fresh-{uuid.uuid4()}"}
    )
    assert fresh.id != first.id
    assert len(api.executions()) == executions_before + 1


def test_the_key_is_per_owner(api: ApiStack, client_a: openai.OpenAI, client_b: openai.OpenAI) -> None:
    # Given owner A used a key
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    prompt = "[sim:stuck] same key, two owners"
    mine = client_a.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)

    # When owner B sends the same key and body
    theirs = client_b.videos.create(model="veo3-fast", prompt=prompt, extra_headers=key)

    # Then B gets a job of its own, not A's
    assert theirs.id != mine.id
    assert client_b.videos.retrieve(theirs.id).id == theirs.id
    with pytest.raises(openai.NotFoundError):
        client_b.videos.retrieve(mine.id)


def test_parallel_duplicates_make_one_job(api: ApiStack) -> None:
    # Given eight identical creates with one Idempotency-Key, released at the same moment
    prompt = f"[sim:stuck] parallel duplicates {uuid.uuid4()}"
    headers = {**api.auth(OWNER_A), "Idempotency-Key": f"parallel-{uuid.uuid4()}"}
    body = {"model": "veo3-fast", "prompt": prompt}
    executions_before = len(api.executions())
    barrier = threading.Barrier(PARALLEL_REQUESTS)

    def create(_: int) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(timeout=10)
            return session.post(f"{api.server.base_url}/videos", json=body, headers=headers, timeout=30)

    # When they all arrive together
    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        answers = list(pool.map(create, range(PARALLEL_REQUESTS)))

    # Then every success carries the same id, every other answer is 409 "still being processed"
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}, [(a.status_code, a.text) for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 200}
    assert len(ids) == 1, ids
    for conflict in (a for a in answers if a.status_code == 409):
        error = conflict.json()["error"]
        assert (error["code"], error["param"]) == ("conflict", "Idempotency-Key")
        assert "still being processed" in error["message"]

    # And exactly one job record and one execution exist for them
    [job_id] = ids
    assert [item["job_id"] for item in jobs_with_prompt(api, prompt)] == [job_id]
    assert len(api.executions()) == executions_before + 1
    assert api.execution_names().count(job_id) == 1
