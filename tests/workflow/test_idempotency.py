"""Steps run again (a Lambda retry, a duplicate delivery, a late invocation) change nothing and spend nothing."""

from __future__ import annotations

from typing import Any

import pytest

from functions.common.errors import DuplicateJobError
from functions.common.jobs import JobRecord, JobRepository, JobStatus
from tests.workflow.harness import WorkflowHarness
from tests.workflow.outcomes import assert_completed, assert_failed


def test_submit_invoked_twice_for_the_same_attempt_creates_one_task(workflow: WorkflowHarness) -> None:
    # Given a Submit that is delivered twice with the same payload while the job runs (a Lambda retry)
    repeats: list[tuple[Any, str | None]] = []

    def submit_again(event: dict[str, Any], result: Any, calls: int) -> None:
        if calls == 1:
            repeats.append(workflow.invoke("submit", event))

    workflow.intercept("submit", after=submit_again)
    # When the job runs
    run = workflow.run({"model": "kling-v1-6", "prompt": "A lantern on a jetty"})
    # Then the repeat answered the task already created, and the provider saw one create
    assert_completed(workflow, run)
    ((repeat, error_type),) = repeats
    assert error_type is None
    assert repeat["outcome"] == "submitted"
    assert len(workflow.simulator.creates()) == 1
    # And once more after the job finished: still one create, and the record is untouched
    after, error_type = workflow.invoke("submit", {"job_id": run.job_id, "attempt": 0})
    assert (after["outcome"], error_type) == ("finished", None)
    assert len(workflow.simulator.creates()) == 1
    assert workflow.jobs.require(run.job_id) == run.record


def test_starting_the_same_job_twice_is_refused(workflow: WorkflowHarness) -> None:
    # Given a job already started
    fields = {"model": "veo3-fast", "prompt": "A lantern on a jetty"}
    job_id = workflow.start(fields)
    # When the same job id is started again
    with pytest.raises(DuplicateJobError):
        workflow.start(fields, job_id=job_id)
    # Then one execution ran, one task was created
    assert workflow.wait(job_id) == "SUCCEEDED"
    assert len(workflow.simulator.creates()) == 1
    assert [e["detail-type"] for e in workflow.events_for(job_id)] == ["Video Generation Completed"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"outcome": "stored"}, id="as-after-store"),
        pytest.param({"error": {"Error": "ProviderError", "Cause": '{"errorMessage": "late"}'}}, id="with-an-error"),
    ],
)
def test_finalize_again_after_the_job_finished_emits_nothing(
    workflow: WorkflowHarness, payload: dict[str, Any]
) -> None:
    # Given a completed job and its one event
    run = workflow.run({"model": "veo3-fast", "prompt": "A lantern on a jetty"})
    assert_completed(workflow, run)
    # When Finalize is invoked again (a duplicate delivery, or a late one carrying an error)
    answer, error_type = workflow.invoke("finalize", {"job_id": run.job_id, "attempt": 0, **payload})
    # Then it succeeds quietly: no second event, the record is unchanged
    assert (answer["outcome"], error_type) == ("finished", None)
    assert workflow.events_for(run.job_id) == []
    assert workflow.jobs.require(run.job_id) == run.record


def test_finalize_again_after_a_failed_job_emits_nothing(workflow: WorkflowHarness) -> None:
    # Given a job that failed (content filter) and its one Failed event
    run = workflow.run({"model": "veo3-fast", "prompt": "Something filtered [sim:filter]"})
    assert_failed(workflow, run, "content_filtered")
    # When Finalize runs again
    workflow.invoke("finalize", {"job_id": run.job_id, "attempt": 0})
    # Then there is still exactly one event, and the record is unchanged
    assert workflow.events_for(run.job_id) == []
    assert workflow.jobs.require(run.job_id) == run.record


def test_late_poll_after_the_job_finished_changes_nothing(workflow: WorkflowHarness) -> None:
    # Given a completed job
    run = workflow.run({"model": "veo3-fast", "prompt": "A lantern on a jetty"})
    assert_completed(workflow, run)
    requests_before = len(workflow.simulator.received)
    # When a Poll for it arrives late
    answer, error_type = workflow.invoke("poll", {"job_id": run.job_id, "attempt": 0, "outcome": "submitted"})
    # Then it answers "finished" without asking the provider, and the record stays completed
    assert (answer["outcome"], error_type) == ("finished", None)
    assert len(workflow.simulator.received) == requests_before
    assert workflow.jobs.require(run.job_id) == run.record


class SnapshotJobs(JobRepository):
    """A repository whose reads return an old snapshot of the job: a Poll that read the record just before
    the job finished, and writes after."""

    def __init__(self, repository: JobRepository, snapshot: JobRecord):
        super().__init__(repository.table)
        self.snapshot = snapshot

    def require(self, job_id: str) -> JobRecord:
        return self.snapshot


@pytest.mark.parametrize("prompt", ["A lantern on a jetty", "A lantern on a jetty [sim:filter]"])
def test_poll_racing_the_end_cannot_move_the_record_back(workflow: WorkflowHarness, prompt: str) -> None:
    # Given a finished job, and a Poll that still sees it in progress (it read the record before the end)
    run = workflow.run({"model": "veo3-fast", "prompt": prompt})
    assert run.record.status.is_terminal, run.describe()
    stale = run.record.model_copy(update={"status": JobStatus.IN_PROGRESS, "finished_at": None})
    deps = workflow.use_dependencies()
    workflow.use_dependencies(jobs=SnapshotJobs(deps.jobs, stale))
    # When that Poll writes what the provider says (succeeded, or failed)
    answer, error_type = workflow.invoke("poll", {"job_id": run.job_id, "attempt": 0, "outcome": "submitted"})
    # Then its conditional write is refused: it answers "finished" and the record keeps its terminal status
    assert error_type is None, answer
    assert answer["outcome"] == "finished"
    assert workflow.jobs.require(run.job_id) == run.record


class CancelledWhileStoring(JobRepository):
    """The real repository, except that the job is cancelled (as the API would) right after Store read it."""

    def require(self, job_id: str) -> JobRecord:
        record = super().require(job_id)
        if record.status is JobStatus.STORING:
            self.transition(job_id, JobStatus.CANCELLED, error_code="cancelled", error_message="Cancelled by the user.")
        return record


def test_store_racing_a_cancel_does_not_complete_the_job(workflow: WorkflowHarness) -> None:
    # Given a job cancelled through the API while Store is downloading its video
    deps = workflow.use_dependencies()
    workflow.use_dependencies(jobs=CancelledWhileStoring(deps.jobs.table))
    # When the workflow finishes
    run = workflow.run({"model": "veo3-fast", "prompt": "A lantern on a jetty"})
    # Then Store did download, but could not record the video on a cancelled job
    assert len(workflow.downloads()) == 1
    assert run.record.status == "cancelled", run.describe()
    assert run.record.s3_key is None
    assert run.record.error_code == "cancelled"
    # And the one event says cancelled
    assert [(e["detail-type"], e["detail"]["status"]) for e in run.events] == [("Video Generation Failed", "cancelled")]
