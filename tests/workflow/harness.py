"""Runs the real ASL on moto's Step Functions executor, Lambda states calling the real handlers in-process."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3

from functions.common.job_start import new_job_id, start_job
from functions.common.jobs import JobRecord, JobRepository
from functions.common.video_request import parse_video_request
from local.lambdas import LambdaRegistry
from local.resources import LocalResources
from local.simulator import CometApiSimulator


@dataclass
class JobRun:
    job_id: str
    execution_status: str
    record: JobRecord
    events: list[dict[str, Any]]
    """Every event the bus delivered for this job (through the rule to the SQS queue)."""


@dataclass
class WorkflowHarness:
    resources: LocalResources
    registry: LambdaRegistry
    simulator: CometApiSimulator

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(boto3.resource("dynamodb").Table(self.resources.table))

    def start(self, fields: dict[str, Any], *, job_id: str | None = None) -> str:
        request = parse_video_request(fields, resolve=lambda host: ["93.184.216.34"], trusted=True)
        record = start_job(
            request,
            jobs=self.jobs,
            sfn=boto3.client("stepfunctions"),
            state_machine_arn=self.resources.state_machine_arn,
            job_id=job_id or new_job_id(),
        )
        return record.job_id

    def wait(self, job_id: str, timeout: float = 30.0) -> str:
        sfn = boto3.client("stepfunctions")
        arn = self.execution_arn(job_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                return status
            time.sleep(0.05)
        raise TimeoutError(f"execution {job_id} still running after {timeout}s")

    def execution_arn(self, job_id: str) -> str:
        return self.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"

    def run(self, fields: dict[str, Any], *, timeout: float = 30.0) -> JobRun:
        job_id = self.start(fields)
        status = self.wait(job_id, timeout)
        record = self.jobs.require(job_id)
        return JobRun(job_id, status, record, self.events_for(job_id))

    def events_for(self, job_id: str) -> list[dict[str, Any]]:
        """Drain the queue; events of other jobs are kept for their own callers."""
        sqs = boto3.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=self.resources.events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = answer.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                event = json.loads(message["Body"])
                if event.get("detail", {}).get("job_id") == job_id:
                    found.append(event)
                    sqs.delete_message(QueueUrl=self.resources.events_queue_url, ReceiptHandle=message["ReceiptHandle"])
