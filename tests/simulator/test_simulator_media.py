"""Media URLs (HEAD, Range, expiry, signatures), routing, control endpoints and lifecycle."""

from __future__ import annotations

import hashlib

import requests

from local.simulator import CometApiSimulator

from .conftest import Api, FakeClock, kling_body, runway_body


def _video_url(api: Api) -> tuple[str, str]:
    task_id = api.videos_create().json()["id"]
    return task_id, api.videos_get(task_id).json()["video_url"]


def test_head_gives_length_and_type_without_a_body(sim: CometApiSimulator, api: Api) -> None:
    task_id, url = _video_url(api)

    reply = requests.head(url, timeout=5)

    assert reply.status_code == 200
    assert reply.content == b""
    assert reply.headers["Content-Type"] == "video/mp4"
    assert int(reply.headers["Content-Length"]) == len(sim.video_bytes_for(task_id))
    assert reply.headers["Accept-Ranges"] == "bytes"


def test_ranges(sim: CometApiSimulator, api: Api) -> None:
    task_id, url = _video_url(api)
    data = sim.video_bytes_for(task_id)

    head = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=5)
    tail = requests.get(url, headers={"Range": "bytes=-10"}, timeout=5)
    rest = requests.get(url, headers={"Range": "bytes=100-"}, timeout=5)
    beyond = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=5)

    assert head.status_code == 206
    assert head.content == data[:100]
    assert head.headers["Content-Range"] == f"bytes 0-99/{len(data)}"
    assert tail.content == data[-10:]
    assert rest.content == data[100:]
    assert rest.headers["Content-Length"] == str(len(data) - 100)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"


def test_media_expires_after_its_ttl(clock: FakeClock) -> None:
    with CometApiSimulator(time_scale=0.0, media_ttl_seconds=30.0, clock=clock) as sim:
        api = Api(sim.base_url)
        task_id = api.kling_create(kling_body()).json()["data"]["task_id"]
        url = api.kling_get(task_id).json()["data"]["task_result"]["videos"][0]["url"]

        clock.advance(29)
        fresh = requests.get(url, timeout=5)
        clock.advance(2)
        stale = requests.get(url, timeout=5)

        assert fresh.status_code == 200
        assert stale.status_code == 403
        assert stale.headers["Content-Type"] == "application/xml"
        assert b"<Code>AccessDenied</Code>" in stale.content
        # The poll keeps handing out the same (now expired) URL, as a real temporary URL would
        assert api.kling_get(task_id).json()["data"]["task_result"]["videos"][0]["url"] == url


def test_the_signature_is_part_of_the_url(api: Api) -> None:
    _, url = _video_url(api)
    bare = url.split("?")[0]

    assert requests.get(bare, timeout=5).status_code == 403
    assert requests.get(bare.replace("/media/", "/media/x"), timeout=5).status_code == 404


def test_each_task_serves_its_own_recorded_bytes(sim: CometApiSimulator, api: Api) -> None:
    downloads = {}
    for prompt in ("one", "two"):
        task_id = api.runway_create(runway_body(prompt)).json()["id"]
        downloads[task_id] = requests.get(api.runway_get(task_id).json()["output"][0], timeout=5).content

    digests = {task_id: hashlib.sha256(data).hexdigest() for task_id, data in downloads.items()}
    assert len(set(digests.values())) == 2
    assert {t: hashlib.sha256(d).hexdigest() for t, d in sim.served_videos.items()} == digests


def test_unknown_path_is_an_html_404(sim: CometApiSimulator, api: Api) -> None:
    for path in ("/videos", "/v1/video", "/api/v1/videos"):
        reply = api.session.post(api.url(path), json={}, timeout=5)
        assert reply.status_code == 404
        assert reply.headers["Content-Type"].startswith("text/html")
    assert [r.dialect for r in sim.received] == ["unknown", "videos", "unknown"]


def test_control_endpoints(sim: CometApiSimulator) -> None:
    base = sim.base_url + "/_sim"

    health = requests.get(base + "/health", timeout=5).json()
    set_faults = requests.put(base + "/faults", json={"faults": ["429"]}, timeout=5).json()
    bad = requests.put(base + "/faults", json={"faults": ["nope"]}, timeout=5)
    shape = requests.put(base + "/shape", json={"shape": "tutorial"}, timeout=5)
    listed = requests.get(base + "/requests", timeout=5).json()["requests"]

    assert health["ok"] is True
    assert health["base_url"] == sim.base_url
    assert set_faults == {"faults": ["429"]}
    assert bad.status_code == 400
    assert shape.status_code == 200
    assert sim.shape == "tutorial"
    assert [r["dialect"] for r in listed] == ["control"] * 5
    requests.delete(base + "/faults", timeout=5)
    requests.post(base + "/reset", timeout=5)
    assert sim.shape == "reference"
    assert sim.received == []  # the reset call forgot itself too


def test_task_control_endpoints_show_the_create_body_and_the_served_bytes(sim: CometApiSimulator, api: Api) -> None:
    # Given a Kling task whose video has not been downloaded yet
    body = kling_body("a heron in the reeds", image="https://images.example.com/heron.png")
    task_id = api.kling_create(body, kind="image2video").json()["data"]["task_id"]
    url = api.kling_get(task_id, kind="image2video").json()["data"]["task_result"]["videos"][0]["url"]
    base = f"{sim.base_url}/_sim/tasks"
    # When a test process asks for the task and its video
    task = requests.get(f"{base}/{task_id}", timeout=5)
    before = requests.get(f"{base}/{task_id}/video", timeout=5)
    # Then it sees the task with the exact body of its create, and no video until one was served
    assert task.status_code == 200
    assert task.json() == {
        "task_id": task_id,
        "dialect": "kling",
        "model": "kling-v1-6",
        "polls": 1,
        "downloads": 0,
        "create": body,
    }
    assert before.status_code == 404
    # When the video is downloaded
    served = requests.get(url, timeout=5).content
    # Then the control endpoint answers the same bytes, and an unknown task is a 404
    after = requests.get(f"{base}/{task_id}/video", timeout=5)
    assert (after.status_code, after.headers["Content-Type"]) == (200, "video/mp4")
    assert after.content == served == sim.video_bytes_for(task_id)
    assert requests.get(f"{base}/no-such-task", timeout=5).status_code == 404


def test_reset_forgets_tasks_and_records(sim: CometApiSimulator, api: Api) -> None:
    task_id = api.videos_create(prompt="a fox [sim:429]").json()
    sim.set_global_faults("stuck")

    sim.reset()

    assert sim.received == []
    assert sim.state.tasks == {}
    assert task_id["error"]
    assert api.videos_create(prompt="a fox [sim:429]").status_code == 429
    video_id = api.videos_create(prompt="a fox [sim:429]").json()["id"]
    assert api.videos_get(video_id).json()["status"] == "completed"


def test_stop_releases_the_port_and_start_is_idempotent() -> None:
    sim = CometApiSimulator()
    sim.start()
    sim.start()
    api = Api(sim.base_url)
    assert api.videos_create().status_code == 200  # a kept-alive connection is now open
    base_url = sim.base_url
    sim.stop()
    sim.stop()

    try:
        requests.get(base_url + "/_sim/health", timeout=1)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the simulator still answers after stop()")
