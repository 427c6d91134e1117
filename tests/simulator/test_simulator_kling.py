"""The Kling dialect: JSON create, task query (also by external_task_id), validation codes."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local.simulator import CometApiSimulator
from tests.fixtures.images import jpeg_bytes, png_bytes

from .conftest import HTTPS_IMAGE, Api, FakeClock, b64, kling_body, probe


def test_text2video_create_query_and_download(sim: CometApiSimulator, api: Api) -> None:
    created = api.kling_create(kling_body(duration="10"))

    assert created.status_code == 200
    body = created.json()
    assert (body["code"], body["message"]) == (0, "success")
    data = body["data"]
    assert data["task_id"].isdigit()
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {}
    assert isinstance(data["created_at"], int)
    assert data["created_at"] > 10**12

    queried = api.kling_get(data["task_id"]).json()["data"]

    assert queried["task_status"] == "succeed"
    video = queried["task_result"]["videos"][0]
    assert video["duration"] == "10"
    assert video["id"]
    download = requests.get(video["url"], timeout=5)
    assert download.content == sim.video_bytes_for(data["task_id"])
    assert probe(download.content).seconds == pytest.approx(10, abs=0.5)


def test_status_words_and_no_progress(timed_api: Api, clock: FakeClock) -> None:
    task_id = timed_api.kling_create(kling_body()).json()["data"]["task_id"]
    seen = []
    for _ in range(4):
        data = timed_api.kling_get(task_id).json()["data"]
        seen.append(data["task_status"])
        assert "progress" not in data
        clock.advance(90)

    assert seen == ["submitted", "processing", "succeed", "succeed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration": 5}, None),
        ({"duration": "7"}, None),
        ({"model_name": "kling-v9"}, "invalid model name"),
        ({"model_name": None, "model": "kling-v1-6"}, "invalid model name"),
        ({"prompt": "x" * 501}, None),
        ({"prompt": ""}, None),
        ({"negative_prompt": "x" * 201}, None),
        ({"cfg_scale": 1.5}, None),
        ({"mode": "ultra"}, None),
        ({"aspect_ratio": "21:9"}, None),
        ({"camera_control": {"type": "simple", "config": {"pan": 2, "zoom": 3}}}, None),
        ({"camera_control": {"type": "simple", "config": {"pan": 11}}}, None),
        ({"camera_control": {"type": "down_back", "config": {"pan": 2}}}, None),
        ({"camera_control": {"type": "spin"}}, None),
    ],
)
def test_invalid_parameters_answer_1201(api: Api, change: dict[str, Any], message: str | None) -> None:
    body = {k: v for k, v in {**kling_body(), **change}.items() if v is not None}

    reply = api.kling_create(body)

    assert reply.status_code == 400
    assert reply.json()["code"] == 1201
    if message:
        assert reply.json()["message"] == message


@pytest.mark.parametrize(
    "change",
    [
        {"camera_control": {"type": "simple", "config": {"horizontal": 0, "zoom": -4}}},
        {"camera_control": {"type": "forward_up"}},
        {"mode": "pro", "cfg_scale": 0.3, "negative_prompt": "blur", "aspect_ratio": "1:1"},
        {"model_name": "kling-v2-master"},
    ],
)
def test_valid_options_are_accepted(api: Api, change: dict[str, Any]) -> None:
    assert api.kling_create(kling_body(**change)).status_code == 200


@pytest.mark.parametrize(
    ("image", "extra", "ok"),
    [
        (HTTPS_IMAGE, {}, True),
        (b64(png_bytes(300, 300)), {"image_tail": b64(jpeg_bytes(320, 320))}, True),
        ("data:image/png;base64," + b64(png_bytes(300, 300)), {}, False),
        (b64(png_bytes(64, 64)), {}, False),
        ("not base64 at all!", {}, False),
        ("http://images.example.com/a.png", {}, False),
        (HTTPS_IMAGE, {"image_tail": "data:image/png;base64,AAAA"}, False),
    ],
)
def test_image2video_image_rules(api: Api, image: str, extra: dict[str, str], ok: bool) -> None:
    body = kling_body(image=image, **extra)
    del body["prompt"]

    reply = api.kling_create(body, kind="image2video")

    assert reply.status_code == (200 if ok else 400)
    if ok:
        task_id = reply.json()["data"]["task_id"]
        assert api.kling_get(task_id, kind="image2video").json()["data"]["task_status"] == "succeed"
        assert api.kling_get(task_id, kind="text2video").status_code == 404
    else:
        assert reply.json()["code"] == 1201


def test_image2video_needs_an_image(api: Api) -> None:
    assert api.kling_create(kling_body(), kind="image2video").status_code == 400


def test_external_task_id_is_unique_and_queryable(api: Api) -> None:
    first = api.kling_create(kling_body(external_task_id="job-1"))
    duplicate = api.kling_create(kling_body(external_task_id="job-1"))

    by_external = api.session.get(api.url("/kling/v1/videos/text2video?external_task_id=job-1"), timeout=5)
    missing = api.session.get(api.url("/kling/v1/videos/text2video?external_task_id=job-2"), timeout=5)

    assert first.json()["data"]["task_info"] == {"external_task_id": "job-1"}
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == 1201
    assert by_external.status_code == 200
    assert by_external.json()["data"]["task_id"] == first.json()["data"]["task_id"]
    assert missing.status_code == 404
    assert missing.json()["code"] == 1203


def test_list_query_without_external_id(api: Api) -> None:
    ids = [api.kling_create(kling_body(prompt=f"shot {i}")).json()["data"]["task_id"] for i in range(2)]

    listed = api.session.get(api.url("/kling/v1/videos/text2video"), timeout=5).json()["data"]

    assert [item["task_id"] for item in listed] == list(reversed(ids))


@pytest.mark.parametrize(("marker", "message"), [("fail=the render crashed", "the render crashed"), ("filter", "")])
def test_failure_reason_is_in_task_status_msg(api: Api, marker: str, message: str) -> None:
    task_id = api.kling_create(kling_body(prompt=f"a storm [sim:{marker}]")).json()["data"]["task_id"]

    data = api.kling_get(task_id).json()["data"]

    assert data["task_status"] == "failed"
    assert data["task_status_msg"] == message
    assert "task_result" not in data


def test_bad_key_is_kling_1000(sim: CometApiSimulator) -> None:
    reply = requests.post(
        sim.base_url + "/kling/v1/videos/text2video",
        json=kling_body(),
        headers={"Authorization": "Bearer no"},
        timeout=5,
    )

    assert reply.status_code == 401
    assert reply.json()["code"] == 1000
    assert sim.creates("kling")[0].status == 401
