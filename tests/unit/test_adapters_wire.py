"""The three adapters on the wire: exactly what each dialect sends to CometAPI and how it reads the answers.

A fake session stands in for requests: it records every call and answers with prepared ``requests.Response``
objects, so nothing leaves the process.
"""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Callable
from typing import Any, NoReturn, cast

import pytest
import requests
from PIL import Image
from pydantic import SecretStr

from functions.common.errors import (
    ContentFilteredError,
    InvalidRequestError,
    ProviderError,
    ProviderUnavailableError,
)
from functions.common.images import ImageInfo, inspect_image
from functions.common.video_request import VideoRequest, parse_video_request
from functions.providers.base import ProviderTask, TaskStatus, VideoProvider
from functions.providers.catalog import Dialect, load_catalog
from functions.providers.factory import provider_for
from functions.providers.http import ProviderHttp
from functions.providers.kling import KlingProvider
from functions.providers.videos import VideosProvider
from tests.fixtures.fake_http import FakeSession, empty_response, json_response

BASE_URL = "https://api.example.test"
KEY = "sk-test"
JOB_ID = "job-7f3a2c"
PUBLIC_IP = "93.184.216.34"
FIRST_URL = "https://images.example.com/first.png"
LAST_URL = "https://images.example.com/last.png"
SUBMITTED_AT = 1_000_000.0


@pytest.fixture(autouse=True)
def _module_blocks_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may resolve a name or open a connection (named apart from conftest's guard: both apply)."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("network access is blocked in unit tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def build(model_id: str, *answers: requests.Response | Exception) -> tuple[VideoProvider, FakeSession, list[float]]:
    session = FakeSession(*answers)
    sleeps: list[float] = []
    http = ProviderHttp(
        base_url=BASE_URL,
        api_key=SecretStr(KEY),
        session=cast(requests.Session, session),
        sleep=sleeps.append,
        jitter=lambda: 0.5,
    )
    return provider_for(model_id, http), session, sleeps


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def request(**fields: Any) -> VideoRequest:
    return parse_video_request(
        {"prompt": "A red fox runs through fresh snow at dawn", **fields}, resolve=lambda host: [PUBLIC_IP]
    )


def text_fields(parts: list[tuple[str, tuple[str | None, Any, str | None]]]) -> dict[str, Any]:
    return {name: value for name, (filename, value, _type) in parts if filename is None}


def file_parts(parts: list[tuple[str, tuple[str | None, Any, str | None]]]) -> list[tuple[str, Any, str | None]]:
    return [(name, value, media_type) for name, (filename, value, media_type) in parts if filename is not None]


SORA_CREATED = {
    "id": "video_69b2",
    "object": "video",
    "model": "sora-2",
    "status": "queued",
    "progress": 0,
    "seconds": "4",
    "size": "1280x720",
    "created_at": 1773296991,
}
VEO_CREATED = {
    "id": "task_pa9C",
    "task_id": "task_pa9C",
    "object": "video",
    "model": "veo_3_1-4K",
    "status": "queued",
    "progress": 0,
    "seconds": "",
    "size": "16x9",
    "created_at": 1773297229,
}
KLING_CREATED = {
    "code": 0,
    "message": "success",
    "data": {
        "task_id": "2032273942220931072",
        "task_status": "submitted",
        "task_info": {},
        "created_at": 1773366840306,
        "updated_at": 1773366840306,
    },
}
RUNWAY_CREATED = {"id": "d0658ae1-bbdd-4adc-aaba-fd8070e14d79"}


# --- /v1/videos: multipart create -------------------------------------------------------------------------


def test_veo_first_and_last_frame_create_is_multipart_with_two_ordered_files() -> None:
    # Given a Veo request with a first and a last frame
    first, last = png(64, 36, (200, 30, 30)), png(64, 36, (30, 30, 200))
    provider, session, _ = build("veo3-fast", json_response(200, VEO_CREATED))
    # When it is submitted
    task = provider.submit(request(model="veo3-fast", images=[first, last]), JOB_ID)
    # Then one multipart POST went to /v1/videos with model, prompt, Veo's 16x9 size and no seconds
    assert len(session.calls) == 1
    call = session.calls[0]
    assert (call.method, call.url) == ("POST", f"{BASE_URL}/v1/videos")
    assert call.kwargs.get("json") is None
    assert call.kwargs.get("data") is None
    parts = call.kwargs["files"]
    assert text_fields(parts) == {
        "model": "veo3-fast",
        "prompt": "A red fox runs through fresh snow at dawn",
        "size": "16x9",
    }
    # And the two frames went as ordered input_reference file parts
    assert file_parts(parts) == [("input_reference", first, "image/png"), ("input_reference", last, "image/png")]
    # And the task is the one CometAPI named, under our model id (not the resolved backend id)
    assert task.task_id == "task_pa9C"
    assert task.model == "veo3-fast"
    assert task.dialect is Dialect.VIDEOS


def videos_provider(
    resolve: Callable[[str], list[str]], downloads: list[str], image: bytes, *answers: requests.Response
) -> tuple[VideosProvider, FakeSession]:
    """The /v1/videos adapter with a scripted resolver and an image downloader that records what it fetched."""
    session = FakeSession(*answers)
    http = ProviderHttp(base_url=BASE_URL, api_key=SecretStr(KEY), session=cast(requests.Session, session))

    def download(url: str) -> tuple[bytes, ImageInfo]:
        downloads.append(url)
        return image, inspect_image(image)

    return VideosProvider(http, load_catalog(), download=download, resolve=resolve), session


def test_veo_image_url_is_checked_again_then_downloaded_and_sent_as_a_file() -> None:
    # Given a Veo request whose image is an https URL (accepted when its host resolved to a public address)
    frame = png(64, 36, (200, 30, 30))
    downloads: list[str] = []
    provider, session = videos_provider(lambda host: [PUBLIC_IP], downloads, frame, json_response(200, VEO_CREATED))
    # When it is submitted
    provider.submit(request(model="veo3-fast", images=[{"url": FIRST_URL}]), JOB_ID)
    # Then we fetched the image ourselves and sent its bytes as the input_reference file
    assert downloads == [FIRST_URL]
    (call,) = session.calls
    assert file_parts(call.kwargs["files"]) == [("input_reference", frame, "image/png")]


def test_veo_image_url_that_now_resolves_privately_is_refused_before_any_download_or_create() -> None:
    # Given a request accepted while the image host resolved publicly, whose name now points inside our network
    accepted = request(model="veo3-fast", images=[{"url": FIRST_URL}])
    downloads: list[str] = []
    provider, session = videos_provider(lambda host: ["169.254.169.254"], downloads, b"")
    # When it is submitted, Then the URL is refused where we would fetch it: nothing fetched, nothing created
    with pytest.raises(InvalidRequestError, match="non-public address") as refused:
        provider.submit(accepted, JOB_ID)
    assert refused.value.param == "images[0].url"
    assert downloads == []
    assert session.calls == []


def test_veo_create_parts_encode_as_real_multipart_form_data() -> None:
    # Given the parts a Veo first-and-last-frame create hands to requests
    first, last = png(64, 36, (200, 30, 30)), png(64, 36, (30, 30, 200))
    provider, session, _ = build("veo3-fast", json_response(200, VEO_CREATED))
    provider.submit(request(model="veo3-fast", images=[first, last]), JOB_ID)
    parts = session.calls[0].kwargs["files"]
    # When requests prepares them (as it would on the wire)
    prepared = requests.Request("POST", f"{BASE_URL}/v1/videos", files=parts).prepare()
    # Then the body is multipart/form-data with plain fields and two file parts
    assert prepared.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = cast(bytes, prepared.body)
    assert b'name="model"\r\n\r\nveo3-fast\r\n' in body
    assert b'name="size"\r\n\r\n16x9\r\n' in body
    assert body.count(b'name="input_reference"; filename=') == 2
    assert body.index(first) < body.index(last)
    assert b'name="seconds"' not in body


def test_veo_text_create_is_still_multipart() -> None:
    # Given a Veo text-to-video request in portrait
    provider, session, _ = build("veo3-fast", json_response(200, VEO_CREATED))
    # When it is submitted
    provider.submit(request(model="veo3-fast", size="720x1280"), JOB_ID)
    # Then every field went through files= (real multipart even without an image), with no seconds
    call = session.calls[0]
    assert call.kwargs.get("data") is None
    assert text_fields(call.kwargs["files"]) == {
        "model": "veo3-fast",
        "prompt": "A red fox runs through fresh snow at dawn",
        "size": "9x16",
    }
    assert file_parts(call.kwargs["files"]) == []


def test_sora_create_sends_exact_size_and_seconds_as_string() -> None:
    # Given a Sora 2 image-to-video request at 1280x720 with the default duration
    image = png(1280, 720, (10, 120, 10))
    provider, session, _ = build("sora-2", json_response(200, SORA_CREATED))
    # When it is submitted
    task = provider.submit(request(model="sora-2", images=[image]), JOB_ID)
    # Then the multipart fields carry the WxH size and seconds "4", and one input_reference file
    parts = session.calls[0].kwargs["files"]
    assert text_fields(parts) == {
        "model": "sora-2",
        "prompt": "A red fox runs through fresh snow at dawn",
        "size": "1280x720",
        "seconds": "4",
    }
    assert file_parts(parts) == [("input_reference", image, "image/png")]
    assert task.task_id == "video_69b2"


def test_every_call_carries_the_bearer_key_and_the_http_repr_hides_it() -> None:
    # Given an adapter built on a key
    provider, session, _ = build("sora-2", json_response(200, SORA_CREATED))
    # When it submits
    provider.submit(request(model="sora-2"), JOB_ID)
    # Then the key left only in the Authorization header
    headers = session.calls[0].headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Accept"] == "application/json"
    assert KEY not in repr(provider.http)
    assert KEY not in str(provider.http)


def test_videos_poll_of_completed_task_without_url_points_at_content_endpoint_with_auth() -> None:
    # Given a completed /v1/videos task whose answer has no video_url
    provider, session, _ = build(
        "sora-2", json_response(200, {"id": "video_69b2", "status": "completed", "progress": 100})
    )
    task = ProviderTask(task_id="video_69b2", model="sora-2", dialect=Dialect.VIDEOS, submitted_at=SUBMITTED_AT)
    # When it is polled
    state = provider.poll(task)
    # Then the output is the /content endpoint, fetched with the key
    assert (session.calls[0].method, session.calls[0].url) == ("GET", f"{BASE_URL}/v1/videos/video_69b2")
    assert state.status is TaskStatus.SUCCEEDED
    assert state.output_url == f"{BASE_URL}/v1/videos/video_69b2/content"
    assert state.output_needs_auth is True
    assert provider.download_headers(state.output_needs_auth) == {"Authorization": f"Bearer {KEY}"}


def test_videos_poll_with_video_url_downloads_without_the_key() -> None:
    # Given a completed task with the provider's own URL
    url = "https://cdn.example.test/video_69b2.mp4"
    provider, _, _ = build("sora-2", json_response(200, {"id": "video_69b2", "status": "completed", "video_url": url}))
    task = ProviderTask(task_id="video_69b2", model="sora-2", dialect=Dialect.VIDEOS, submitted_at=SUBMITTED_AT)
    # When it is polled
    state = provider.poll(task)
    # Then the key is never sent to that URL
    assert state.output_url == url
    assert provider.download_headers(state.output_needs_auth) == {}


# --- Kling: JSON create, external_task_id, reconcile ----------------------------------------------------


def test_kling_text_create_posts_json_to_text2video() -> None:
    # Given a Kling text-to-video request with defaults
    provider, session, _ = build("kling-v1-6", json_response(200, KLING_CREATED))
    # When it is submitted
    task = provider.submit(request(model="kling-v1-6"), JOB_ID)
    # Then it is JSON to text2video with model_name, duration as a string and our job id as external_task_id
    call = session.calls[0]
    assert (call.method, call.url) == ("POST", f"{BASE_URL}/kling/v1/videos/text2video")
    assert call.kwargs.get("files") is None
    assert call.kwargs["json"] == {
        "model_name": "kling-v1-6",
        "prompt": "A red fox runs through fresh snow at dawn",
        "duration": "5",
        "aspect_ratio": "16:9",
        "mode": "std",
        "external_task_id": JOB_ID,
    }
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    # And the task lives under the text2video route
    assert (task.task_id, task.route, task.dialect) == ("2032273942220931072", "text2video", Dialect.KLING)


def test_kling_create_passes_chosen_duration_ratio_and_mode() -> None:
    # Given a 10-second portrait pro request
    provider, session, _ = build("kling-v1-6", json_response(200, KLING_CREATED))
    # When it is submitted
    provider.submit(request(model="kling-v1-6", seconds=10, size="720x1280", mode="pro"), JOB_ID)
    # Then duration is the string "10", aspect_ratio 9:16, mode pro
    body = session.calls[0].kwargs["json"]
    assert (body["duration"], body["aspect_ratio"], body["mode"]) == ("10", "9:16", "pro")
    assert isinstance(body["duration"], str)


def test_kling_image_create_sends_plain_base64_and_url_tail() -> None:
    # Given a Kling first-and-last-frame request: first frame as a data URI, last frame as a URL
    first = png(320, 320, (200, 30, 30))
    provider, session, _ = build("kling-v1-6", json_response(200, KLING_CREATED))
    # When it is submitted
    task = provider.submit(request(model="kling-v1-6", images=[data_uri(first), LAST_URL]), JOB_ID)
    # Then it goes to image2video with the image as plain base64 (no data: prefix) and the tail as the URL
    call = session.calls[0]
    assert call.url == f"{BASE_URL}/kling/v1/videos/image2video"
    body = call.kwargs["json"]
    assert body["image"] == base64.b64encode(first).decode("ascii")
    assert not body["image"].startswith("data:")
    assert body["image_tail"] == LAST_URL
    assert body["external_task_id"] == JOB_ID
    assert task.route == "image2video"


def test_kling_image_create_sends_url_image_as_is() -> None:
    # Given a Kling image-to-video request with one image URL
    provider, session, _ = build("kling-v1-6", json_response(200, KLING_CREATED))
    # When it is submitted
    provider.submit(request(model="kling-v1-6", images=[FIRST_URL]), JOB_ID)
    # Then the image is the URL and there is no tail
    body = session.calls[0].kwargs["json"]
    assert body["image"] == FIRST_URL
    assert "image_tail" not in body


def test_kling_poll_queries_the_task_route() -> None:
    # Given a Kling image2video task
    answer = {
        "code": 0,
        "message": "success",
        "data": {
            "task_id": "2032273942220931072",
            "task_status": "succeed",
            "task_result": {"videos": [{"id": "v1", "url": "https://cdn.example.test/k.mp4", "duration": "5.1"}]},
        },
    }
    provider, session, _ = build("kling-v1-6", json_response(200, answer))
    task = ProviderTask(
        task_id="2032273942220931072",
        model="kling-v1-6",
        dialect=Dialect.KLING,
        route="image2video",
        submitted_at=SUBMITTED_AT,
    )
    # When it is polled
    state = provider.poll(task)
    # Then the query went to image2video/{task_id} and the video URL came back
    assert (session.calls[0].method, session.calls[0].url) == (
        "GET",
        f"{BASE_URL}/kling/v1/videos/image2video/2032273942220931072",
    )
    assert state.status is TaskStatus.SUCCEEDED
    assert state.output_url == "https://cdn.example.test/k.mp4"


@pytest.mark.parametrize(
    ("images", "route"),
    [pytest.param([], "text2video", id="text"), pytest.param([FIRST_URL], "image2video", id="image")],
)
def test_kling_reconcile_finds_the_task_by_external_task_id(images: list[str], route: str) -> None:
    # Given a create whose answer was lost, and Kling knowing the task by our job id
    found = {
        "code": 0,
        "message": "success",
        "data": {
            "task_id": "2032273942220931072",
            "task_status": "processing",
            "task_info": {"external_task_id": JOB_ID},
        },
    }
    provider, session, _ = build("kling-v1-6", json_response(200, found))
    # When it is reconciled
    task = provider.reconcile(JOB_ID, request(model="kling-v1-6", images=images))
    # Then the query used the job id in place of the task id and the provider's task comes back
    assert (session.calls[0].method, session.calls[0].url) == ("GET", f"{BASE_URL}/kling/v1/videos/{route}/{JOB_ID}")
    assert task is not None
    assert (task.task_id, task.model, task.dialect, task.route) == (
        "2032273942220931072",
        "kling-v1-6",
        Dialect.KLING,
        route,
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"code": 1201, "message": "task not found"}, id="kling-envelope"),
        pytest.param({"code": "task_not_exist", "message": "task_not_exist"}, id="task-not-exist"),
    ],
)
def test_kling_reconcile_answers_none_on_404(body: dict[str, Any]) -> None:
    # Given Kling has no task for our job id
    provider, session, _ = build("kling-v1-6", json_response(404, body))
    # When it is reconciled
    task = provider.reconcile(JOB_ID, request(model="kling-v1-6"))
    # Then there is none (the create was never accepted), after one query
    assert task is None
    assert len(session.calls) == 1


def test_kling_supports_reconcile_and_the_others_do_not() -> None:
    # Given the three adapters
    kling, _, _ = build("kling-v1-6")
    veo, _, _ = build("veo3-fast")
    runway, _, _ = build("gen3a_turbo")
    # When asked whether a lost create can be reconciled
    # Then only Kling can (it carries our external_task_id)
    assert isinstance(kling, KlingProvider)
    assert (kling.supports_reconcile, veo.supports_reconcile, runway.supports_reconcile) == (True, False, False)
    assert veo.reconcile(JOB_ID, request(model="veo3-fast")) is None


@pytest.mark.parametrize(
    ("when", "body", "error"),
    [
        pytest.param("submit", {"code": 1301, "message": "content blocked"}, ContentFilteredError, id="submit-1301"),
        pytest.param("submit", {"code": 1201, "message": "invalid model name"}, InvalidRequestError, id="submit-1201"),
        pytest.param("poll", {"code": 1201, "message": "invalid task id"}, InvalidRequestError, id="poll-1201"),
        pytest.param("poll", {"code": 5000, "message": "internal error"}, ProviderUnavailableError, id="poll-5000"),
    ],
)
def test_kling_error_answered_with_http_200_is_raised(when: str, body: dict[str, Any], error: type[Exception]) -> None:
    # Given Kling answering HTTP 200 with a non-zero envelope code
    provider, session, _ = build("kling-v1-6", json_response(200, body))
    task = ProviderTask(
        task_id="2032273942220931072", model="kling-v1-6", dialect=Dialect.KLING, submitted_at=SUBMITTED_AT
    )

    def act() -> object:
        if when == "submit":
            return provider.submit(request(model="kling-v1-6"), JOB_ID)
        return provider.poll(task)

    # When the adapter submits or polls
    # Then the envelope code decides the error; HTTP 200 is never taken for success
    with pytest.raises(error):
        act()
    assert len(session.calls) == 1


# --- Runway: version header, data URI, numeric duration -------------------------------------------------


def test_runway_create_sends_version_header_data_uri_numeric_duration_and_ratio() -> None:
    # Given a Runway request with the image as bytes
    image = png(64, 38, (200, 30, 30))
    provider, session, _ = build("gen3a_turbo", json_response(200, RUNWAY_CREATED))
    # When it is submitted
    task = provider.submit(request(model="gen3a_turbo", images=[image]), JOB_ID)
    # Then it is JSON to image_to_video with the version header, a data URI, a numeric duration and 1280:768
    call = session.calls[0]
    assert (call.method, call.url) == ("POST", f"{BASE_URL}/runwayml/v1/image_to_video")
    assert call.headers["X-Runway-Version"] == "2024-11-06"
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert call.kwargs["json"] == {
        "model": "gen3a_turbo",
        "promptImage": data_uri(image),
        "promptText": "A red fox runs through fresh snow at dawn",
        "duration": 5,
        "ratio": "1280:768",
    }
    assert type(call.kwargs["json"]["duration"]) is int
    assert task.task_id == "d0658ae1-bbdd-4adc-aaba-fd8070e14d79"


def test_runway_create_sends_image_url_and_maps_tutorial_ratio() -> None:
    # Given a Runway request with an image URL, 10 seconds, the tutorial's 1280:720 and a seed
    provider, session, _ = build("gen3a_turbo", json_response(200, RUNWAY_CREATED))
    # When it is submitted
    provider.submit(request(model="gen3a_turbo", images=[FIRST_URL], seconds=10, size="1280:720", seed=42), JOB_ID)
    # Then promptImage is the URL, duration the number 10, the ratio Runway's 1280:768
    body = session.calls[0].kwargs["json"]
    assert body["promptImage"] == FIRST_URL
    assert (body["duration"], body["ratio"], body["seed"]) == (10, "1280:768", 42)


def test_runway_poll_and_cancel_send_the_version_header() -> None:
    # Given a Runway task
    succeeded = {"id": "d0658ae1", "status": "SUCCEEDED", "output": ["https://cdn.example.test/r.mp4"]}
    provider, session, _ = build("gen3a_turbo", json_response(200, succeeded), json_response(200, {}))
    task = ProviderTask(task_id="d0658ae1", model="gen3a_turbo", dialect=Dialect.RUNWAY, submitted_at=SUBMITTED_AT)
    # When it is polled, then cancelled
    state = provider.poll(task)
    cancelled = provider.cancel(task)
    # Then both calls carried X-Runway-Version on the task's path
    poll_call, cancel_call = session.calls
    assert (poll_call.method, poll_call.url) == ("GET", f"{BASE_URL}/runwayml/v1/tasks/d0658ae1")
    assert (cancel_call.method, cancel_call.url) == ("DELETE", f"{BASE_URL}/runwayml/v1/tasks/d0658ae1")
    assert poll_call.headers["X-Runway-Version"] == "2024-11-06"
    assert cancel_call.headers["X-Runway-Version"] == "2024-11-06"
    assert state.output_url == "https://cdn.example.test/r.mp4"
    assert cancelled is True


def test_runway_cancel_answered_204_no_content_succeeds() -> None:
    # Given Runway's DELETE /v1/tasks/{id}, which answers 204 with no body (its SDK's delete() returns None)
    provider, session, _ = build("gen3a_turbo", empty_response(204))
    task = ProviderTask(task_id="d0658ae1", model="gen3a_turbo", dialect=Dialect.RUNWAY, submitted_at=SUBMITTED_AT)
    # When the task is cancelled
    cancelled = provider.cancel(task)
    # Then the cancel counts as done
    assert cancelled is True
    assert len(session.calls) == 1


@pytest.mark.parametrize("status", [404, 405])
def test_runway_cancel_not_offered_answers_false(status: int) -> None:
    # Given CometAPI not offering the DELETE
    provider, session, _ = build("gen3a_turbo", json_response(status, {"error": {"message": "not found"}}))
    task = ProviderTask(task_id="d0658ae1", model="gen3a_turbo", dialect=Dialect.RUNWAY, submitted_at=SUBMITTED_AT)
    # When the task is cancelled
    # Then the adapter says it could not, after one call
    assert provider.cancel(task) is False
    assert len(session.calls) == 1


# --- task_not_exist grace ---------------------------------------------------------------------------------

MODELS = [
    pytest.param("veo3-fast", Dialect.VIDEOS, id="videos"),
    pytest.param("kling-v1-6", Dialect.KLING, id="kling"),
    pytest.param("gen3a_turbo", Dialect.RUNWAY, id="runway"),
]
NOT_EXIST_ANSWERS = [
    pytest.param(
        404,
        {"error": {"message": "task_not_exist", "type": "comet_api_error", "param": "", "code": "task_not_exist"}},
        id="http-404",
    ),
    pytest.param(200, {"code": "task_not_exist"}, id="http-200-code"),
]


def not_found_task(provider: VideoProvider, model_id: str, dialect: Dialect, age: float) -> ProviderTask:
    provider.clock = lambda: SUBMITTED_AT + age
    return ProviderTask(
        task_id="task_new", model=model_id, dialect=dialect, route="text2video", submitted_at=SUBMITTED_AT
    )


@pytest.mark.parametrize(("model_id", "dialect"), MODELS)
@pytest.mark.parametrize(("status", "body"), NOT_EXIST_ANSWERS)
@pytest.mark.parametrize("age", [0.0, 5.0, 59.0])
def test_task_not_exist_inside_grace_is_still_queued(
    model_id: str, dialect: Dialect, status: int, body: dict[str, Any], age: float
) -> None:
    # Given a task created moments ago that the provider does not know yet
    provider, session, _ = build(model_id, json_response(status, body))
    grace = provider.spec(model_id).polling.not_found_grace_seconds
    assert age < grace
    task = not_found_task(provider, model_id, dialect, age)
    # When it is polled inside the grace period
    state = provider.poll(task)
    # Then it counts as still initialising, not as an error
    assert state.status is TaskStatus.QUEUED
    assert state.not_found_yet is True
    assert state.provider_status == "task_not_exist"
    assert len(session.calls) == 1


@pytest.mark.parametrize(("model_id", "dialect"), MODELS)
@pytest.mark.parametrize(("status", "body"), NOT_EXIST_ANSWERS)
def test_task_not_exist_after_grace_is_an_error(
    model_id: str, dialect: Dialect, status: int, body: dict[str, Any]
) -> None:
    # Given a task the provider still does not know after the grace period
    provider, _, _ = build(model_id, json_response(status, body))
    grace = provider.spec(model_id).polling.not_found_grace_seconds
    task = not_found_task(provider, model_id, dialect, grace + 1.0)
    # When it is polled
    # Then the task is reported lost upstream
    with pytest.raises(ProviderError, match="does not exist") as raised:
        provider.poll(task)
    assert type(raised.value) is ProviderError
    assert raised.value.retryable is False


@pytest.mark.parametrize(
    ("model_id", "dialect"),
    [pytest.param("veo3-fast", Dialect.VIDEOS, id="videos"), pytest.param("gen3a_turbo", Dialect.RUNWAY, id="runway")],
)
def test_poll_404_without_task_not_exist_is_an_error_at_once(model_id: str, dialect: Dialect) -> None:
    # Given a poll answered 404 that does not say task_not_exist
    provider, session, _ = build(model_id, json_response(404, {"error": {"message": "Not Found", "code": ""}}))
    task = not_found_task(provider, model_id, dialect, 1.0)
    # When it is polled, even inside the grace period
    # Then it is an error, not a grace wait
    with pytest.raises(ProviderError, match="HTTP 404"):
        provider.poll(task)
    assert len(session.calls) == 1
