"""Getting the finished video into S3: expired links, broken downloads, error pages, CometAPI's /content."""

from __future__ import annotations

import pytest

from tests.workflow.harness import WorkflowHarness
from tests.workflow.outcomes import assert_completed, assert_failed


@pytest.mark.parametrize("model", ["veo3-fast", "kling-v1-6"])
def test_expired_output_url_fails_as_output_expired(workflow: WorkflowHarness, model: str) -> None:
    # Given a finished task whose download link has already expired (403)
    # When the job runs
    run = workflow.run({"model": model, "prompt": "A meadow at noon [sim:expire]"})
    # Then the job failed as output_expired, telling the user to generate again, and nothing was stored
    detail = assert_failed(workflow, run, "output_expired")
    assert "expired" in detail["error"]["message"]
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
