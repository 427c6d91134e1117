"""The /v1/videos dialect (Veo 3 Fast, Sora 2): create, poll, content, validation."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests

from local.simulator import CometApiSimulator
from tests.fixtures.images import gif_bytes, png_bytes

from .conftest import Api, FakeClock, probe, top_level_boxes


def test_veo_create_poll_and_download(sim: CometApiSimulator, api: Api) -> None:
    # Given a Veo create
    created = api.videos_create(model="veo3-fast", size="16x9")

    # Then it answers like CometAPI's reference, with a resolved model id and both ids
    assert created.status_code == 200
    body = created.json()
    assert body["id"].startswith("task_")
    assert body["task_id"] == body["id"]
    assert body["model"] == "veo_3_1-4K"
    assert (body["status"], body["progress"], body["seconds"], body["size"]) == ("queued", 0, "", "16x9")
    assert isinstance(body["created_at"], int)

    # When it is polled (time_scale 0: done at once)
    polled = api.videos_get(body["id"]).json()

    # Then it is completed with an absolute URL on the simulator that serves an 8 s playable MP4
    assert polled["status"] == "completed"
    assert polled["progress"] == 100
    assert polled["completed_at"] >= body["created_at"]
    assert polled["video_url"].startswith(sim.base_url + "/media/")
    video = requests.get(polled["video_url"], timeout=5)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert top_level_boxes(video.content).index("moov") < top_level_boxes(video.content).index("mdat")
    facts = probe(video.content)
    assert facts.codec == "h264"
    assert facts.seconds == pytest.approx(8, abs=0.5)
    assert facts.width > facts.height
    assert hashlib.sha256(video.content).digest() == hashlib.sha256(sim.video_bytes_for(body["id"])).digest()


def test_sora_create_names_seconds_and_size(api: Api) -> None:
    created = api.videos_create(model="sora-2", seconds="4", size="720x1280").json()

    assert created["id"].startswith("video_")
    assert "task_id" not in created
    assert (created["model"], created["seconds"], created["size"]) == ("sora-2", "4", "720x1280")
    polled = api.videos_get(created["id"]).json()
    facts = probe(requests.get(polled["video_url"], timeout=5).content)
    assert facts.seconds == pytest.approx(4, abs=0.5)
    assert facts.height > facts.width


def test_status_advances_with_the_clock(timed_sim: CometApiSimulator, timed_api: Api, clock: FakeClock) -> None:
    # Given sora-2 (typical render 180 s in the catalog) at time_scale 1
    video_id = timed_api.videos_create(model="sora-2").json()["id"]
    seen = []
    for _ in range(20):
        body = timed_api.videos_get(video_id).json()
        seen.append((body["status"], body["progress"]))
        clock.advance(10)

    # Then it is queued first, then in progress in steps of 10, then completed
    statuses = [status for status, _ in seen]
    assert statuses[0] == "queued"
    assert "in_progress" in statuses
    assert statuses[-1] == "completed"
    assert statuses.index("completed") == 18
    assert all(progress % 10 == 0 for _, progress in seen)
    progresses = [p for s, p in seen if s == "in_progress"]
    assert progresses == sorted(progresses)
    assert progresses[0] > 0
    assert progresses[-1] <= 90


def test_tutorial_shape_says_succeeded_with_output(sim: CometApiSimulator, api: Api) -> None:
    sim.set_shape("tutorial")
    video_id = api.videos_create().json()["id"]

    body = api.videos_get(video_id).json()

    assert body["status"] == "succeeded"
    assert body["output"][0].startswith(sim.base_url)
    assert "video_url" not in body


@pytest.mark.parametrize(
    ("marker", "shape", "error"),
    [
        ("fail=the render crashed", "reference", {"code": "generation_failed", "message": "the render crashed"}),
        ("fail=the render crashed", "tutorial", "the render crashed"),
        ("filter", "reference", None),
    ],
)
def test_failures_carry_error_object_string_or_nothing(
    sim: CometApiSimulator, api: Api, marker: str, shape: str, error: object
) -> None:
    sim.set_shape(shape)
    video_id = api.videos_create(prompt=f"a storm [sim:{marker}]").json()["id"]

    body = api.videos_get(video_id).json()

    assert body["status"] == "failed"
    assert body.get("error") == error
    assert "video_url" not in body
    assert "output" not in body


def test_content_before_completion_is_invalid_request(timed_api: Api, clock: FakeClock) -> None:
    video_id = timed_api.videos_create().json()["id"]

    early = timed_api.session.get(timed_api.url(f"/v1/videos/{video_id}/content"), timeout=5)
    clock.advance(1000)
    late = timed_api.session.get(timed_api.url(f"/v1/videos/{video_id}/content"), timeout=5)

    assert early.status_code == 400
    assert early.json()["error"]["type"] == "invalid_request_error"
    assert late.status_code == 200
    assert late.content[4:8] == b"ftyp"


def test_content_needs_the_key_and_serves_the_same_bytes(sim: CometApiSimulator, api: Api) -> None:
    video_id = api.videos_create(prompt="a lighthouse [sim:no-url]").json()["id"]
    polled = api.videos_get(video_id).json()
    assert polled["status"] == "completed"
    assert "video_url" not in polled

    anonymous = requests.get(api.url(f"/v1/videos/{video_id}/content"), timeout=5)
    content = api.session.get(api.url(f"/v1/videos/{video_id}/content"), timeout=5)
    thumbnail = api.session.get(api.url(f"/v1/videos/{video_id}/content?variant=thumbnail"), timeout=5)

    assert anonymous.status_code == 401
    assert content.status_code == 200
    assert content.content == sim.video_bytes_for(video_id)
    assert thumbnail.headers["Content-Type"] == "image/png"
    assert thumbnail.content.startswith(b"\x89PNG")


def test_a_json_body_is_refused_and_recorded(sim: CometApiSimulator, api: Api) -> None:
    # When a client sends JSON (or a urlencoded form) instead of multipart
    as_json = api.session.post(api.url("/v1/videos"), json={"prompt": "x", "model": "sora-2"}, timeout=5)
    as_form = api.session.post(api.url("/v1/videos"), data={"prompt": "x", "model": "sora-2"}, timeout=5)

    # Then CometAPI's envelope answers 400 and the calls are on record as create attempts
    for reply in (as_json, as_form):
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert error["type"] == "comet_api_error"
        assert set(error) == {"message", "type", "param", "code"}
    creates = sim.creates("videos")
    assert [c.status for c in creates] == [400, 400]
    assert creates[0].json == {"prompt": "x", "model": "sora-2"}
    assert creates[1].form == {"prompt": ["x"], "model": ["sora-2"]}


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        ("sora-2", {"prompt": ""}, "prompt"),
        ("sora-3", {}, "model"),
        ("sora-2", {"seconds": "5"}, "seconds"),
        ("sora-2", {"seconds": "16"}, "seconds"),
        ("sora-2", {"size": "720p"}, "size"),
        ("sora-2", {"size": "16:9"}, "size"),
        ("sora-2", {"size": "1792x1024"}, "size"),
        ("veo3-fast", {"size": "1280x720"}, "size"),
    ],
)
def test_field_validation(api: Api, model: str, fields: dict[str, Any], param: str) -> None:
    prompt = fields.pop("prompt", "a kite")

    reply = api.videos_create(prompt=prompt, model=model, **fields)

    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


def test_sora_pro_takes_the_large_sizes(api: Api) -> None:
    assert api.videos_create(model="sora-2-pro", size="1792x1024", seconds="12").status_code == 200


@pytest.mark.parametrize(
    ("model", "size", "images", "ok"),
    [
        ("veo3-fast", "16x9", [png_bytes(64, 64), png_bytes(32, 32)], True),
        ("veo3-fast", "16x9", [png_bytes()] * 3, False),
        ("sora-2", "720x1280", [png_bytes(720, 1280)], True),
        ("sora-2", "720x1280", [png_bytes(720, 1280)] * 2, False),
        ("sora-2", "720x1280", [png_bytes(64, 64)], False),
        ("veo3-fast", "16x9", [gif_bytes()], False),
    ],
)
def test_input_reference_rules(api: Api, model: str, size: str, images: list[bytes], ok: bool) -> None:
    kind = "image/gif" if images[0].startswith(b"GIF") else "image/png"
    files = [("input_reference", (f"frame{i}.png", data, kind)) for i, data in enumerate(images)]

    reply = api.videos_create(model=model, size=size, files=files)

    assert reply.status_code == (200 if ok else 400)
    if not ok:
        assert reply.json()["error"]["param"] == "input_reference"


def test_received_keeps_multipart_fields_and_files(sim: CometApiSimulator, api: Api) -> None:
    image = png_bytes(64, 64)
    api.videos_create(model="veo3-fast", files=[("input_reference", ("first.png", image, "image/png"))])

    create = sim.creates()[0]

    assert create.form["model"] == ["veo3-fast"]
    assert create.files == [("input_reference", "first.png", "image/png", image)]
    assert create.headers["authorization"] == "Bearer sk-sim"
    assert create.task_id is not None
    assert create.status == 200


def test_unknown_video_is_task_not_exist(api: Api) -> None:
    reply = api.videos_get("video_missing")

    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "task_not_exist"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "sk-sim"])
def test_bad_auth_is_401_in_cometapi_envelope(sim: CometApiSimulator, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    reply = requests.post(sim.base_url + "/v1/videos", files={"prompt": (None, "x")}, headers=headers, timeout=5)

    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "comet_api_error"
    assert sim.received[-1].status == 401
