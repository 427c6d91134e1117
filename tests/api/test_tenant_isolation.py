"""Tenant isolation: another owner's job is indistinguishable from one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
import requests

from tests.api.conftest import OWNER_A, OWNER_B, ApiStack

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def without_message(body: object) -> dict[str, Any]:
    assert isinstance(body, dict)
    return {name: value for name, value in body.items() if name != "message"}


@pytest.fixture(scope="module")
def jobs_of_a(client_a: openai.OpenAI) -> dict[str, openai.types.Video]:
    """Owner A's jobs: one completed (it has content), one still running (delete would cancel it)."""
    done = client_a.videos.create_and_poll(model="veo3-fast", prompt="owner A's finished video", poll_interval_ms=200)
    assert done.status == "completed", done.error
    running = client_a.videos.create(model="veo3-fast", prompt="[sim:stuck] owner A's running video")
    return {"completed": done, "running": running}


@pytest.fixture(scope="module")
def job_of_b(client_b: openai.OpenAI) -> openai.types.Video:
    return client_b.videos.create(model="veo3-fast", prompt="[sim:stuck] owner B's own video")


@pytest.mark.parametrize("which", ["completed", "running"])
@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda c, i: c.videos.retrieve(i), id="retrieve"),
        pytest.param(lambda c, i: c.videos.download_content(i), id="download"),
        pytest.param(lambda c, i: c.videos.delete(i), id="delete"),
    ],
)
def test_other_owner_gets_404(
    api: ApiStack,
    client_a: openai.OpenAI,
    client_b: openai.OpenAI,
    jobs_of_a: dict[str, openai.types.Video],
    which: str,
    action: Callable[[openai.OpenAI, str], Any],
) -> None:
    # Given one of owner A's jobs
    video = jobs_of_a[which]
    before = client_a.videos.retrieve(video.id)

    # When owner B retrieves, downloads or deletes it
    with pytest.raises(openai.NotFoundError) as raised:
        action(client_b, video.id)

    # Then B gets the same 404 as for an id that does not exist
    with pytest.raises(openai.NotFoundError) as unknown:
        action(client_b, "video_ffffffffffffffffffffffffffffffff")
    assert without_message(raised.value.body) == without_message(unknown.value.body)
    assert raised.value.code == "not_found"

    # And A's job is untouched: same status, still running (not cancelled) or still downloadable
    after = client_a.videos.retrieve(video.id)
    assert after.status == before.status
    assert after.error is None
    if which == "completed":
        assert client_a.videos.download_content(video.id).read()[4:8] == b"ftyp"
    else:
        assert api.execution_status(video.id) == "RUNNING"


def test_other_owner_does_not_list_them(
    client_a: openai.OpenAI,
    client_b: openai.OpenAI,
    jobs_of_a: dict[str, openai.types.Video],
    job_of_b: openai.types.Video,
) -> None:
    # When each owner lists its videos
    listed_by_b = [v.id for v in client_b.videos.list(limit=100)]
    listed_by_a = [v.id for v in client_a.videos.list(limit=100)]

    # Then each sees its own jobs only
    assert job_of_b.id in listed_by_b
    assert not {v.id for v in jobs_of_a.values()} & set(listed_by_b)
    assert {v.id for v in jobs_of_a.values()} <= set(listed_by_a)
    assert job_of_b.id not in listed_by_a


def test_other_owners_id_as_list_cursor_is_404(
    api: ApiStack, client_b: openai.OpenAI, jobs_of_a: dict[str, openai.types.Video], job_of_b: openai.types.Video
) -> None:
    # When owner B pages with one of A's ids as the cursor
    with pytest.raises(openai.NotFoundError) as raised:
        client_b.videos.list(after=jobs_of_a["completed"].id)

    # Then it is a 404 naming the cursor (nothing of A's page leaks)
    assert raised.value.param == "after"
    assert jobs_of_a["completed"].id in raised.value.message

    # And B's own id works as a cursor
    assert client_b.videos.list(after=job_of_b.id).data == []


def test_owner_cannot_be_chosen_by_the_client(
    api: ApiStack, jobs_of_a: dict[str, openai.types.Video], job_of_b: openai.types.Video
) -> None:
    # Given owner B's key, with headers and a query that name owner A
    headers = {**api.auth(OWNER_B), "X-Owner": OWNER_A, "X-Amzn-Principal": OWNER_A}

    # When B retrieves A's job and lists
    video = requests.get(
        f"{api.server.base_url}/videos/{jobs_of_a['completed'].id}",
        headers=headers,
        params={"owner": OWNER_A},
        timeout=30,
    )
    listed = requests.get(
        f"{api.server.base_url}/videos", headers=headers, params={"owner": OWNER_A, "limit": "100"}, timeout=30
    )

    # Then the owner is still the key's: 404 for A's job, only B's jobs in the list
    assert video.status_code == 404
    assert listed.status_code == 200
    assert [v["id"] for v in listed.json()["data"]] == [job_of_b.id]
