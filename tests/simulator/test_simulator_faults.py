"""Fault markers: in the prompt, in the X-Sim-Fault header, and global."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import requests

from local.simulator import CometApiSimulator, FaultMarkerError

from .conftest import Api, kling_body, runway_body


def _statuses(sim: CometApiSimulator) -> list[int | None]:
    return [r.status for r in sim.creates()]


def test_429_fires_once_per_intent_without_retry_after(sim: CometApiSimulator, api: Api) -> None:
    first = api.videos_create(prompt="a fox [sim:429]")
    retried = api.videos_create(prompt="a fox [sim:429]")
    other_intent = api.videos_create(prompt="a hare [sim:429]")

    assert first.status_code == 429
    assert "Retry-After" not in first.headers
    assert first.json()["error"]["type"] == "comet_api_error"
    assert retried.status_code == 200
    assert other_intent.status_code == 429
    assert _statuses(sim) == [429, 200, 429]
    assert [c.task_id is not None for c in sim.creates()] == [False, True, False]


def test_counted_faults_fire_in_order(sim: CometApiSimulator, api: Api) -> None:
    replies = [api.videos_create(prompt="a fox [sim:429x3,500x2,503]").status_code for _ in range(7)]

    assert replies == [429, 429, 429, 500, 500, 503, 200]


def test_429_with_retry_after(api: Api) -> None:
    reply = api.videos_create(prompt="a fox [sim:429-retry-after=1]")

    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "1"


@pytest.mark.parametrize("status", [502, 504, 524])
def test_gateway_errors_are_html_pages(api: Api, status: int) -> None:
    reply = api.videos_create(prompt=f"a fox [sim:{status}]")

    assert reply.status_code == status
    assert reply.headers["Content-Type"].startswith("text/html")


def test_kling_rate_limits_use_kling_codes(api: Api) -> None:
    rate_limited = api.kling_create(kling_body("a fox [sim:429]"))
    parallel = [api.kling_create(kling_body("a hare [sim:1303x2]")) for _ in range(3)]

    assert (rate_limited.status_code, rate_limited.json()["code"]) == (429, 1302)
    assert [(r.status_code, r.json()["code"]) for r in parallel] == [(429, 1303), (429, 1303), (200, 0)]
    assert parallel[0].json()["message"] == "parallel task over resource pack limit"


def test_permanent_refusals(api: Api) -> None:
    blocked = [api.kling_create(kling_body("a fox [sim:blocked]")).json()["code"] for _ in range(2)]
    no_credit = api.kling_create(kling_body("a fox [sim:1102]"))
    invalid = api.videos_create(prompt="a fox [sim:500-invalid]")

    assert blocked == [1301, 1301]
    assert (no_credit.status_code, no_credit.json()["code"]) == (429, 1102)
    assert invalid.status_code == 500
    assert invalid.json()["error"]["code"] == "invalid_request"


def test_reset_closes_before_anything_is_created(sim: CometApiSimulator, api: Api) -> None:
    with pytest.raises(requests.ConnectionError):
        api.videos_create(prompt="a fox [sim:reset]")
    retried = api.videos_create(prompt="a fox [sim:reset]")

    assert retried.status_code == 200
    assert [(c.status, c.task_id is not None) for c in sim.creates()] == [(None, False), (200, True)]
    assert len(sim.state.tasks) == 1


def test_ambiguous_create_is_accepted_then_unanswered(sim: CometApiSimulator, api: Api) -> None:
    # When a Kling create is accepted but its answer is lost
    with pytest.raises(requests.ConnectionError):
        api.kling_create(kling_body("a fox [sim:ambiguous]", external_task_id="job-7"))

    # Then the task exists, is on record, and can be found by its external id (but not created twice)
    create = sim.creates()[0]
    assert create.status is None
    assert create.task_id is not None
    found = api.session.get(api.url("/kling/v1/videos/text2video?external_task_id=job-7"), timeout=5)
    assert found.json()["data"]["task_id"] == create.task_id
    again = api.kling_create(kling_body("a fox [sim:ambiguous]", external_task_id="job-7"))
    assert again.status_code == 400
    assert again.json()["code"] == 1201


def test_ambiguous_videos_create_makes_a_task(sim: CometApiSimulator, api: Api) -> None:
    with pytest.raises(requests.ConnectionError):
        api.videos_create(prompt="a fox [sim:ambiguous]")

    task_id = sim.creates()[0].task_id
    assert task_id is not None
    assert api.videos_get(task_id).json()["status"] == "completed"


def test_slow_answers_after_the_work_is_done(sim: CometApiSimulator, api: Api) -> None:
    with pytest.raises(requests.ReadTimeout):
        api.session.post(
            api.url("/runwayml/v1/image_to_video"),
            json=runway_body("a fox [sim:slow=0.6]"),
            headers={"X-Runway-Version": "2024-11-06"},
            timeout=0.2,
        )

    task_id = sim.creates()[0].task_id
    assert task_id is not None
    assert api.runway_get(task_id).json()["status"] == "SUCCEEDED"


@pytest.mark.parametrize("dialect", ["videos", "runway"])
def test_not_exist_polls_answer_404_task_not_exist(api: Api, dialect: str) -> None:
    if dialect == "videos":
        task_id = api.videos_create(prompt="a fox [sim:not-exist=2]").json()["id"]
        polls = [api.videos_get(task_id) for _ in range(3)]
    else:
        task_id = api.runway_create(runway_body("a fox [sim:not-exist=2]")).json()["id"]
        polls = [api.runway_get(task_id) for _ in range(3)]

    assert [p.status_code for p in polls] == [404, 404, 200]
    assert polls[0].json()["error"] == {
        "message": "task_not_exist",
        "type": "comet_api_error",
        "param": "",
        "code": "task_not_exist",
    }


def test_not_exist_200_variant(api: Api) -> None:
    task_id = api.runway_create(runway_body("a fox [sim:not-exist-200=1]")).json()["id"]

    first, second = api.runway_get(task_id), api.runway_get(task_id)

    assert first.status_code == 200
    assert first.json() == {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    assert second.json()["status"] == "SUCCEEDED"


def test_stuck_stays_queued_in_every_dialect(api: Api) -> None:
    video_id = api.videos_create(prompt="a fox [sim:stuck]").json()["id"]
    kling_id = api.kling_create(kling_body("a fox [sim:stuck]")).json()["data"]["task_id"]
    runway_id = api.runway_create(runway_body("a fox [sim:stuck]")).json()["id"]

    for _ in range(2):
        assert api.videos_get(video_id).json()["status"] == "queued"
        assert api.kling_get(kling_id).json()["data"]["task_status"] == "submitted"
        assert api.runway_get(runway_id).json()["status"] == "PENDING"


def test_throttled_polls(api: Api) -> None:
    task_id = api.runway_create(runway_body("a fox [sim:not-exist=1,throttled=2]")).json()["id"]

    replies = [api.runway_get(task_id) for _ in range(4)]

    assert replies[0].status_code == 404
    assert [r.json()["status"] for r in replies[1:]] == ["THROTTLED", "THROTTLED", "SUCCEEDED"]


def test_poll_faults_hit_the_status_polls_of_their_task(api: Api) -> None:
    task_id = api.runway_create(runway_body("a fox [sim:poll-503x2-retry-after=2,poll-reset]")).json()["id"]

    failing = [api.runway_get(task_id) for _ in range(2)]
    with pytest.raises(requests.ConnectionError):
        api.runway_get(task_id)
    finally_ok = api.runway_get(task_id)

    assert [(r.status_code, r.headers.get("Retry-After")) for r in failing] == [(503, "2"), (503, "2")]
    assert finally_ok.json()["status"] == "SUCCEEDED"


def test_poll_slow_makes_every_poll_late(api: Api) -> None:
    task_id = api.kling_create(kling_body("a fox [sim:poll-slow=0.5]")).json()["data"]["task_id"]

    with pytest.raises(requests.ReadTimeout):
        api.session.get(api.url(f"/kling/v1/videos/text2video/{task_id}"), timeout=0.2)


def test_html_poll(api: Api) -> None:
    task_id = api.videos_create(prompt="a fox [sim:html=1]").json()["id"]

    first, second = api.videos_get(task_id), api.videos_get(task_id)

    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/html")
    assert second.json()["status"] == "completed"


def test_truncated_download_then_once(api: Api) -> None:
    always = api.videos_create(prompt="a fox [sim:truncate]").json()["id"]
    once = api.videos_create(prompt="a hare [sim:truncate-once]").json()["id"]
    always_url = api.videos_get(always).json()["video_url"]
    once_url = api.videos_get(once).json()["video_url"]

    for _ in range(2):
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(always_url, timeout=5)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(once_url, timeout=5)
    assert requests.get(once_url, timeout=5).content[4:8] == b"ftyp"


def test_truncated_download_declares_the_full_length(api: Api) -> None:
    task_id = api.videos_create(prompt="a fox [sim:truncate]").json()["id"]
    url = urlsplit(api.videos_get(task_id).json()["video_url"])
    connection = http.client.HTTPConnection(url.netloc, timeout=5)

    connection.request("GET", f"{url.path}?{url.query}")
    reply = connection.getresponse()
    with pytest.raises(http.client.IncompleteRead) as short:
        reply.read()
    connection.close()

    assert len(short.value.partial) == int(reply.headers["Content-Length"]) // 2


def test_expire_and_wrong_type(api: Api) -> None:
    expired = api.videos_create(prompt="a fox [sim:expire]").json()["id"]
    wrong = api.videos_create(prompt="a hare [sim:wrong-type]").json()["id"]

    expired_reply = requests.get(api.videos_get(expired).json()["video_url"], timeout=5)
    wrong_reply = requests.get(api.videos_get(wrong).json()["video_url"], timeout=5)

    assert expired_reply.status_code == 403
    assert b"<Code>AccessDenied</Code>" in expired_reply.content
    assert wrong_reply.status_code == 200
    assert wrong_reply.headers["Content-Type"].startswith("text/html")


def test_expire_once_refuses_the_first_link_and_the_next_poll_hands_out_a_working_one(
    sim: CometApiSimulator, api: Api
) -> None:
    # Given a finished task with the expire-once fault, and the link its first poll handed out
    task_id = api.videos_create(prompt="a fox [sim:expire-once]").json()["id"]
    first_url = api.videos_get(task_id).json()["video_url"]
    # When that link is downloaded
    refused = requests.get(first_url, timeout=5)
    # Then it answers 403 as an expired S3 link does, and keeps doing so
    assert refused.status_code == 403
    assert b"<Code>AccessDenied</Code>" in refused.content
    assert requests.get(first_url, timeout=5).status_code == 403
    # When the task is polled again
    fresh_url = api.videos_get(task_id).json()["video_url"]
    # Then it hands out another link, which serves the task's video, and which further polls keep
    assert fresh_url != first_url
    fresh = requests.get(fresh_url, timeout=5)
    assert fresh.status_code == 200
    assert fresh.content == sim.video_bytes_for(task_id)
    assert api.videos_get(task_id).json()["video_url"] == fresh_url


def test_expire_once_keeps_the_first_link_until_it_is_refused(api: Api) -> None:
    # Given a finished Kling task with the expire-once fault
    task_id = api.kling_create(kling_body("a fox [sim:expire-once]")).json()["data"]["task_id"]
    # When it is polled twice before anyone downloads
    urls = [api.kling_get(task_id).json()["data"]["task_result"]["videos"][0]["url"] for _ in range(2)]
    # Then both polls hand out the same (expired) link: a new one comes only after the old one was refused
    assert urls[0] == urls[1]
    assert requests.get(urls[0], timeout=5).status_code == 403
    assert api.kling_get(task_id).json()["data"]["task_result"]["videos"][0]["url"] != urls[0]


def test_shape_marker_overrides_the_simulator_shape(api: Api) -> None:
    task_id = api.runway_create(runway_body("a fox [sim:shape=wrapped]")).json()["id"]

    assert api.runway_get(task_id).json()["data"]["status"] == "SUCCESS"


def test_header_faults_act_on_the_request_carrying_them(sim: CometApiSimulator, api: Api) -> None:
    # Given a header fault on a poll
    task_id = api.videos_create().json()["id"]
    headers = {"X-Sim-Fault": "500,slow=0.1"}

    first, second = api.videos_get(task_id, headers=headers), api.videos_get(task_id, headers=headers)

    assert (first.status_code, second.status_code) == (500, 200)

    # And a header fault on a create makes a task fault
    failed_id = api.videos_create(prompt="a hare", headers={"X-Sim-Fault": "fail=no luck"}).json()["id"]
    assert api.videos_get(failed_id).json()["error"]["message"] == "no luck"


def test_global_faults_apply_to_every_create_until_cleared(sim: CometApiSimulator, api: Api) -> None:
    sim.set_global_faults("429", "no-url")

    first = [api.videos_create(prompt=p).status_code for p in ("a", "a", "b", "b")]
    completed = api.videos_get(sim.creates()[1].task_id or "").json()
    sim.clear_global_faults()
    after = api.videos_create(prompt="c").status_code

    assert first == [429, 200, 429, 200]
    assert completed["status"] == "completed"
    assert "video_url" not in completed
    assert after == 200


def test_unknown_markers_fail_loudly(sim: CometApiSimulator, api: Api) -> None:
    reply = api.videos_create(prompt="a fox [sim:4299]")
    poll_marker = api.kling_create(kling_body("a fox [sim:poll-stuck]"))

    assert reply.status_code == 400
    assert "4299" in reply.json()["error"]["message"]
    assert poll_marker.status_code == 400
    assert poll_marker.json()["code"] == 1201
    with pytest.raises(FaultMarkerError):
        sim.set_global_faults("bogus")
