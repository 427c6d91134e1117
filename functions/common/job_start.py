"""Starting a job: the record first, then the execution named by the job id. Nothing half-created.

Used by every entry point (API, CLI, S3 inbox, EventBridge). The record exists before anything can reach a
provider; a second start of the same job id is refused by the conditional put and, as the last line, by
Step Functions itself (execution names are unique).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from functions.common.errors import TransientAwsError
from functions.common.jobs import JobRecord, JobRepository, JobStatus
from functions.common.metrics import emit_metrics
from functions.common.video_request import VideoRequest

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


def new_job_id() -> str:
    """OpenAI-style video id; also a valid Step Functions execution name (letters, digits, _; under 80)."""
    return f"video_{uuid.uuid4().hex}"


def start_job(
    request: VideoRequest,
    *,
    jobs: JobRepository,
    sfn: SFNClient,
    state_machine_arn: str,
    owner: str = "local",
    job_id: str | None = None,
    clock: Callable[[], float] = time.time,
    batch_id: str | None = None,
    batch_line: int | None = None,
) -> JobRecord:
    """Create the job record, then its execution. If the execution cannot start, the job is marked failed.

    ``batch_id`` and ``batch_line`` go on the record at creation, so the job's Finalize always knows its batch.
    """
    if any(image.data is not None for image in request.images):
        raise ValueError("upload image bytes to S3 (inputs/) and pass their s3_key before starting a job")
    record = JobRecord(
        job_id=job_id or new_job_id(),
        owner=owner,
        model=request.model,
        request=request.model_dump(mode="json", exclude_none=True),
        created_at=clock(),
        batch_id=batch_id,
        batch_line=batch_line,
    )
    jobs.create(record)
    emit_metrics({"JobsCreated": 1})
    try:
        sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=record.job_id,
            input=json.dumps({"job_id": record.job_id, "attempt": 0}),
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        return record
    except Exception as exc:
        jobs.transition(
            record.job_id,
            JobStatus.FAILED,
            finished_at=clock(),
            error_code=TransientAwsError.code,
            error_message=f"The workflow could not be started ({type(exc).__name__}); nothing was sent to a provider.",
        )
        raise TransientAwsError(f"could not start the workflow for job {record.job_id}: {exc}") from exc
    return record
