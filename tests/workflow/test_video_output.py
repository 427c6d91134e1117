"""Getting the finished video into S3: expired links, broken downloads, error pages, CometAPI's /content."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.workflow.harness import WorkflowHarness
from tests.workflow.outcomes import assert_completed, assert_failed


def task_timeline(workflow: WorkflowHarness, task_id: str) -> list[str]:
    """The simulator's view of one task after its create, in order: each status poll, each download (with
    the status it answered). One task per test, so every download is this task's."""
    polls = {id(r) for r in workflow.polls_of(task_id)}
    timeline = []
    for request in workflow.simulator.received:
        if id(request) in polls:
            timeline.append("poll")
        elif request.dialect == "media" and request.method == "GET":
            timeline.append(f"download {request.status}")
    return timeline


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6"])
def test_expired_output_url_fails_as_output_expired(workflow: WorkflowHarness, model: str) -> None:
    # Given a finished task whose download link has already expired (403), and stays the same on every poll
    # When the job runs
    run = workflow.run({"model": model, "prompt": "A meadow at noon [sim:expire]"})
    # Then the job failed as output_expired, telling the user to generate again, and nothing was stored
    detail = assert_failed(workflow, run, "output_expired")
    assert "expired" in detail["error"]["message"]
    assert workflow.incomplete_uploads() == []
    # And before giving up, Store re-polled the task once for a fresh link (Poll polled once: time_scale 0),
    # got the same one back, and did not download it again
    assert len(workflow.registry.calls("videogen-poll")) == 1
    assert task_timeline(workflow, run.task_id()) == ["poll", "download 403", "poll"]


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6"])
def test_expired_output_url_is_replaced_by_a_fresh_one_from_a_second_poll(
    workflow: WorkflowHarness, model: str
) -> None:
    # Given a finished task whose first download link has expired (403), and whose next poll hands out a fresh one
    # When the job runs
    run = workflow.run({"model": model, "prompt": "A meadow at noon [sim:expire-once]"})
    # Then it completed, and S3 holds the bytes the simulator served for the task
    assert_completed(workflow, run)
    # And one Store did it: the first link answered 403, Store re-polled once, and the fresh link worked
    assert [c.error_type for c in workflow.registry.calls("videogen-store")] == [None]
    assert len(workflow.registry.calls("videogen-poll")) == 1
    assert task_timeline(workflow, run.task_id()) == ["poll", "download 403", "poll", "download 200"]
    refused, fresh = workflow.downloads()
    assert refused.path != fresh.path
    assert workflow.incomplete_uploads() == []


def test_truncated_download_is_retried_from_scratch(workflow: WorkflowHarness, sfn_retry_waits: list[float]) -> None:
    # Given a download cut short half-way the first time, complete the second time
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A windmill turning [sim:truncate-once]"})
    # Then Store failed once as ProviderUnavailableError, Step Functions retried it, and the second download
    # stored the whole video (its sha256 is the served video's)
    assert_completed(workflow, run)
    assert [c.error_type for c in workflow.registry.calls("videogen-store")] == ["ProviderUnavailableError", None]
    assert len(sfn_retry_waits) == 1
    assert len(workflow.downloads()) == 2
    # And nothing half-written was left behind
    assert workflow.incomplete_uploads() == []


class _RateLimited(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def rate_limited_host() -> Iterator[str]:
    """A download host on 127.0.0.1 that answers every GET with HTTP 429: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RateLimited)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_rate_limited_download_is_retried(
    workflow: WorkflowHarness, sfn_retry_waits: list[float], rate_limited_host: str
) -> None:
    # Given a finished task whose download host answers the first download with HTTP 429 (the simulator cannot
    # rate-limit its media URLs, so the first Store gets a rate-limiting host on loopback for the same path)
    def rate_limit_first_download(event: dict[str, Any], calls: int) -> None:
        if calls == 1:
            path = event["output"]["url"].split("/", 3)[3]
            event["output"]["url"] = f"{rate_limited_host}/{path}"

    workflow.intercept("store", before=rate_limit_first_download)
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A windmill at dusk"})
    # Then Store failed once as ProviderRateLimitedError, Step Functions retried it, and the retry stored the video
    assert_completed(workflow, run)
    assert [c.error_type for c in workflow.registry.calls("videogen-store")] == ["ProviderRateLimitedError", None]
    assert len(sfn_retry_waits) == 1
    assert workflow.incomplete_uploads() == []


def test_download_that_keeps_breaking_fails_as_provider_unavailable(
    workflow: WorkflowHarness, sfn_retry_waits: list[float]
) -> None:
    # Given a download that is cut short every time
    # When the job runs
    run = workflow.run({"model": "veo3-fast", "prompt": "A windmill turning [sim:truncate]"})
    # Then Store was tried as often as the ASL allows (1 + MaxAttempts 4), then the job failed, storing nothing
    assert_failed(workflow, run, "provider_unavailable")
    assert len(workflow.registry.calls("videogen-store")) == 5
    assert len(sfn_retry_waits) == 4
    assert workflow.incomplete_uploads() == []


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6"])
def test_html_instead_of_video_fails_as_output_invalid(workflow: WorkflowHarness, model: str) -> None:
    # Given a download link that answers 200 with an HTML page instead of the video
    # When the job runs
    run = workflow.run({"model": model, "prompt": "A meadow at noon [sim:wrong-type]"})
    # Then the job failed as output_invalid and no page was saved as a video
    detail = assert_failed(workflow, run, "output_invalid")
    assert "text/html" in detail["error"]["message"]
    assert workflow.incomplete_uploads() == []


def test_completed_without_url_is_fetched_from_content_with_the_key(workflow: WorkflowHarness) -> None:
    # Given a /v1/videos task that completes without video_url: the video is only at /content
    # When the job runs
    run = workflow.run({"model": "sora-2", "prompt": "A paper boat on a stream [sim:no-url]"})
    # Then the video was fetched from /content with the API key, and stored
    assert_completed(workflow, run)
    content = [r for r in workflow.simulator.received if r.path == f"/v1/videos/{run.task_id()}/content"]
    assert len(content) == 1
    assert content[0].header("authorization") == f"Bearer {workflow.simulator.api_key}"
    assert workflow.downloads() == []
