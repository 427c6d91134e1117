"""Fixtures for the API tests: the embedded stack behind the local API front door, two tenants, and ways to
look behind the API (jobs table, executions, S3, the events queue, what the simulator received).

One stack per test module: starting one takes about a second, and a module's tests share its jobs.
"""

from __future__ import annotations

import ast
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
import pytest
import requests

from functions.common.concurrency import SLOTS_KEY_PREFIX
from local.api_server import LocalApiServer
from local.stack import LocalStack, local_stack

OWNER_A = "tenant-a"
OWNER_B = "tenant-b"
SIMULATOR_TIME_SCALE = 0.005
"""A 60-180 s render takes 0.3-0.9 s: the 1 s polling interval is what a job waits for."""

SIMULATED_POLL_INTERVAL = 1
CREATE_PATHS = ("/v1/videos", "/runwayml/v1/image_to_video")
"""The simulator's create endpoints (Kling's are every POST under /kling/v1/videos/)."""

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.1, what: str = "it") -> T:
    """The first truthy answer of ``probe``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(interval)


def finished(client: openai.OpenAI, video_id: str) -> openai.types.Video | None:
    """The video once it has completed or failed; None while it runs."""
    video = client.videos.retrieve(video_id)
    return video if video.status in ("completed", "failed") else None


def is_create(request: dict[str, Any]) -> bool:
    path = str(request["path"])
    return request["method"] == "POST" and (path in CREATE_PATHS or path.startswith("/kling/v1/videos/"))


@dataclass
class EventLog:
    """Every event the stack put on its queue, drained as it arrives and kept for every test to read."""

    stack: LocalStack
    seen: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        url = self.stack.resources.events_queue_url
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return self.seen
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        return [event for event in self.drain() if event.get("detail", {}).get("job_id") == job_id]


@dataclass
class ApiStack:
    """The running stack, its API server and one API key per owner."""

    stack: LocalStack
    server: LocalApiServer
    keys: dict[str, str]
    events: EventLog

    @property
    def root_url(self) -> str:
        """The server without /v1 (docs/openapi.json's paths start with /v1)."""
        return self.server.base_url.removesuffix("/v1")

    def client(self, owner: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url, api_key=self.keys[owner], max_retries=0, timeout=30)

    def auth(self, owner: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[owner]}"}

    # --- behind the API -------------------------------------------------------------------------------------

    def sim_requests(self) -> list[dict[str, Any]]:
        """Every request the simulator received (its /_sim/requests summary), without our own query."""
        answer = requests.get(f"{self.stack.provider_base_url}/_sim/requests", timeout=10)
        answer.raise_for_status()
        return [r for r in answer.json()["requests"] if r["dialect"] != "control"]

    def sim_creates(self) -> list[dict[str, Any]]:
        return [r for r in self.sim_requests() if is_create(r)]

    def job_items(self) -> list[dict[str, Any]]:
        """Every job record in the table (deleted ones too, not the provider slot counters), as JSON values."""
        table = self.stack.jobs.table
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {}
        while True:
            page = table.scan(**scan)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                jobs = [item for item in items if not str(item["job_id"]).startswith(SLOTS_KEY_PREFIX)]
                return [json.loads(json.dumps(item, default=float)) for item in jobs]
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def job_ids(self) -> set[str]:
        return {str(item["job_id"]) for item in self.job_items()}

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.stack.client("stepfunctions")
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"stateMachineArn": self.stack.resources.state_machine_arn}
        while True:
            page = sfn.list_executions(**kwargs)
            found += page["executions"]
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]

    def execution_names(self) -> list[str]:
        return [str(e["name"]) for e in self.executions()]

    def execution_status(self, job_id: str) -> str:
        arn = self.stack.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
        return str(self.stack.client("stepfunctions").describe_execution(executionArn=arn)["status"])

    def s3_object(self, s3_uri: str) -> bytes | None:
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        s3 = self.stack.client("s3")
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return body

    def stop_running_executions(self) -> None:
        sfn = self.stack.client("stepfunctions")
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                sfn.stop_execution(executionArn=execution["executionArn"], cause="test module finished")


def serialised_ast_parse(patch: pytest.MonkeyPatch) -> None:
    """One ast.parse at a time while the stack runs.

    The AST constructor's recursion depth lives in interpreter-wide state, and two threads parsing at once can
    corrupt it: ``SystemError: AST constructor recursion depth mismatch`` (python/cpython#106905). moto's Step
    Functions executor parses the ASL in its execution threads (``ast.literal_eval``) while Hypothesis, in the
    test thread, parses lambda sources to describe strategies: schemathesis runs failed at random without this.
    """
    original = ast.parse
    lock = threading.Lock()

    def parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    patch.setattr(ast, "parse", parse)


def reset_moto() -> None:
    """moto keeps its backends in this process across servers: a second stack would find the first one's
    tables (ResourceInUseException). Each module's stack starts from nothing."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@pytest.fixture(scope="module")
def api() -> Iterator[ApiStack]:
    """Given the embedded stack (moto, Step Functions, the workflow Lambdas, the CometAPI simulator) behind the
    local API server, with one API key for each of two owners."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("COMETAPI_KEY", raising=False)  # the simulator, never the real provider
        serialised_ast_parse(patch)
        reset_moto()
        try:
            with (
                local_stack(
                    simulated_poll_interval=SIMULATED_POLL_INTERVAL, simulator_time_scale=SIMULATOR_TIME_SCALE
                ) as stack,
                LocalApiServer(stack) as server,
            ):
                keys = {owner: server.keys.create(owner, f"{owner} key")[0] for owner in (OWNER_A, OWNER_B)}
                running = ApiStack(stack=stack, server=server, keys=keys, events=EventLog(stack))
                try:
                    yield running
                finally:
                    running.stop_running_executions()
        finally:
            reset_moto()


@pytest.fixture(scope="module")
def client_a(api: ApiStack) -> openai.OpenAI:
    return api.client(OWNER_A)


@pytest.fixture(scope="module")
def client_b(api: ApiStack) -> openai.OpenAI:
    return api.client(OWNER_B)
