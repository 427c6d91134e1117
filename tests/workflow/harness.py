"""Runs the real ASL on moto's Step Functions executor, Lambda states calling the real handlers in-process."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from functions.common import workflow as workflow_module
from functions.common.job_start import new_job_id, start_job
from functions.common.jobs import JobRecord, JobRepository
from functions.common.video_request import parse_video_request
from functions.common.workflow import WorkflowDeps
from functions.providers.catalog import CATALOG_PATH, Catalog, parse_catalog
from local.lambdas import Handler, LambdaRegistry
from local.resources import LocalResources
from local.simulator import CometApiSimulator, ReceivedRequest

STEP_FUNCTIONS = ("submit", "poll", "store", "finalize")


@dataclass
class JobRun:
    job_id: str
    execution_status: str
    record: JobRecord
    events: list[dict[str, Any]]
    """Every event the bus delivered for this job (through the rule to the SQS queue)."""
    history: list[str] = field(default_factory=list)
    """The execution's history, one line per event (see WorkflowHarness.history): print it when debugging."""

    def describe(self) -> str:
        """What happened, for assertion messages: the record's verdict and the execution history."""
        verdict = f"job {self.job_id}: {self.record.status.value} {self.record.error_code}: {self.record.error_message}"
        return "\n".join([verdict, *self.history])

    def task_id(self, attempt: int = 0) -> str:
        task = self.record.attempts[attempt].task
        assert task is not None, self.describe()
        return str(task["task_id"])


class ShiftedClock:
    """``time.time()`` plus an offset the test moves forward.

    It has to stay on the wall clock's basis: ProviderTask.submitted_at comes from the adapter's own clock
    (``time.time``), and Poll measures elapsed time as ``deps.clock() - submitted_at``.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def catalog_with_polling(**polling: int) -> Catalog:
    """The real catalog with these ``polling`` values for every model (e.g. ``stuck_queue_seconds=0``)."""
    raw = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    for spec in raw["models"].values():
        spec["polling"] = {**spec["polling"], **polling}
    return parse_catalog(raw)


@dataclass
class WorkflowHarness:
    resources: LocalResources
    registry: LambdaRegistry
    simulator: CometApiSimulator
    monkeypatch: pytest.MonkeyPatch | None = None

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(boto3.resource("dynamodb").Table(self.resources.table))

    def start(
        self,
        fields: dict[str, Any],
        *,
        job_id: str | None = None,
        resolve: Callable[[str], list[str]] | None = None,
        trusted: bool = True,
    ) -> str:
        """Validate (as every entry point does), create the record, start the execution."""
        request = parse_video_request(fields, resolve=resolve or (lambda host: ["93.184.216.34"]), trusted=trusted)
        record = start_job(
            request,
            jobs=self.jobs,
            sfn=boto3.client("stepfunctions"),
            state_machine_arn=self.resources.state_machine_arn,
            job_id=job_id or new_job_id(),
        )
        return record.job_id

    def create_record(self, fields: dict[str, Any], *, job_id: str | None = None) -> str:
        """Validate and create the job's record as an entry point does, without starting its execution: the test
        then runs the steps itself through ``invoke``."""
        request = parse_video_request(fields, resolve=lambda host: ["93.184.216.34"], trusted=True)
        record = JobRecord(
            job_id=job_id or new_job_id(),
            model=request.model,
            request=request.model_dump(mode="json", exclude_none=True),
        )
        self.jobs.create(record)
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
        raise TimeoutError(f"execution {job_id} still running after {timeout}s:\n" + "\n".join(self.history(job_id)))

    def execution_arn(self, job_id: str) -> str:
        return self.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"

    def run(self, fields: dict[str, Any], *, timeout: float = 30.0) -> JobRun:
        job_id = self.start(fields)
        status = self.wait(job_id, timeout)
        record = self.jobs.require(job_id)
        return JobRun(job_id, status, record, self.events_for(job_id), self.history(job_id))

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

    # -- what happened

    def history(self, job_id: str) -> list[str]:
        """The execution history from get_execution_history, one compact line per event."""
        sfn = boto3.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=self.execution_arn(job_id), maxResults=1000)["events"]
        return [_history_line(dict(event)) for event in events]

    def stored_video(self, record: JobRecord) -> bytes:
        assert record.s3_bucket is not None, f"job {record.job_id} stored nothing"
        assert record.s3_key is not None, f"job {record.job_id} stored nothing"
        body: bytes = boto3.client("s3").get_object(Bucket=record.s3_bucket, Key=record.s3_key)["Body"].read()
        return body

    def video_key(self, job_id: str) -> str:
        return f"videos/{job_id}.mp4"

    def object_exists(self, key: str) -> bool:
        answer = boto3.client("s3").list_objects_v2(Bucket=self.resources.bucket, Prefix=key)
        return any(item["Key"] == key for item in answer.get("Contents", []))

    def incomplete_uploads(self) -> list[str]:
        answer = boto3.client("s3").list_multipart_uploads(Bucket=self.resources.bucket)
        return [upload["Key"] for upload in answer.get("Uploads", [])]

    def polls_of(self, task_id: str) -> list[ReceivedRequest]:
        """The status polls the simulator received for one task (by its provider task id)."""
        return [r for r in self.simulator.received if r.method == "GET" and r.path.rstrip("/").endswith(task_id)]

    def downloads(self) -> list[ReceivedRequest]:
        return [r for r in self.simulator.received if r.dialect == "media" and r.method == "GET"]

    # -- steering

    def upload_image(self, data: bytes, name: str = "frame.png", media_type: str = "image/png") -> dict[str, str]:
        """Put an input image under inputs/ and return the request's reference to it."""
        key = f"inputs/{new_job_id()}/{name}"
        boto3.client("s3").put_object(Bucket=self.resources.bucket, Key=key, Body=data, ContentType=media_type)
        return {"s3_key": key, "media_type": media_type}

    def invoke(self, function: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Invoke a workflow Lambda directly (as a Lambda retry or a late duplicate would): result, error type."""
        answer, error_type = self.registry.invoke(_local_name(function), json.dumps(payload))
        result: dict[str, Any] = json.loads(answer)
        return result, error_type

    def intercept(
        self,
        function: str,
        *,
        before: Callable[[dict[str, Any], int], None] | None = None,
        after: Callable[[dict[str, Any], Any, int], None] | None = None,
    ) -> None:
        """Run ``before(event, n)`` / ``after(event, result, n)`` around the n-th (1-based) call of a function.

        ``after`` runs only when the handler returned; ``n`` counts every call of that function.
        """
        name = _local_name(function)
        original: Handler = self.registry.handlers[name]
        calls = 0

        def wrapped(event: dict[str, Any], context: Any) -> Any:
            nonlocal calls
            calls += 1
            if before is not None:
                before(event, calls)
            result = original(event, context)
            if after is not None:
                after(event, result, calls)
            return result

        self.registry.handlers[name] = wrapped

    def use_dependencies(self, **changes: Any) -> WorkflowDeps:
        """Make every workflow Lambda use ``WorkflowDeps.from_environment()`` with these fields replaced.

        ``step_handler`` looks ``workflow_dependencies`` up in functions.common.workflow at each call, so
        replacing that module attribute reaches every handler.
        """
        assert self.monkeypatch is not None, "the workflow fixture passes its monkeypatch"
        deps = dataclasses.replace(WorkflowDeps.from_environment(), **changes)
        self.monkeypatch.setattr(workflow_module, "workflow_dependencies", lambda: deps)
        return deps


def _local_name(function: str) -> str:
    assert function in STEP_FUNCTIONS, f"{function!r} is not one of {STEP_FUNCTIONS}"
    return f"videogen-{function}"


def _history_line(event: dict[str, Any]) -> str:
    kind = str(event["type"])
    details: dict[str, Any] = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
    if "name" in details:
        return f"{kind} {details['name']}"
    if "error" in details or "cause" in details:
        return f"{kind} error={details.get('error')} cause={str(details.get('cause'))[:400]}"
    if "output" in details:
        try:
            payload = json.loads(details["output"])
        except ValueError:
            payload = {}
        inner = payload.get("Payload", payload) if isinstance(payload, dict) else {}
        if isinstance(inner, dict):
            shown = {k: inner[k] for k in ("attempt", "outcome", "wait_seconds", "error") if k in inner}
            return f"{kind} {json.dumps(shown)[:400]}"
    return kind
