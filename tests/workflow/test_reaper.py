"""A job whose execution ended outside the state machine's own paths still ends once, with its event."""

from __future__ import annotations

import time

import boto3

from functions.common.workflow import workflow_dependencies
from functions.reaper.logic import reap_execution
from tests.workflow.harness import WorkflowHarness


def wait_until_waiting(workflow: WorkflowHarness, job_id: str, timeout: float = 10.0) -> None:
    """Until the execution sits in its Wait state (between two Lambda calls)."""
    deadline = time.monotonic() + timeout
    while "WaitStateEntered Wait" not in workflow.history(job_id):
        assert time.monotonic() < deadline, "\n".join(workflow.history(job_id))
        time.sleep(0.05)


def test_a_timed_out_execution_fails_the_job_with_timeout_and_one_event(workflow: WorkflowHarness) -> None:
    # Given a submitted job whose execution is then stopped from outside (as a timeout would), while it waits
    # ten minutes for its first poll: stopped during a Lambda call instead, moto's executor sometimes fails the
    # execution with States.Runtime rather than aborting it
    job_id = workflow.start({"model": "veo3-fast", "prompt": "A glacier calving", "poll_interval_seconds": 600})
    wait_until_waiting(workflow, job_id)
    assert workflow.jobs.require(job_id).status.value == "in_progress"
    sfn = boto3.client("stepfunctions")
    sfn.stop_execution(executionArn=workflow.execution_arn(job_id), cause="test")
    assert workflow.wait(job_id) == "ABORTED"
    # When the reaper gets Step Functions' status change for it, as TIMED_OUT
    reap_execution({"status": "TIMED_OUT", "name": job_id}, workflow_dependencies())
    # Then the job failed with code timeout, and exactly one failed event went out
    record = workflow.jobs.require(job_id)
    assert (record.status.value, record.error_code) == ("failed", "timeout")
    events = workflow.events_for(job_id)
    assert [e["detail-type"] for e in events] == ["Video Generation Failed"]
    # And reaping it again changes nothing and emits nothing
    reap_execution({"status": "TIMED_OUT", "name": job_id}, workflow_dependencies())
    assert workflow.jobs.require(job_id).error_code == "timeout"
    assert workflow.events_for(job_id) == []


def test_a_finished_job_and_other_statuses_are_left_alone(workflow: WorkflowHarness) -> None:
    # Given a completed job
    run = workflow.run({"model": "veo3-fast", "prompt": "A lighthouse"})
    # When the reaper hears about it (SUCCEEDED needs nothing; a late FAILED finds it terminal)
    assert reap_execution({"status": "SUCCEEDED", "name": run.job_id}, workflow_dependencies()) is None
    reap_execution({"status": "FAILED", "name": run.job_id}, workflow_dependencies())
    # Then it stays completed with its one event
    assert workflow.jobs.require(run.job_id).status.value == "completed"
    assert workflow.events_for(run.job_id) == []
    # And an execution that is not a job is ignored
    assert reap_execution({"status": "TIMED_OUT", "name": "not-a-job"}, workflow_dependencies()) is None
