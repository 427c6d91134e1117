"""Local throughput benchmark: N concurrent jobs through the embedded stack, and what each job costs us.

Setup: ``local.stack.local_stack`` (moto server with its Step Functions executor, the workflow's Lambda
handlers in-process, the CometAPI simulator) with the simulator at time scale 0 (a render is done at the first
poll) and a fixed poll interval of 0 (the Wait state does not sleep). Everything runs in this one process.

Run: ``--jobs`` N (default 50) veo3-fast text-to-video jobs are started one after the other with
``functions.common.job_start.start_job`` (the record, then the execution, exactly as the API and the CLI do);
each execution runs as soon as it is started, so the jobs overlap. Then the local SQS queue subscribed to the
bus is long-polled until every job's terminal event arrived (the table is scanned only every few seconds, as a
guard against a lost event: a scan costs moto real CPU, which the jobs under test would pay for), and the
records are read once at the end.

Figures:
- jobs per minute = N / (last record's ``finished_at`` − the time the first start was called) × 60;
- per-job overhead = ``event_emitted_at − provider_completed_at``: from Poll seeing the provider done to the
  job's event on the bus (Store's download and upload to S3, and Finalize, included), p50, p95 and max with
  linear interpolation; the same for each phase between (Poll → Store, Store → Finalize, record → event);
- events: messages that arrived on the queue for our jobs, and for how many distinct jobs (both should be N;
  once every record is terminal, missing events get ``--event-wait`` more seconds).

Everything (moto, the Step Functions executor, the handlers, the simulator) shares one Python process, so at
large N the figures measure that process's CPU as much as the pipeline: compare runs on the same machine.

Prints human lines, asserts nothing. Goal: overhead ≤ 1 s per job. The last line is the summary other tools read:
``local_throughput jobs=N jobs_per_minute=X overhead_p50_s=A overhead_p95_s=B``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from functions.common.job_start import start_job
from functions.common.jobs import JobRecord, JobRepository, JobStatus, from_dynamo
from functions.common.video_request import parse_video_request
from local.stack import LocalStack, local_stack

MODEL = "veo3-fast"
SCAN_INTERVAL_SECONDS = 5.0
OVERHEAD_GOAL_SECONDS = 1.0
PHASES = (
    ("start → submitted to the provider", "submitted_at", "created_at"),
    ("submitted → Poll saw it done", "provider_completed_at", "submitted_at"),
    ("Poll saw it done → Store stored it", "stored_at", "provider_completed_at"),
    ("stored → Finalize wrote the record", "finished_at", "stored_at"),
    ("record written → event emitted", "event_emitted_at", "finished_at"),
)
"""(label, later field, earlier field) of JobRecord: the overhead is the last three, summed per job."""


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation between closest ranks (as benchmarks/polling.py)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(math.nan, math.nan, math.nan)
        return cls(percentile(values, 50), percentile(values, 95), max(values))

    def text(self) -> str:
        return f"p50 {self.p50:.3f} s, p95 {self.p95:.3f} s, max {self.max:.3f} s"


@dataclass(frozen=True)
class EventCount:
    messages: int
    distinct_jobs: int


def start_jobs(stack: LocalStack, count: int) -> list[str]:
    sfn = stack.client("stepfunctions")
    jobs = stack.jobs
    job_ids = []
    for index in range(count):
        request = parse_video_request({"model": MODEL, "prompt": f"Benchmark job {index}: a paper kite in the wind"})
        record = start_job(request, jobs=jobs, sfn=sfn, state_machine_arn=stack.resources.state_machine_arn)
        job_ids.append(record.job_id)
    return job_ids


def all_records(jobs: JobRepository) -> dict[str, JobRecord]:
    """Every job record, by one consistent scan."""
    records: dict[str, JobRecord] = {}
    scan: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = jobs.table.scan(**scan)
        for item in page.get("Items", []):
            record = JobRecord.model_validate(from_dynamo(item))
            records[record.job_id] = record
        if "LastEvaluatedKey" not in page:
            return records
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def wait_for_jobs(
    stack: LocalStack, job_ids: list[str], *, timeout: float, event_wait: float
) -> tuple[dict[str, JobRecord], EventCount]:
    """Until every job's terminal event is on the queue (Finalize writes the terminal record before it emits).

    The queue is long-polled and drained: cheap. The table is scanned only every SCAN_INTERVAL_SECONDS (a scan
    of N records costs moto ~0.15 s of CPU at N = 50, which the jobs under test would otherwise pay for), so a
    lost event cannot make this wait forever: once every record is terminal, events get ``event_wait`` more
    seconds. Returns the records (one last scan) and what arrived on the queue.
    """
    sqs = stack.client("sqs")
    jobs = stack.jobs
    queue_url = stack.resources.events_queue_url
    wanted = set(job_ids)
    seen: set[str] = set()
    messages = 0
    deadline = time.monotonic() + timeout
    next_scan = time.monotonic() + SCAN_INTERVAL_SECONDS
    all_terminal_at: float | None = None
    while seen != wanted:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in received:
            job_id = json.loads(message["Body"]).get("detail", {}).get("job_id")
            if job_id in wanted:
                messages += 1
                seen.add(job_id)
        if received:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
            )
        now = time.monotonic()
        if now >= next_scan and all_terminal_at is None:
            next_scan = now + SCAN_INTERVAL_SECONDS
            records = all_records(jobs)
            if all(job_id in records and records[job_id].status.is_terminal for job_id in job_ids):
                all_terminal_at = now
        if now > deadline or (all_terminal_at is not None and now - all_terminal_at > event_wait):
            break
    records = all_records(jobs)
    mine = {job_id: records[job_id] for job_id in job_ids if job_id in records}
    return mine, EventCount(messages=messages, distinct_jobs=len(seen))


def gaps(records: Sequence[JobRecord], later: str, earlier: str) -> list[float]:
    values = []
    for record in records:
        end, start = getattr(record, later), getattr(record, earlier)
        if end is not None and start is not None:
            values.append(end - start)
    return values


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=50, help="concurrent jobs (default 50)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for every job to end")
    parser.add_argument("--event-wait", type=float, default=30.0, help="seconds to wait for the events")
    args = parser.parse_args(argv)

    stack_started = time.monotonic()
    with local_stack(simulator_time_scale=0.0, poll_interval=0) as stack:
        print(f"local stack up in {time.monotonic() - stack_started:.2f} s (moto at {stack.endpoint_url})")
        began = time.time()
        job_ids = start_jobs(stack, args.jobs)
        print(f"started {len(job_ids)} {MODEL} jobs in {time.time() - began:.2f} s")
        by_id, events = wait_for_jobs(stack, job_ids, timeout=args.timeout, event_wait=args.event_wait)

    records = list(by_id.values())
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.status.value] = statuses.get(record.status.value, 0) + 1
    unfinished = len(job_ids) - sum(record.status.is_terminal for record in records)
    completed = [record for record in records if record.status is JobStatus.COMPLETED]
    finished_at = [record.finished_at for record in records if record.finished_at is not None]
    wall = (max(finished_at) - began) if finished_at else math.nan
    jobs_per_minute = len(finished_at) / wall * 60 if finished_at and wall > 0 else 0.0

    overhead = Spread.of(gaps(completed, "event_emitted_at", "provider_completed_at"))
    not_terminal = f"; NOT terminal after {args.timeout:.0f} s: {unfinished}" if unfinished else ""
    print(f"statuses: {dict(sorted(statuses.items()))}{not_terminal}")
    for record in records:
        if record.status is not JobStatus.COMPLETED and record.error_code:
            print(f"  e.g. {record.job_id} {record.status.value}: {record.error_code}: {record.error_message}")
            break
    print(f"wall time, first start → last finished: {wall:.2f} s; {jobs_per_minute:.1f} jobs/minute")
    print("phases per completed job (job record timestamps):")
    for label, later, earlier in PHASES:
        print(f"  {label:<38} {Spread.of(gaps(completed, later, earlier)).text()}")
    print(f"overhead (provider done → event emitted): {overhead.text()} (goal ≤ {OVERHEAD_GOAL_SECONDS:.0f} s)")
    print(
        f"events on the local SQS queue: {events.messages} messages for {events.distinct_jobs} distinct jobs "
        f"(expected {len(job_ids)})"
    )
    print(
        f"local_throughput jobs={len(job_ids)} jobs_per_minute={jobs_per_minute:.1f} "
        f"overhead_p50_s={overhead.p50:.2f} overhead_p95_s={overhead.p95:.2f}"
    )


if __name__ == "__main__":
    main()
