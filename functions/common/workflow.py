"""What flows between the workflow's states, and the collaborators the workflow Lambdas share.

Each Lambda takes the whole state and returns the whole next state (``Payload.$: $`` in the ASL), so the
state machine routes on ``outcome`` and the payload stays small: the job record holds everything else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel, ConfigDict

from functions.common.aws_errors import aws_errors_as_transient
from functions.common.concurrency import ProviderSlots
from functions.common.container import per_container
from functions.common.errors import ERRORS_BY_NAME, InternalError, VideogenError
from functions.common.events import EventPublisher
from functions.common.jobs import JobRepository
from functions.common.settings import ProviderSettings, WorkflowSettings
from functions.common.video_request import VideoRequest
from functions.providers.base import VideoProvider
from functions.providers.catalog import Catalog, load_catalog
from functions.providers.factory import build_http, provider_for
from functions.providers.http import ProviderHttp

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

Outcome = Literal["submitted", "throttled", "running", "succeeded", "fallback", "failed", "stored", "finished"]


class OutputLocation(BaseModel):
    url: str
    needs_auth: bool = False


class StepError(BaseModel):
    """Step Functions' error shape, from a Catch (``ResultPath: $.error``) or from Poll's own verdict."""

    model_config = ConfigDict(populate_by_name=True)

    Error: str
    Cause: str = ""

    @classmethod
    def of(cls, error: VideogenError) -> StepError:
        return cls(Error=type(error).__name__, Cause=json.dumps({"errorMessage": error.message}))

    def as_user_error(self) -> tuple[str, str]:
        """The stable code and the user-facing message this error stands for."""
        message = self.Cause
        try:
            cause = json.loads(self.Cause)
        except ValueError:
            cause = None
        if isinstance(cause, dict):
            message = str(cause.get("errorMessage") or cause.get("message") or "")
        known = ERRORS_BY_NAME.get(self.Error)
        if known is not None:
            return known.code, message or known.__name__
        return (
            InternalError.code,
            f"The job stopped on an unexpected error ({self.Error}): {message[:300]}".rstrip(": "),
        )


class StepState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str
    attempt: int = 0
    wait_seconds: int | None = None
    outcome: Outcome | None = None
    output: OutputLocation | None = None
    error: StepError | None = None

    def next(self, **changes: Any) -> StepState:
        return self.model_copy(update=changes)

    def to_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class ProviderSource:
    """Builds the adapter for a model, sharing one HTTP session and one key lookup per Lambda container."""

    def __init__(
        self, settings: ProviderSettings, catalog: Catalog | None = None, clock: Callable[[], float] = time.time
    ):
        self.settings = settings
        self.catalog = catalog or load_catalog()
        self.clock = clock

    @cached_property
    def http(self) -> ProviderHttp:
        return build_http(self.settings)

    def for_model(self, model_id: str) -> VideoProvider:
        return provider_for(model_id, self.http, self.catalog, clock=self.clock)

    @property
    def base_url_is_loopback(self) -> bool:
        from urllib.parse import urlsplit  # noqa: PLC0415

        return urlsplit(self.settings.cometapi_base_url).hostname in ("127.0.0.1", "localhost", "::1")


S3_CONFIG = Config(signature_version="s3v4")
"""SigV4 for presigned URLs too. Without it botocore presigns with SigV2 in us-east-1, which a bucket encrypted
with a KMS key (the bucketKms option) refuses, and which S3 is retiring. Every other call is SigV4 already."""


@dataclass
class WorkflowDeps:
    """Everything a workflow Lambda talks to. Tests build one around moto and the simulator."""

    settings: WorkflowSettings
    jobs: JobRepository
    s3: S3Client
    events: EventPublisher
    providers: ProviderSource
    slots: ProviderSlots
    catalog: Catalog = field(default_factory=load_catalog)
    clock: Callable[[], float] = time.time

    @classmethod
    def from_environment(cls, catalog: Catalog | None = None, clock: Callable[[], float] = time.time) -> WorkflowDeps:
        """From the Lambda environment. ``catalog`` and ``clock`` reach the adapters too (one of each)."""
        settings = WorkflowSettings()
        catalog = catalog or load_catalog()
        table = boto3.resource("dynamodb").Table(settings.jobs_table_name)
        return cls(
            settings=settings,
            jobs=JobRepository(table, clock=clock),
            slots=ProviderSlots(table, settings.provider_concurrency),
            s3=boto3.client("s3", config=S3_CONFIG),
            events=EventPublisher(boto3.client("events"), settings.event_bus_name),
            providers=ProviderSource(ProviderSettings(), catalog, clock),
            catalog=catalog,
            clock=clock,
        )

    def fixed_poll_interval(self, request: VideoRequest) -> int | None:
        """The request's poll_interval_seconds, else VIDEOGEN_POLL_INTERVAL_SECONDS, else None (adaptive)."""
        if request.poll_interval_seconds is not None:
            return request.poll_interval_seconds
        return self.settings.videogen_poll_interval_seconds

    def stored_request(self, request: dict[str, Any]) -> VideoRequest:
        """A request read back from the job record: validated against the catalog again, S3 keys allowed, no
        URL resolved again (each is checked where it is used)."""
        from functions.common.video_request import parse_video_request  # noqa: PLC0415

        return parse_video_request(request, catalog=self.catalog, trusted=True)


Step = Callable[[StepState, WorkflowDeps], StepState]


@per_container
def workflow_dependencies() -> WorkflowDeps:
    """Built on the first invocation of a container and kept for the next ones (clients, key, session)."""
    return WorkflowDeps.from_environment()


def step_handler(step: Step, service: str) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A thin Lambda handler around one workflow step: parse the state, run the step, return the next state.

    A throttled or failing AWS call (DynamoDB, S3, EventBridge) leaves as TransientAwsError, which every Task's
    Retry names, instead of a ClientError that Catch would turn into a failed job.
    """
    logger = Logger(service=service)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        state = StepState.model_validate(event)
        logger.append_keys(job_id=state.job_id, attempt=state.attempt)
        with aws_errors_as_transient():
            return step(state, workflow_dependencies()).to_payload()

    return handler
