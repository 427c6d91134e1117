"""The Runway dialect: version header, create, the three poll shapes, cancel."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from local.simulator import CometApiSimulator
from tests.fixtures.images import png_bytes

from .conftest import RUNWAY_VERSION, Api, FakeClock, b64, probe, runway_body


def test_create_poll_and_download(sim: CometApiSimulator, api: Api) -> None:
    created = api.runway_create(runway_body(duration=10, ratio="768:1280"))

    assert created.status_code == 200
    task_id = created.json()["id"]
    assert created.json() == {"id": str(uuid.UUID(task_id))}

    task = api.runway_get(task_id).json()

    assert task["status"] == "SUCCEEDED"
    assert task["id"] == task_id
    assert task["createdAt"].endswith("Z")
    facts = probe(requests.get(task["output"][0], timeout=5).content)
    assert facts.seconds == pytest.approx(10, abs=0.5)
    assert facts.height > facts.width


def test_reference_statuses_with_float_progress(timed_api: Api, clock: FakeClock) -> None:
    task_id = timed_api.runway_create(runway_body()).json()["id"]
    seen = []
    for _ in range(4):
        task = timed_api.runway_get(task_id).json()
        seen.append((task["status"], task.get("progress")))
        clock.advance(60)

    assert seen[0] == ("PENDING", None)
    assert seen[1][0] == "RUNNING"
    assert seen[1][1] == pytest.approx(0.3)
    assert seen[2][0] == "RUNNING"
    assert seen[2][1] == pytest.approx(0.6)
    assert seen[3] == ("SUCCEEDED", None)


def test_wrapped_shape(timed_sim: CometApiSimulator, timed_api: Api, clock: FakeClock) -> None:
    timed_sim.set_shape("wrapped")
    task_id = timed_api.runway_create(runway_body()).json()["id"]
    seen = []
    for _ in range(3):
        body = timed_api.runway_get(task_id).json()
        assert (body["code"], body["message"]) == ("success", "")
        data = body["data"]
        assert data["task_id"] == task_id
        assert data["data"]["id"] == task_id
        seen.append((data["status"], data["progress"], data["data"]["status"]))
        clock.advance(90)

    assert seen == [("QUEUED", "0%", "PENDING"), ("IN_PROGRESS", "50%", "RUNNING"), ("SUCCESS", "100%", "SUCCEEDED")]
    assert body["data"]["data"]["output"][0].startswith(timed_sim.base_url)


def test_tutorial_shape_is_lower_case(sim: CometApiSimulator, api: Api) -> None:
    sim.set_shape("tutorial")
    task_id = api.runway_create(runway_body()).json()["id"]

    assert api.runway_get(task_id).json()["status"] == "succeeded"


def test_missing_version_header_is_refused_on_every_call(sim: CometApiSimulator, api: Api) -> None:
    task_id = api.runway_create(runway_body()).json()["id"]

    create = api.session.post(api.url("/runwayml/v1/image_to_video"), json=runway_body(), timeout=5)
    poll = api.session.get(api.url(f"/runwayml/v1/tasks/{task_id}"), timeout=5)

    for reply in (create, poll):
        assert reply.status_code == 400
        assert reply.json() == {"error": "Missing X-Runway-Version header"}
    assert [r.status for r in sim.received] == [200, 400, 400]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"duration": "5"}, "duration"),
        ({"duration": 7}, "duration"),
        ({"ratio": "16:9"}, "ratio"),
        ({"promptText": "x" * 513}, "promptText"),
        ({"promptImage": "http://images.example.com/a.png"}, "promptImage"),
        ({"promptImage": "https://203.0.113.7/a.png"}, "promptImage"),
        ({"promptImage": None}, "promptImage"),
        ({"model": "gen4_turbo"}, "model"),
        ({"seed": -1}, "seed"),
    ],
)
def test_validation(api: Api, change: dict[str, Any], param: str) -> None:
    body = {k: v for k, v in {**runway_body(), **change}.items() if v is not None}

    reply = api.runway_create(body)

    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


@pytest.mark.parametrize(
    "change",
    [
        {"ratio": "1280:720"},
        {"promptImage": "data:image/png;base64," + b64(png_bytes())},
        {"seed": 4294967295, "watermark": False},
        {"promptImage": [{"uri": "https://images.example.com/a.png", "position": "first"}]},
    ],
)
def test_accepted_variants(api: Api, change: dict[str, Any]) -> None:
    assert api.runway_create(runway_body(**change)).status_code == 200


def test_delete_cancels_a_running_task_and_deletes_a_finished_one(api: Api) -> None:
    running = api.runway_create(runway_body("a ship [sim:stuck]")).json()["id"]
    finished = api.runway_create(runway_body("a plane")).json()["id"]
    assert api.runway_get(finished).json()["status"] == "SUCCEEDED"
    headers = {"X-Runway-Version": RUNWAY_VERSION}

    cancelled = api.session.delete(api.url(f"/runwayml/v1/tasks/{running}"), headers=headers, timeout=5)
    deleted = api.session.delete(api.url(f"/runwayml/v1/tasks/{finished}"), headers=headers, timeout=5)

    assert cancelled.status_code == 204
    assert deleted.status_code == 204
    assert api.runway_get(running).json()["status"] == "CANCELLED"
    assert api.runway_get(finished).status_code == 404


@pytest.mark.parametrize(
    ("marker", "failure"),
    [("fail=the render crashed", ("the render crashed", "INTERNAL.BAD_OUTPUT.CODE01")), ("filter", (None, None))],
)
def test_failures(api: Api, marker: str, failure: tuple[str | None, str | None]) -> None:
    task_id = api.runway_create(runway_body(f"a storm [sim:{marker}]")).json()["id"]

    task = api.runway_get(task_id).json()

    assert task["status"] == "FAILED"
    assert (task.get("failure"), task.get("failureCode")) == failure


def test_bad_key_is_401_in_cometapi_envelope(sim: CometApiSimulator) -> None:
    reply = requests.post(
        sim.base_url + "/runwayml/v1/image_to_video",
        json=runway_body(),
        headers={"X-Runway-Version": RUNWAY_VERSION},
        timeout=5,
    )

    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "comet_api_error"
