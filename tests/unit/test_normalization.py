"""Status normalisation: every wire shape in the CometAPI reference (cometapi.md) (and the tutorial's) as a TaskState.

Each case feeds a provider's poll body, exactly as CometAPI (or the tutorial) shows it, through the dialect's
normalizer and checks the whole answer a job sees: status, progress, output URL (and whether it needs the key),
and the stable error code and message of a failure.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, NoReturn

import pytest

from functions.common.errors import ProviderError
from functions.providers.base import (
    CONTENT_FILTER_MESSAGE,
    TaskState,
    TaskStatus,
    mentions_task_not_exist,
    status_of,
)
from functions.providers.kling import normalize_kling
from functions.providers.runway import normalize_runway
from functions.providers.videos import normalize_videos

CONTENT_URL = "https://api.example.test/v1/videos/video_69b2/content"
VIDEO_URL = "https://cdn.example.test/videos/video_69b2.mp4"
RUNWAY_URL = "https://dnznrvs05pmza.cloudfront.net/output.mp4?_jwt=abc"
KLING_URL = "https://cdn.klingai.example.test/2032273942220931072.mp4"


@pytest.fixture(autouse=True)
def _module_blocks_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may resolve a name or open a connection (named apart from conftest's guard: both apply)."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("network access is blocked in unit tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def summary(state: TaskState) -> dict[str, Any]:
    """The fields a job acts on, in one comparable dict."""
    return {
        "status": state.status,
        "progress": state.progress,
        "output_url": state.output_url,
        "output_needs_auth": state.output_needs_auth,
        "error_code": state.error_code,
        "error_message": state.error_message,
    }


def expected(
    status: TaskStatus,
    *,
    progress: int | None = None,
    output_url: str | None = None,
    output_needs_auth: bool = False,
    error_code: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "progress": progress,
        "output_url": output_url,
        "output_needs_auth": output_needs_auth,
        "error_code": error_code,
        "error_message": error_message,
    }


# --- /v1/videos (Veo 3 Fast, Sora 2) ---------------------------------------------------------------------

SORA_CREATE = {
    "id": "video_69b2",
    "object": "video",
    "model": "sora-2",
    "status": "queued",
    "progress": 0,
    "seconds": "4",
    "size": "1280x720",
    "created_at": 1773296991,
}
VEO_CREATE = {
    "id": "task_pa9C",
    "object": "video",
    "model": "veo_3_1-4K",
    "status": "queued",
    "progress": 0,
    "seconds": "",
    "size": "16x9",
    "created_at": 1773297229,
}


@pytest.mark.parametrize(
    ("body", "want"),
    [
        pytest.param(SORA_CREATE, expected(TaskStatus.QUEUED, progress=0), id="sora-create-as-poll"),
        pytest.param(VEO_CREATE, expected(TaskStatus.QUEUED, progress=0), id="veo-create-as-poll"),
        pytest.param(
            {**SORA_CREATE, "task_id": "video_69b2"}, expected(TaskStatus.QUEUED, progress=0), id="id-and-task-id"
        ),
        pytest.param(
            {"id": "video_69b2", "status": "in_progress", "progress": 40},
            expected(TaskStatus.RUNNING, progress=40),
            id="in-progress-40",
        ),
        pytest.param(
            {
                "id": "video_69b2",
                "status": "completed",
                "progress": 100,
                "completed_at": 1779872300,
                "video_url": VIDEO_URL,
            },
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=VIDEO_URL),
            id="completed-with-video-url",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "completed", "progress": 100, "completed_at": 1779872300},
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=CONTENT_URL, output_needs_auth=True),
            id="completed-without-video-url-uses-content-endpoint",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "succeeded", "output": [VIDEO_URL]},
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=VIDEO_URL),
            id="tutorial-succeeded-output-0",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "failed", "error": {"code": "internal_error", "message": "render crashed"}},
            expected(TaskStatus.FAILED, error_code="provider_error", error_message="render crashed"),
            id="failed-error-object",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "failed", "error": "upstream render timed out"},
            expected(TaskStatus.FAILED, error_code="provider_error", error_message="upstream render timed out"),
            id="failed-error-string",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "failed"},
            expected(TaskStatus.FAILED, error_code="content_filtered", error_message=CONTENT_FILTER_MESSAGE),
            id="failed-error-absent-is-content-filter",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "failed", "error": {"code": "", "message": ""}},
            expected(TaskStatus.FAILED, error_code="content_filtered", error_message=CONTENT_FILTER_MESSAGE),
            id="failed-error-empty-is-content-filter",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "failed", "error": {"code": "moderation_blocked", "message": "blocked"}},
            expected(
                TaskStatus.FAILED,
                error_code="content_filtered",
                error_message=f"{CONTENT_FILTER_MESSAGE} (provider said: blocked)",
            ),
            id="failed-moderation-code",
        ),
        pytest.param(
            {"id": "video_69b2", "status": "cancelled"},
            expected(TaskStatus.CANCELLED, error_code="cancelled", error_message="The provider cancelled the task."),
            id="tutorial-cancelled",
        ),
    ],
)
def test_videos_poll_bodies_normalize(body: dict[str, Any], want: dict[str, Any]) -> None:
    # Given a /v1/videos poll body in the reference's or the tutorial's shape
    # When it is normalized with the task's /content URL
    state = normalize_videos(body, content_url=CONTENT_URL)
    # Then the job sees our vocabulary, with the provider's word kept for logs
    assert summary(state) == want
    assert state.provider_status == body["status"]
    assert state.raw == body


def test_videos_failed_error_object_keeps_provider_code() -> None:
    # Given a failure whose error carries the provider's own code
    body = {"id": "video_69b2", "status": "failed", "error": {"code": "internal_error", "message": "render crashed"}}
    # When it is normalized
    state = normalize_videos(body, content_url=CONTENT_URL)
    # Then the provider's code is kept apart from our stable code
    assert state.provider_error_code == "internal_error"
    assert state.error_code == "provider_error"


def test_videos_unknown_status_counts_as_running_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    # Given a status word no document mentions
    body = {"id": "video_69b2", "status": "rendering_frames", "progress": 10}
    # When it is normalized
    with caplog.at_level(logging.WARNING, logger="functions.providers.base"):
        state = normalize_videos(body, content_url=CONTENT_URL)
    # Then the job keeps waiting (the poll deadline still applies) and the word is logged
    assert state.status is TaskStatus.RUNNING
    assert state.provider_status == "rendering_frames"
    assert state.output_url is None
    assert state.error_code is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rendering_frames" in r.getMessage() for r in warnings)


# --- Kling -----------------------------------------------------------------------------------------------

KLING_CREATE = {
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


def kling(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "message": "success", "data": {"task_id": "2032273942220931072", **data}}


@pytest.mark.parametrize(
    ("envelope", "want"),
    [
        pytest.param(KLING_CREATE, expected(TaskStatus.QUEUED), id="create-answer-submitted"),
        pytest.param(kling({"task_status": "processing"}), expected(TaskStatus.RUNNING), id="processing"),
        pytest.param(
            kling(
                {
                    "task_status": "succeed",
                    "task_result": {"videos": [{"id": "v1", "url": KLING_URL, "duration": "5.1"}]},
                }
            ),
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=KLING_URL),
            id="succeed-videos-0-url",
        ),
        pytest.param(
            kling({"task_status": "failed", "task_status_msg": "Image resolution is too low"}),
            expected(TaskStatus.FAILED, error_code="provider_error", error_message="Image resolution is too low"),
            id="failed-task-status-msg",
        ),
        pytest.param(
            kling({"task_status": "failed", "task_status_msg": ""}),
            expected(TaskStatus.FAILED, error_code="content_filtered", error_message=CONTENT_FILTER_MESSAGE),
            id="failed-empty-message-is-content-filter",
        ),
        pytest.param(
            kling({"task_status": "failed", "task_result": "Failure to pass the risk control system"}),
            expected(
                TaskStatus.FAILED,
                error_code="provider_error",
                error_message="Failure to pass the risk control system",
            ),
            id="tutorial-failed-task-result-as-reason",
        ),
    ],
)
def test_kling_task_queries_normalize(envelope: dict[str, Any], want: dict[str, Any]) -> None:
    # Given a Kling task query envelope
    # When it is normalized
    state = normalize_kling(envelope)
    # Then Kling's words (submitted, processing, succeed, failed) map onto ours; Kling reports no progress
    assert summary(state) == want
    assert state.provider_status == envelope["data"]["task_status"]


def test_kling_succeed_without_video_url_is_an_error() -> None:
    # Given a Kling success that names no video
    envelope = kling({"task_status": "succeed", "task_result": {"videos": []}})
    # When it is normalized
    # Then it is never reported as a success without an output
    with pytest.raises(ProviderError, match="no video URL"):
        normalize_kling(envelope)


# --- Runway ----------------------------------------------------------------------------------------------

RUNWAY_ID = "d0658ae1-bbdd-4adc-aaba-fd8070e14d79"


def runway(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": RUNWAY_ID, "status": status, "createdAt": "2026-05-01T10:00:00.000Z", **fields}


def wrapped(status: str, progress: str, fail_reason: str = "", inner: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"task_id": RUNWAY_ID, "status": status, "progress": progress, "fail_reason": fail_reason}
    if inner is not None:
        data["data"] = inner
    return {"code": "success", "message": "", "data": data}


@pytest.mark.parametrize(
    ("body", "want", "provider_status"),
    [
        pytest.param(runway("PENDING"), expected(TaskStatus.QUEUED), "PENDING", id="bare-pending"),
        pytest.param(runway("THROTTLED"), expected(TaskStatus.QUEUED), "THROTTLED", id="bare-throttled"),
        pytest.param(
            runway("RUNNING", progress=0.42), expected(TaskStatus.RUNNING, progress=42), "RUNNING", id="bare-running"
        ),
        pytest.param(
            runway("SUCCEEDED", output=[RUNWAY_URL]),
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=RUNWAY_URL),
            "SUCCEEDED",
            id="bare-succeeded",
        ),
        pytest.param(
            runway("FAILED", failure="Input text was flagged", failureCode="SAFETY.INPUT.TEXT"),
            expected(
                TaskStatus.FAILED,
                error_code="content_filtered",
                error_message=f"{CONTENT_FILTER_MESSAGE} (provider said: Input text was flagged)",
            ),
            "FAILED",
            id="bare-failed-safety",
        ),
        pytest.param(
            runway("FAILED", failure="An internal error occurred", failureCode="INTERNAL.BAD_OUTPUT"),
            expected(TaskStatus.FAILED, error_code="provider_error", error_message="An internal error occurred"),
            "FAILED",
            id="bare-failed-internal",
        ),
        pytest.param(
            runway("CANCELLED"),
            expected(
                TaskStatus.CANCELLED, error_code="cancelled", error_message="The task was cancelled at the provider."
            ),
            "CANCELLED",
            id="bare-cancelled",
        ),
        # CometAPI's wrapper around Runway's own task (inner data.data present)
        pytest.param(
            wrapped("QUEUED", "0%", inner=runway("PENDING")),
            expected(TaskStatus.QUEUED, progress=0),
            "PENDING",
            id="wrapped-queued-inner-pending",
        ),
        pytest.param(
            wrapped("IN_PROGRESS", "42%", inner=runway("RUNNING")),
            expected(TaskStatus.RUNNING, progress=42),
            "RUNNING",
            id="wrapped-in-progress-inner-running",
        ),
        pytest.param(
            wrapped("SUCCESS", "100%", inner=runway("SUCCEEDED", output=[RUNWAY_URL])),
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=RUNWAY_URL),
            "SUCCEEDED",
            id="wrapped-success-inner-succeeded",
        ),
        pytest.param(
            wrapped(
                "FAILURE",
                "100%",
                fail_reason="Input image was flagged",
                inner=runway("FAILED", failure="Input image was flagged", failureCode="SAFETY.INPUT.IMAGE"),
            ),
            expected(
                TaskStatus.FAILED,
                error_code="content_filtered",
                error_message=f"{CONTENT_FILTER_MESSAGE} (provider said: Input image was flagged)",
            ),
            "FAILED",
            id="wrapped-failure-inner-safety",
        ),
        # only the wrapper's fields
        pytest.param(
            wrapped("QUEUED", "0%"), expected(TaskStatus.QUEUED, progress=0), "QUEUED", id="wrapped-outer-queued"
        ),
        pytest.param(
            wrapped("IN_PROGRESS", "35%"),
            expected(TaskStatus.RUNNING, progress=35),
            "IN_PROGRESS",
            id="wrapped-outer-in-progress",
        ),
        pytest.param(
            wrapped("FAILURE", "100%", fail_reason="upstream render failed"),
            expected(TaskStatus.FAILED, error_code="provider_error", error_message="upstream render failed"),
            "FAILURE",
            id="wrapped-outer-failure-reason",
        ),
        pytest.param(
            wrapped("FAILURE", "100%"),
            expected(TaskStatus.FAILED, error_code="content_filtered", error_message=CONTENT_FILTER_MESSAGE),
            "FAILURE",
            id="wrapped-outer-failure-no-reason",
        ),
        # the tutorial's lower-case words
        pytest.param(
            {"id": RUNWAY_ID, "status": "succeeded", "output": [RUNWAY_URL]},
            expected(TaskStatus.SUCCEEDED, progress=100, output_url=RUNWAY_URL),
            "succeeded",
            id="tutorial-succeeded",
        ),
        pytest.param(
            {"id": RUNWAY_ID, "status": "failed"},
            expected(TaskStatus.FAILED, error_code="content_filtered", error_message=CONTENT_FILTER_MESSAGE),
            "failed",
            id="tutorial-failed",
        ),
        pytest.param(
            {"id": RUNWAY_ID, "status": "cancelled"},
            expected(
                TaskStatus.CANCELLED, error_code="cancelled", error_message="The task was cancelled at the provider."
            ),
            "cancelled",
            id="tutorial-cancelled",
        ),
    ],
)
def test_runway_tasks_normalize(body: dict[str, Any], want: dict[str, Any], provider_status: str) -> None:
    # Given a Runway task: bare, wrapped by CometAPI, or lower-case as in the tutorial
    # When it is normalized
    state = normalize_runway(body)
    # Then the job sees our vocabulary and the most precise provider word is kept
    assert summary(state) == want
    assert state.provider_status == provider_status


@pytest.mark.parametrize(
    ("body", "throttled"),
    [
        pytest.param(runway("THROTTLED"), True, id="bare-throttled"),
        pytest.param({"id": RUNWAY_ID, "status": "throttled"}, True, id="tutorial-throttled"),
        pytest.param(wrapped("QUEUED", "0%", inner=runway("THROTTLED")), True, id="wrapped-inner-throttled"),
        pytest.param(runway("PENDING"), False, id="bare-pending"),
        pytest.param(wrapped("QUEUED", "0%"), False, id="wrapped-outer-queued"),
        pytest.param(runway("RUNNING", progress=0.5), False, id="bare-running"),
    ],
)
def test_runway_throttled_is_queued_and_flagged_as_throttled(body: dict[str, Any], throttled: bool) -> None:
    # Given a Runway task held back by the account's concurrency limit (THROTTLED), or one that is not
    # When it is normalized
    state = normalize_runway(body)
    # Then only THROTTLED is flagged, so Poll waits for it instead of calling it stuck in the queue
    assert state.throttled is throttled


def test_runway_failure_keeps_failure_code() -> None:
    # Given a Runway failure with a dot-separated failure code
    body = runway("FAILED", failure="Input text was flagged", failureCode="SAFETY.INPUT.TEXT")
    # When it is normalized
    state = normalize_runway(body)
    # Then Runway's code is kept as the provider's code
    assert state.provider_error_code == "SAFETY.INPUT.TEXT"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(runway("SUCCEEDED"), id="bare-without-output"),
        pytest.param(wrapped("SUCCESS", "100%"), id="wrapped-outer-only-without-output"),
    ],
)
def test_runway_success_without_output_is_an_error(body: dict[str, Any]) -> None:
    # Given a Runway success that names no output
    # When it is normalized
    # Then it is never reported as a success without a URL
    with pytest.raises(ProviderError, match="no output URL"):
        normalize_runway(body)


# --- task_not_exist --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"status": "task_not_exist"}, id="top-status"),
        pytest.param({"code": "task_not_exist"}, id="top-code"),
        pytest.param({"code": "error", "message": "task_not_exist"}, id="top-message"),
        pytest.param({"message": "Task_Not_Exist: no task with id abc"}, id="top-message-any-case"),
        pytest.param(
            {"error": {"message": "task_not_exist", "type": "comet_api_error", "param": "", "code": ""}},
            id="error-envelope-message",
        ),
        pytest.param(
            {"error": {"message": "x", "type": "comet_api_error", "param": "", "code": "task_not_exist"}},
            id="error-envelope-code",
        ),
        pytest.param({"error": "task_not_exist"}, id="error-string"),
        pytest.param({"code": "success", "data": {"status": "task_not_exist"}}, id="data-status"),
        pytest.param({"code": "success", "data": {"code": "task_not_exist"}}, id="data-code"),
        pytest.param({"code": "success", "data": {"message": "task_not_exist"}}, id="data-message"),
        pytest.param(
            {"code": "success", "data": {"status": "FAILURE", "fail_reason": "task_not_exist"}}, id="data-fail-reason"
        ),
    ],
)
def test_task_not_exist_is_found_where_providers_put_it(body: dict[str, Any]) -> None:
    # Given a poll body carrying task_not_exist in a status, code or message field
    # When it is searched
    # Then it is found
    assert mentions_task_not_exist(body) is True


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"id": "task_not_exist"}, id="top-id"),
        pytest.param({"status": "queued", "prompt": "a film about task_not_exist errors"}, id="echoed-prompt"),
        pytest.param({"data": {"task_id": "task_not_exist"}}, id="data-task-id"),
        pytest.param({"data": {"data": {"status": "task_not_exist"}}}, id="deeper-than-one-level"),
        pytest.param({"error": {"type": "task_not_exist"}}, id="error-type"),
        pytest.param({"output": ["task_not_exist"]}, id="output-list"),
        pytest.param(KLING_CREATE, id="kling-create-answer"),
        pytest.param(wrapped("QUEUED", "0%", inner=runway("PENDING")), id="runway-wrapped-queued"),
        pytest.param(["task_not_exist"], id="not-an-object-list"),
        pytest.param("task_not_exist", id="not-an-object-string"),
        pytest.param(None, id="no-body"),
    ],
)
def test_task_not_exist_is_not_found_elsewhere(body: Any) -> None:
    # Given a body with task_not_exist only outside the status/code/message fields (or none at all)
    # When it is searched
    # Then it is not taken for a missing task
    assert mentions_task_not_exist(body) is False


# --- status words ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("queued", TaskStatus.QUEUED),
        ("QUEUED", TaskStatus.QUEUED),
        ("Pending", TaskStatus.QUEUED),
        ("THROTTLED", TaskStatus.QUEUED),
        ("submitted", TaskStatus.QUEUED),
        (" in_progress ", TaskStatus.RUNNING),
        ("IN_PROGRESS", TaskStatus.RUNNING),
        ("processing", TaskStatus.RUNNING),
        ("Running", TaskStatus.RUNNING),
        ("completed", TaskStatus.SUCCEEDED),
        ("succeed", TaskStatus.SUCCEEDED),
        ("SUCCEEDED", TaskStatus.SUCCEEDED),
        ("SUCCESS", TaskStatus.SUCCEEDED),
        ("FAILURE", TaskStatus.FAILED),
        ("Failed", TaskStatus.FAILED),
        ("CANCELLED", TaskStatus.CANCELLED),
        ("canceled", TaskStatus.CANCELLED),
    ],
)
def test_status_of_is_case_insensitive(word: str, want: TaskStatus) -> None:
    # Given a provider status word in any case
    # When it is looked up
    # Then it maps to our status
    assert status_of(word) is want


@pytest.mark.parametrize("word", ["rendering", "done", "", "   ", None, "task_not_exist"])
def test_status_of_unknown_word_is_none(word: str | None) -> None:
    # Given a word no dialect uses (or none)
    # When it is looked up
    # Then there is no status for it
    assert status_of(word) is None
