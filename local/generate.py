"""`videogen generate`: one video through the real pipeline on the embedded local stack.

The request is validated before anything starts (exit 2, nothing submitted); local images are uploaded to
the stack's bucket under inputs/, as the API does; the job record is created and the execution started
exactly as in AWS; progress is read from the job record; the video is copied from (local) S3 to --out.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from functions.common.cancel import cancel_job
from functions.common.create_body import upload_images
from functions.common.errors import OutputInvalidError
from functions.common.job_start import new_job_id, start_job
from functions.common.jobs import JobRecord
from functions.common.video_request import parse_video_request
from functions.common.workflow import workflow_dependencies
from functions.providers.catalog import load_catalog
from infra.config import INPUT_PREFIX
from local.outcome import GenerateOutcome
from local.stack import LocalStack, local_stack

SIMULATOR_POLL_INTERVAL = 1
"""With the simulator, renders take seconds: poll every second instead of the real-world policy."""
WATCH_INTERVAL = 0.2


class GenerateInterrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Ctrl-C: the job was cancelled; carries what the user is shown."""

    def __init__(self, outcome: GenerateOutcome):
        super().__init__(outcome.id)
        self.outcome = outcome


def generate(
    fields: dict[str, Any], *, out: Path | None, poll_interval: int | None, console: Console
) -> GenerateOutcome:
    request = parse_video_request(fields)
    spec = load_catalog().models[request.model]
    if spec.deprecated:
        console.print(f"[yellow]warning[/yellow] {spec.id} is deprecated: {spec.deprecated.note}")
    with local_stack(poll_interval=poll_interval, simulated_poll_interval=SIMULATOR_POLL_INTERVAL) as stack:
        if stack.simulated:
            console.print("[dim]COMETAPI_KEY is not set: using the built-in CometAPI simulator[/dim]")
        else:
            console.print(f"[dim]using CometAPI at {stack.provider_base_url}[/dim]")
        job_id = new_job_id()
        request = upload_images(
            request, job_id, s3=stack.client("s3"), bucket=stack.resources.bucket, input_prefix=INPUT_PREFIX
        )
        # Ctrl-C from here on cancels the job: it may arrive during start_job, or right after the "started"
        # line (exactly when a user or a script reacts to it); only a job with no record yet was never started.
        try:
            start_job(
                request,
                jobs=stack.jobs,
                sfn=stack.client("stepfunctions"),
                state_machine_arn=stack.resources.state_machine_arn,
                job_id=job_id,
            )
            console.print(f"job [bold]{job_id}[/bold] started on {spec.id}")
            record = watch(stack, job_id, console)
        except KeyboardInterrupt:
            if stack.jobs.get(job_id) is None:
                raise
            record = cancel_job(
                job_id,
                deps=workflow_dependencies(),
                sfn=stack.client("stepfunctions"),
                state_machine_arn=stack.resources.state_machine_arn,
                reason="Cancelled with Ctrl-C.",
            )
            outcome = outcome_of(record, events_for(stack, job_id))
            report(outcome, console)
            raise GenerateInterrupted(outcome) from None
        outcome = outcome_of(record, events_for(stack, job_id))
        if record.status == "completed":
            target = out or Path("output") / f"{job_id}.mp4"
            copy_video(stack, record, target)
            outcome.file = str(target)
    report(outcome, console)
    return outcome


def watch(stack: LocalStack, job_id: str, console: Console) -> JobRecord:
    """Follow the job record until it is terminal: a live line on a terminal, plain lines otherwise."""
    started = time.monotonic()
    last_shown: tuple[str, int] | None = None
    with Live(Text(""), console=console, transient=True, auto_refresh=False) as live:
        while True:
            record = stack.jobs.require(job_id)
            line = progress_line(record, time.monotonic() - started)
            if console.is_terminal:
                live.update(Text(line), refresh=True)
            elif (record.status.value, record.progress) != last_shown:
                console.print(line, highlight=False, soft_wrap=True)
            last_shown = (record.status.value, record.progress)
            if record.status.is_terminal:
                return record
            time.sleep(WATCH_INTERVAL)


def progress_line(record: JobRecord, elapsed: float) -> str:
    parts = [f"{record.model}", record.status.value.replace("_", " "), f"{record.progress}%", f"{elapsed:.0f}s"]
    if record.next_poll_at is not None and not record.status.is_terminal:
        parts.append(f"next poll in {max(0.0, record.next_poll_at - time.time()):.0f}s")
    return " | ".join(parts)


def events_for(stack: LocalStack, job_id: str, wait_seconds: float = 2.0) -> list[dict[str, Any]]:
    """The job's terminal event, as a subscriber to the bus receives it (the local stack's SQS queue)."""
    sqs = stack.client("sqs")
    deadline = time.monotonic() + wait_seconds
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=stack.resources.events_queue_url, MaxNumberOfMessages=10)
        for message in answer.get("Messages", []):
            event = json.loads(message["Body"])
            if event.get("detail", {}).get("job_id") == job_id:
                found.append(event)
        if not found:
            time.sleep(0.1)
    return found


def outcome_of(record: JobRecord, events: list[dict[str, Any]]) -> GenerateOutcome:
    error = {"code": record.error_code or "", "message": record.error_message or ""} if record.error_code else None
    return GenerateOutcome(
        id=record.job_id,
        status=record.status.value,
        model=record.model,
        s3_uri=record.s3_uri,
        bytes=record.bytes,
        sha256=record.sha256,
        cost_usd=record.cost_usd,
        error=error,
        event=events[0] if events else None,
    )


def copy_video(stack: LocalStack, record: JobRecord, target: Path) -> None:
    """Copy from (local) S3 and check the copy is byte for byte what was stored."""
    assert record.s3_bucket is not None
    assert record.s3_key is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    stack.client("s3").download_file(record.s3_bucket, record.s3_key, str(target))
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != record.sha256:
        raise OutputInvalidError(f"the copy at {target} does not match the stored video's sha256")


def report(outcome: GenerateOutcome, console: Console) -> None:
    if outcome.event is not None:
        detail = outcome.event.get("detail", {})
        code = (detail.get("error") or {}).get("code")
        console.print(
            f"event: [bold]{outcome.event.get('detail-type')}[/bold]{f' ({code})' if code else ''} on the videogen bus "
            f"(id {detail.get('event_id')})",
            soft_wrap=True,
        )
    if outcome.status == "completed":
        lines = [
            f"[green]completed[/green] {outcome.file}",
            f"  size     {outcome.bytes} bytes",
            f"  sha256   {outcome.sha256}",
            f"  stored   {outcome.s3_uri} (the local stack's S3)",
            f"  cost     ${outcome.cost_usd:.2f} (estimate)",
        ]
        for line in lines:
            console.print(line, soft_wrap=True, highlight=False)
        return
    assert outcome.error is not None
    console.print(f"[red]{outcome.status}[/red] {outcome.error['code']}: {outcome.error['message']}", soft_wrap=True)
