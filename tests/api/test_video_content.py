"""Over HTTP, what a finished video gives its owner: the content redirect, the bytes, the extension fields,
and a DELETE that leaves nothing of the job behind; and an image given by URL, passed on to the provider."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openai
import pytest
import requests

from functions.common.settings import ApiSettings
from functions.providers.catalog import load_catalog
from local.resources import REGION
from tests.api.conftest import OWNER_A, ApiStack, finished, wait_for
from tests.fixtures.images import png_bytes

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

POLL_MS = 200
CONTENT_TTL_SECONDS = ApiSettings.model_fields["content_url_ttl_seconds"].default
"""The local stack does not set CONTENT_URL_TTL_SECONDS: the default applies."""

PUBLIC_IMAGE_URL = "https://93.184.216.34/frame.png"
"""A public address as an IP literal: the URL check needs no DNS. Nothing may ever connect to it (see below)."""


def completed(client: openai.OpenAI, model: str = "veo3-fast", prompt: str = "A kite over a wheat field") -> Any:
    video = client.videos.create_and_poll(model=model, prompt=prompt, poll_interval_ms=POLL_MS)
    assert video.status == "completed", video.error
    return video


def task_id_of(api: ApiStack, video_id: str) -> str:
    task = api.stack.jobs.require(video_id).attempts[0].task
    assert task is not None
    return str(task["task_id"])


def content(api: ApiStack, video_id: str, owner: str = OWNER_A) -> requests.Response:
    """GET /v1/videos/{id}/content as a plain HTTP client that does not follow the redirect."""
    return requests.get(
        f"{api.server.base_url}/videos/{video_id}/content",
        headers=api.auth(owner),
        allow_redirects=False,
        timeout=30,
    )


def assert_openai_error(answer: requests.Response, status: int, code: str, param: str | None) -> str:
    """OpenAI's error envelope, with exactly its four fields; returns the message."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert error["message"]
    return str(error["message"])


def test_content_of_a_completed_video_redirects_to_a_presigned_link_to_its_s3_key(
    api: ApiStack, client_a: openai.OpenAI
) -> None:
    # Given a completed video
    video = completed(client_a)
    record = api.stack.jobs.require(video.id)
    # When its content is asked for without following redirects
    answer = content(api, video.id)
    # Then the answer is a 302 to a presigned GET of the job's object in the stack's S3 (moto here)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert location.netloc == urlsplit(api.stack.endpoint_url).netloc
    assert location.path == f"/{api.stack.resources.bucket}/videos/{video.id}.mp4"
    assert (record.s3_bucket, record.s3_key) == (api.stack.resources.bucket, f"videos/{video.id}.mp4")
    # signed with SigV4 (not the SigV2 botocore still presigns with in us-east-1, which an SSE-KMS bucket
    # refuses), for the content TTL
    query = parse_qs(location.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].endswith(f"/{REGION}/s3/aws4_request")
    assert query["X-Amz-Expires"] == [str(CONTENT_TTL_SECONDS)]
    assert query["X-Amz-Signature"]
    # And the link (with no API key) serves the stored MP4
    downloaded = requests.get(answer.headers["Location"], timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == api.s3_object(f"s3://{record.s3_bucket}/{record.s3_key}")


def test_content_before_completion_is_409_video_not_ready(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a job that stays queued at the provider
    video = client_a.videos.create(model="veo3-fast", prompt="[sim:stuck] not yet")
    # When its content is asked for
    answer = content(api, video.id)
    # Then it is a 409 in OpenAI's envelope, saying the video is not ready yet
    message = assert_openai_error(answer, 409, "video_not_ready", "id")
    assert video.id in message
    assert "once it has completed" in message


def test_content_of_a_failed_video_is_409_video_not_ready(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a job the provider's content filter failed
    created = client_a.videos.create(model="veo3-fast", prompt="[sim:filter] filtered")
    video = wait_for(lambda: finished(client_a, created.id), what="the job to fail")
    assert video.status == "failed"
    # When its content is asked for
    answer = content(api, video.id)
    # Then it is a 409 in OpenAI's envelope that says the video failed
    message = assert_openai_error(answer, 409, "video_not_ready", "id")
    assert "failed" in message


def test_download_content_is_the_bytes_the_simulator_served(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a completed video
    video = completed(client_a)
    # When the SDK downloads its content (following the redirect)
    data = client_a.videos.download_content(video.id).read()
    # Then the bytes are exactly those the simulator served for the job's task
    served = requests.get(f"{api.stack.provider_base_url}/_sim/tasks/{task_id_of(api, video.id)}/video", timeout=30)
    assert served.status_code == 200
    assert data == served.content
    assert data[4:8] == b"ftyp"


def test_completed_video_reports_its_extension_fields(api: ApiStack, client_a: openai.OpenAI) -> None:
    # Given a completed veo3-fast video (8 s by default)
    video = completed(client_a)
    spec = load_catalog().models["veo3-fast"]
    # When it is retrieved
    before = time.time()
    retrieved = client_a.videos.retrieve(video.id)
    after = time.time()
    extra = retrieved.model_extra or {}
    # Then its download link's expiry is the content TTL from now
    assert retrieved.expires_at is not None
    assert int(before) + CONTENT_TTL_SECONDS <= retrieved.expires_at <= int(after) + CONTENT_TTL_SECONDS
    # And the cost is the catalog's price for the seconds made, as recorded on the job
    expected_cost = spec.estimate_cost_usd(spec.seconds.default)
    assert expected_cost > 0
    assert extra["cost_usd"] == pytest.approx(expected_cost)
    assert api.stack.jobs.require(video.id).cost_usd == pytest.approx(expected_cost)
    # And the attempts name the one model that made it, through CometAPI's /v1/videos dialect
    assert extra["attempts"] == ["veo3-fast"]
    assert extra["provider"] == "cometapi/videos"


def test_delete_of_a_finished_image_job_removes_its_input_video_and_manifest(
    api: ApiStack, client_a: openai.OpenAI
) -> None:
    # Given a completed image-to-video job: its uploaded image under inputs/, its MP4 and its manifest in S3
    video = client_a.videos.create_and_poll(
        model="sora-2",
        prompt="The red square slowly turns into a sunset",
        input_reference=("ref.png", png_bytes(1280, 720), "image/png"),
        seconds="4",
        size="1280x720",
        poll_interval_ms=POLL_MS,
    )
    assert video.status == "completed", video.error
    record = api.stack.jobs.require(video.id)
    bucket = api.stack.resources.bucket
    [image] = record.request["images"]
    keys = {
        "input": str(image["s3_key"]),
        "video": str(record.s3_key),
        "manifest": str(record.manifest_key),
    }
    assert keys["input"].startswith("inputs/")
    assert keys["manifest"] == f"videos/{video.id}.json"
    assert all(api.s3_object(f"s3://{bucket}/{key}") is not None for key in keys.values())
    # When it is deleted
    client_a.videos.delete(video.id)
    # Then none of its objects is left
    assert {name: api.s3_object(f"s3://{bucket}/{key}") for name, key in keys.items()} == dict.fromkeys(keys)


@pytest.fixture
def no_traffic_off_the_machine(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every thread of this process (the API server, the workflow Lambdas) may connect to loopback only: any
    other connection attempt is refused and recorded."""
    refused: list[Any] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def off_machine(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        return not ipaddress.ip_address(address[0]).is_loopback

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if off_machine(sock, address):
            refused.append(address)
            raise ConnectionRefusedError(f"test: no connection off the machine ({address!r})")
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        if off_machine(sock, address):
            refused.append(address)
            return 111  # ECONNREFUSED
        return connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    return refused


def test_image_url_reference_is_passed_to_the_provider(
    api: ApiStack, client_a: openai.OpenAI, no_traffic_off_the_machine: list[Any]
) -> None:
    # Given a create whose input_reference is a public https image URL, for Kling, whose adapter passes image
    # URLs on (the /v1/videos adapter downloads them; Runway, like its simulator, refuses IP-literal URLs)
    body = {
        "model": "kling-v1-6",
        "prompt": "The frame comes alive",
        "input_reference": {"image_url": PUBLIC_IMAGE_URL},
    }
    # When it is posted
    answer = requests.post(f"{api.server.base_url}/videos", json=body, headers=api.auth(OWNER_A), timeout=30)
    # Then the job is accepted, with the URL (not bytes, not an upload) as its image
    assert answer.status_code == 200, answer.text
    video_id = answer.json()["id"]
    assert answer.json()["status"] == "queued"
    assert api.stack.jobs.require(video_id).request["images"] == [{"url": PUBLIC_IMAGE_URL}]
    # And it completes, the provider having received the URL itself in its create
    video = wait_for(lambda: finished(client_a, video_id), what="the job to end")
    assert video.status == "completed", video.error
    assert (video.model_extra or {})["provider"] == "cometapi/kling"
    task = requests.get(f"{api.stack.provider_base_url}/_sim/tasks/{task_id_of(api, video_id)}", timeout=30).json()
    assert task["create"]["image"] == PUBLIC_IMAGE_URL
    # And nothing of ours tried to fetch the image: no connection left the machine
    assert no_traffic_off_the_machine == []
