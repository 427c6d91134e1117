"""The official openai SDK as the client of the local API: what a user of OpenAI's Videos API does, end to end."""

from __future__ import annotations

import hashlib
import time

import openai
import pytest

from tests.api.conftest import ApiStack, wait_for
from tests.fixtures.images import png_bytes

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

POLL_MS = 200


def assert_stored_mp4(api: ApiStack, client: openai.OpenAI, video: openai.types.Video) -> bytes:
    """The downloaded bytes are an MP4 whose sha256 and size are the ones the Video and S3 report."""
    extra = video.model_extra or {}
    data = client.videos.download_content(video.id).read()
    assert data[4:8] == b"ftyp", data[:16]
    digest = hashlib.sha256(data).hexdigest()
    assert extra["sha256"] == digest
    assert extra["bytes"] == len(data)
    stored = api.s3_object(extra["s3_uri"])
    assert stored is not None
    assert hashlib.sha256(stored).hexdigest() == digest
    return data


def test_create_and_poll_text_job_downloads_the_stored_mp4(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a text-to-video request for veo3-fast
    # When the SDK creates it and polls until it ends
    video = client_a.videos.create_and_poll(
        model="veo3-fast", prompt="A paper kite above a wheat field", poll_interval_ms=POLL_MS
    )

    # Then it completed with OpenAI's fields, and its content is the MP4 stored in S3
    assert video.status == "completed", video.error
    assert video.object == "video"
    assert video.model == "veo3-fast"
    assert video.progress == 100
    assert video.seconds == "8"
    assert video.size == "1280x720"
    assert video.completed_at is not None
    assert video.completed_at >= video.created_at
    assert video.error is None
    assert (video.model_extra or {})["s3_uri"].endswith(f"/{video.id}.mp4")
    assert_stored_mp4(api, client_a, video)


def test_create_and_poll_image_job_with_an_uploaded_reference(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a 1280x720 PNG, the exact size sora-2 needs for a 1280x720 video
    image = png_bytes(1280, 720)

    # When the SDK uploads it as input_reference (multipart) and polls until the job ends
    video = client_a.videos.create_and_poll(
        model="sora-2",
        prompt="The red square slowly turns into a sunset",
        input_reference=("ref.png", image, "image/png"),
        seconds="4",
        size="1280x720",
        poll_interval_ms=POLL_MS,
    )

    # Then it completed as asked, its MP4 is downloadable, and the image the workflow read is the uploaded one
    assert video.status == "completed", video.error
    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "1280x720")
    assert_stored_mp4(api, client_a, video)
    record = api.stack.jobs.require(video.id)
    [stored_image] = record.request["images"]
    assert stored_image["s3_key"].startswith("inputs/")
    assert api.s3_object(f"s3://{api.stack.resources.bucket}/{stored_image['s3_key']}") == image


def test_list_orders_pages_and_reports_has_more(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given three more jobs of owner A, created one after the other
    created = [client_a.videos.create(model="veo3-fast", prompt=f"[sim:stuck] listed job {n}").id for n in range(3)]

    # When A lists newest first, two per page
    first = client_a.videos.list(order="desc", limit=2)
    second = client_a.videos.list(order="desc", limit=2, after=first.data[-1].id)

    # Then the pages are the newest jobs in reverse creation order, and has_more says another page follows
    assert [v.id for v in first.data] == created[::-1][:2]
    assert first.has_more is True
    assert second.data[0].id == created[0]

    # And paging through everything (the SDK follows `after` while has_more) gives every job once, in order
    everything = client_a.videos.list(order="asc", limit=100)
    assert everything.has_more is False
    paged = [v.id for v in client_a.videos.list(order="asc", limit=2)]
    assert paged == [v.id for v in everything.data]
    assert len(set(paged)) == len(paged)
    assert paged[-3:] == created
    times = [v.created_at for v in everything.data]
    assert times == sorted(times)
    descending = [v.id for v in client_a.videos.list(order="desc", limit=100).data]
    assert descending == paged[::-1]


def test_retrieve_returns_the_created_video(client_a: openai.OpenAI) -> None:
    # Given a job just created
    created = client_a.videos.create(model="veo3-fast", prompt="[sim:stuck] retrieved job")

    # When it is retrieved
    video = client_a.videos.retrieve(created.id)

    # Then it is the same job, still running
    assert (video.id, video.model, video.prompt) == (created.id, "veo3-fast", "[sim:stuck] retrieved job")
    assert video.status in ("queued", "in_progress")
    assert video.created_at == created.created_at


def test_running_job_tells_when_to_poll_again(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a job that stays queued at the provider, and one that completed
    running = client_a.videos.create(model="veo3-fast", prompt="[sim:stuck] poll me later")
    done = client_a.videos.create_and_poll(model="veo3-fast", prompt="finished already", poll_interval_ms=POLL_MS)

    # When both are retrieved with the raw response
    raw_running = client_a.videos.with_raw_response.retrieve(running.id)
    raw_done = client_a.videos.with_raw_response.retrieve(done.id)

    # Then the running one carries openai-poll-after-ms (at least a second), the finished one does not
    assert raw_running.parse().status in ("queued", "in_progress")
    assert int(raw_running.headers["openai-poll-after-ms"]) >= 1000
    assert raw_done.parse().status == "completed"
    assert "openai-poll-after-ms" not in raw_done.headers


def test_delete_finished_job_removes_it(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a completed job with its MP4 in S3
    video = client_a.videos.create_and_poll(model="veo3-fast", prompt="to be deleted", poll_interval_ms=POLL_MS)
    assert video.status == "completed", video.error
    s3_uri = (video.model_extra or {})["s3_uri"]
    assert api.s3_object(s3_uri) is not None

    # When it is deleted
    deleted = client_a.videos.delete(video.id)

    # Then the answer says so, the video is gone from retrieve, download and list, and its MP4 from S3
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client_a.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client_a.videos.download_content(video.id)
    assert video.id not in [v.id for v in client_a.videos.list(limit=100)]
    assert api.s3_object(s3_uri) is None
    with pytest.raises(openai.NotFoundError):
        client_a.videos.delete(video.id)


def test_delete_running_job_cancels_it_once(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a Runway job (gen3a_turbo, image only) that stays queued at the provider
    video = client_a.videos.create(
        model="gen3a_turbo",
        prompt="[sim:stuck] a lighthouse at dusk",
        input_reference=("ref.png", png_bytes(1280, 768), "image/png"),
    )
    task_id = wait_for(
        lambda: next((r["task_id"] for r in api.sim_creates() if r["path"] == "/runwayml/v1/image_to_video"), None),
        what="the Runway create at the simulator",
    )
    wait_for(lambda: client_a.videos.retrieve(video.id).status == "in_progress", what="the job to be in progress")

    # When it is deleted
    deleted = client_a.videos.delete(video.id)

    # Then it is failed with code cancelled (and stays visible), its execution stopped, and the provider task
    # was cancelled
    assert deleted.id == video.id
    after = client_a.videos.retrieve(video.id)
    assert after.status == "failed"
    assert after.error is not None
    assert after.error.code == "cancelled"
    assert api.execution_status(video.id) == "ABORTED"
    cancels = [r for r in api.sim_requests() if r["method"] == "DELETE"]
    assert [r["path"] for r in cancels] == [f"/runwayml/v1/tasks/{task_id}"]

    # And exactly one "Video Generation Failed" event with code cancelled was published
    [event] = wait_for(lambda: api.events.for_job(video.id), what="the cancelled event")
    assert event["detail-type"] == "Video Generation Failed"
    assert event["detail"]["status"] == "cancelled"
    assert event["detail"]["error"]["code"] == "cancelled"

    # When it is deleted again (a finished job now), after the workflow had time for a late step
    client_a.videos.delete(video.id)
    time.sleep(1.5)

    # Then no second event was published, and the provider got no second cancel
    assert len(api.events.for_job(video.id)) == 1
    assert len([r for r in api.sim_requests() if r["method"] == "DELETE"]) == 1


def test_unknown_id_is_404(client_a: openai.OpenAI) -> None:
    # When a video id that was never issued is retrieved, downloaded or deleted
    for call in (client_a.videos.retrieve, client_a.videos.download_content, client_a.videos.delete):
        with pytest.raises(openai.NotFoundError) as raised:
            call("video_00000000000000000000000000000000")

        # Then each answers 404 in OpenAI's envelope
        assert raised.value.code == "not_found"
        assert raised.value.param == "id"


def test_wrong_key_is_401(api: ApiStack) -> None:
    # Given a client with a key that was never issued
    stranger = openai.OpenAI(base_url=api.server.base_url, api_key="vg_not-a-key", max_retries=0)
    jobs_before = api.job_ids()

    # When it lists and creates
    with pytest.raises(openai.AuthenticationError) as listing:
        stranger.videos.list()
    with pytest.raises(openai.AuthenticationError) as creating:
        stranger.videos.create(model="veo3-fast", prompt="no key, no video")

    # Then both are 401 invalid_api_key, and nothing was created
    for raised in (listing, creating):
        assert raised.value.status_code == 401
        assert raised.value.code == "invalid_api_key"
    assert api.job_ids() == jobs_before


def test_unknown_model_is_400_naming_the_field(api: ApiStack, client_a: openai.OpenAI) -> None:
    jobs_before = api.job_ids()

    # When a video is asked of a model the catalog does not have
    with pytest.raises(openai.BadRequestError) as raised:
        client_a.videos.create(model="sora-3-ultra", prompt="a model that does not exist")

    # Then the SDK raises BadRequestError whose body names the field and what is allowed, and no job exists
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["param"] == "model"
    assert body["code"] == "invalid_request"
    assert body["type"] == "invalid_request_error"
    assert "sora-3-ultra" in body["message"]
    assert "veo3-fast" in body["message"]
    assert raised.value.param == "model"
    assert api.job_ids() == jobs_before
