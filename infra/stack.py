"""VideoGenStack: the constructs wired together, each function granted exactly what its code calls."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import App, ArnFormat, CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.api import Api
from infra.batch import BatchWorkflow, batch_state_machine_arn
from infra.config import (
    API_FUNCTIONS,
    BATCH_RESULTS_PREFIX,
    INBOX_PREFIX,
    INPUT_PREFIX,
    INTAKE_FUNCTIONS,
    JOBS_TABLE,
    POWERTOOLS_ENVIRONMENT,
    PROVIDER_CONCURRENCY_FUNCTIONS,
    REAPER_FUNCTION,
    REAPER_STATUSES,
    VIDEO_PREFIX,
    WEBHOOK_FUNCTIONS,
    WORKFLOW_FUNCTIONS,
    authorizer_environment,
    deployed_api_environment,
    intake_environment,
    provider_environment,
    webhook_environment,
    workflow_environment,
)
from infra.event_bus import EventBus
from infra.functions import FunctionFactory
from infra.intake import Intake
from infra.monitoring import Monitoring
from infra.nag import acknowledge, add_checks, arn_reference
from infra.options import LOG_RETENTION_DAYS, StackOptions
from infra.secret import ProviderSecret, set_secret_command
from infra.storage import Storage
from infra.webhooks import Webhooks
from infra.workflow import Workflow

JOB_READ_WRITE = ("dynamodb:GetItem", "dynamodb:UpdateItem")
BATCH_COMPLETION = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem")
"""Accounting a batch's line and completing the batch: its record, its lines' items (functions.common.batches)."""
TENANT_KEYS = "tenant#*"
"""The API keys table's tenant items (webhook secrets); the webhook function may touch no other item."""


class VideoGenStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, options: StackOptions) -> None:
        super().__init__(
            scope,
            construct_id,
            description="videogen: AI videos generated through CometAPI into your S3 (API, workflow, events)",
        )
        Tags.of(self).add("project", "videogen")
        self.options = options
        retention = log_retention(options.log_retention_days)

        self.storage = Storage(self, "Storage", options=options)
        self.secret = ProviderSecret(self, "Secret", options=options, stack_name=self.stack_name)
        self.events = EventBus(self, "Events", options=options)

        self.factory = FunctionFactory(self, "Functions", environment=POWERTOOLS_ENVIRONMENT, log_retention=retention)
        names = workflow_environment(
            table=self.storage.jobs.table_name,
            bucket=self.storage.bucket.bucket_name,
            bus=self.events.bus.event_bus_name,
        )
        provider = provider_environment(secret_name=self.secret.secret_name, base_url=options.comet_api_base_url)
        workflow_functions = {
            key: self.factory.create(spec, {**names, **provider, **self._caps(key)})
            for key, spec in WORKFLOW_FUNCTIONS.items()
        }
        self.workflow = Workflow(self, "Workflow", functions=workflow_functions, log_retention=retention)

        api_function = self.factory.create(
            API_FUNCTIONS["api"],
            {
                **provider,
                **deployed_api_environment(
                    table=self.storage.jobs.table_name,
                    bucket=self.storage.bucket.bucket_name,
                    bus=self.events.bus.event_bus_name,
                    state_machine_arn=self.workflow.state_machine.state_machine_arn,
                    api_keys_table=self.storage.api_keys.table_name,
                    idempotency_table=self.storage.idempotency.table_name,
                    cors_allow_origins=options.cors_allow_origins,
                ),
                **self._caps("api"),
            },
        )
        authorizer_function = self.factory.create(
            API_FUNCTIONS["authorizer"], authorizer_environment(api_keys_table=self.storage.api_keys.table_name)
        )
        self.api = Api(
            self,
            "Api",
            handler=api_function,
            authorizer=authorizer_function,
            options=options,
            log_retention=retention,
        )

        # Jobs started from the inbox and from events, and inbox batches (their own state machine).
        intake_names = intake_environment(
            table=self.storage.jobs.table_name,
            bucket=self.storage.bucket.bucket_name,
            bus=self.events.bus.event_bus_name,
            state_machine_arn=self.workflow.state_machine.state_machine_arn,
            batch_state_machine_arn=batch_state_machine_arn(self),
        )
        intake_functions = {
            key: self.factory.create(spec, {**intake_names, **self._caps(key)})
            for key, spec in INTAKE_FUNCTIONS.items()
        }
        self.batch = BatchWorkflow(self, "Batch", functions=intake_functions, log_retention=retention)
        self.intake = Intake(
            self, "Intake", function=intake_functions["intake"], bucket=self.storage.bucket, bus=self.events.bus
        )

        webhook_names = webhook_environment(
            table=self.storage.jobs.table_name, api_keys_table=self.storage.api_keys.table_name
        )
        webhook_functions = {key: self.factory.create(spec, webhook_names) for key, spec in WEBHOOK_FUNCTIONS.items()}
        self.webhooks = Webhooks(
            self,
            "Webhooks",
            bus=self.events.bus,
            delivery=webhook_functions["webhook"],
            dead_letters=webhook_functions["webhook-dlq"],
        )

        # A job whose execution timed out, was stopped or failed in Finalize is ended by the reaper.
        reaper = self.factory.create(REAPER_FUNCTION, {**names, **self._caps(REAPER_FUNCTION.key)})
        events.Rule(
            self,
            "ExecutionsEndedAbnormally",
            description="videogen: workflow executions that ended outside the state machine's paths -> reaper",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [self.workflow.state_machine.state_machine_arn],
                    "status": list(REAPER_STATUSES),
                },
            ),
            targets=[targets.LambdaFunction(reaper, retry_attempts=185, max_event_age=Duration.hours(24))],
        )

        self._grant(self.factory.functions)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=self.workflow.state_machine,
            batch_state_machine=self.batch.state_machine,
            webhook_dead_letters=self.webhooks.dead_letter_queue,
            functions=self.factory.functions,
            rest_api=self.api.rest_api,
            options=options,
        )
        self._outputs()

    def _caps(self, key: str) -> dict[str, str]:
        """PROVIDER_CONCURRENCY for the functions that take or give back provider slots, when caps are set."""
        caps = self.options.provider_concurrency_json
        return {"PROVIDER_CONCURRENCY": caps} if caps and key in PROVIDER_CONCURRENCY_FUNCTIONS else {}

    # --- permissions: what each function's code calls, on exactly its resources ---------------------------

    def _grant(self, functions: dict[str, lambda_.Function]) -> None:
        jobs = self.storage.jobs
        inputs = f"{INPUT_PREFIX}*"
        videos = f"{VIDEO_PREFIX}*"

        for key in (*WORKFLOW_FUNCTIONS, "reaper"):
            allow(functions[key], JOB_READ_WRITE, [jobs.table_arn])
        for key in ("submit", "poll", "store", "api"):
            self.secret.grant_read(functions[key], scope=functions[key].role or functions[key])
        for key in ("finalize", "api", "reaper"):  # the one terminal event (Finalize; cancel; the reaper)
            self.events.bus.grant_put_events_to(functions[key])

        # Submit reads a job's input images; Store streams the video and its manifest in (and removes them
        # again when the job was cancelled meanwhile).
        self._objects(functions["submit"], ["s3:GetObject"], inputs, decrypt=True)
        self._objects(
            functions["store"],
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
            videos,
            decrypt=True,
            encrypt=True,
        )

        api = functions["api"]
        allow(api, ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), [jobs.table_arn])
        allow(api, ("dynamodb:Query",), [f"{jobs.table_arn}/index/{JOBS_TABLE.owner_index}"])
        allow(
            api,
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
            [self.storage.idempotency.table_arn],
        )
        state_machine = self.workflow.state_machine
        state_machine.grant_start_execution(api)
        executions = self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        allow(api, ("states:StopExecution",), [executions])
        acknowledge(
            api.role or api,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{arn_reference(state_machine, 'Name')}:*]",
            "Cancelling a job stops its execution, named by the job id at run time; the wildcard covers only "
            "executions of this stack's state machine.",
        )
        # The API uploads input images, signs content links (the link's reader acts with the API's rights),
        # and deletes a job's files with the job.
        self._objects(api, ["s3:PutObject", "s3:DeleteObject"], inputs, encrypt=True)
        self._objects(api, ["s3:GetObject", "s3:DeleteObject"], videos, decrypt=True)

        allow(functions["authorizer"], ("dynamodb:GetItem",), [self.storage.api_keys.table_arn])
        self._grant_intake(functions)
        self._grant_webhooks(functions)

    def _grant_intake(self, functions: dict[str, lambda_.Function]) -> None:
        jobs = self.storage.jobs
        bucket = self.storage.bucket
        inbox = f"{INBOX_PREFIX}*"
        error_objects = f"{INBOX_PREFIX}*.error.json"
        results = f"{BATCH_RESULTS_PREFIX}*"

        # Finalize and the API's cancel end a batch job: batches.job_finished accounts its line and, for the
        # last one, completes the batch (its lines' items, results.jsonl written, the lines index removed, one
        # Batch Completed event). Intake and StartLine do the same for a job found already ended, Seal too.
        for key in ("finalize", "api", "intake", "batch-line", "batch-seal", "reaper"):
            allow(functions[key], BATCH_COMPLETION, [jobs.table_arn])
            self._objects(functions[key], ["s3:PutObject", "s3:DeleteObject"], results, encrypt=True)
        for key in ("intake", "batch-line", "batch-seal"):  # job records, rejected lines' items
            allow(functions[key], ("dynamodb:PutItem",), [jobs.table_arn])
        for key in INTAKE_FUNCTIONS:  # rejected requests' Failed events, and Batch Completed
            self.events.bus.grant_put_events_to(functions[key])

        # The intake function reads inbox objects (and the images they name), writes *.error.json next to a
        # rejected one, uploads input images, starts jobs and batches.
        intake = functions["intake"]
        self._objects(intake, ["s3:GetObject"], inbox, decrypt=True)
        self._objects(intake, ["s3:PutObject"], error_objects, encrypt=True)
        self._objects(intake, ["s3:PutObject"], f"{INPUT_PREFIX}*", encrypt=True)
        self.workflow.state_machine.grant_start_execution(intake)
        self.batch.state_machine.grant_start_execution(intake)

        # ReadBatch: the batch file, its lines index (batches/{id}/lines.idx), its record; a file that cannot be a
        # batch gets its error object.
        read = functions["batch-read"]
        allow(read, ("dynamodb:GetItem", "dynamodb:PutItem"), [jobs.table_arn])
        self._objects(read, ["s3:GetObject"], inbox, decrypt=True)
        self._objects(read, ["s3:PutObject"], error_objects, encrypt=True)
        self._objects(read, ["s3:PutObject"], results, encrypt=True)

        # StartLine: one line (ranged GETs of the index and of the file), its images, its job.
        line = functions["batch-line"]
        self._objects(line, ["s3:GetObject"], inbox, decrypt=True)
        self._objects(line, ["s3:GetObject"], results, decrypt=True)
        self._objects(line, ["s3:PutObject"], f"{INPUT_PREFIX}*", encrypt=True)
        self.workflow.state_machine.grant_start_execution(line)

        # Without s3:ListBucket, S3 answers a GET or HEAD of a missing key with 403 instead of 404: the intake
        # code tells a deleted (or not yet reported) object by its 404. Keys only: no object is readable by it.
        for key in ("intake", "batch-read", "batch-line"):
            allow(functions[key], ("s3:ListBucket",), [bucket.bucket_arn])

    def _grant_webhooks(self, functions: dict[str, lambda_.Function]) -> None:
        jobs = self.storage.jobs
        delivery = functions["webhook"]
        for key in WEBHOOK_FUNCTIONS:  # the delivery record on the job item
            allow(functions[key], JOB_READ_WRITE, [jobs.table_arn])
        # The tenant's webhook secret (read, or created on first use), never an API key's hash item.
        delivery.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(JOB_READ_WRITE),
                resources=[self.storage.api_keys.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [TENANT_KEYS]}},
            )
        )
        # A failed attempt pushes its message's visibility out (the backoff); the event source grants the rest.
        delivery.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:ChangeMessageVisibility"], resources=[self.webhooks.queue.queue_arn])
        )

    def _objects(
        self,
        function: lambda_.Function,
        actions: Sequence[str],
        pattern: str,
        *,
        decrypt: bool = False,
        encrypt: bool = False,
    ) -> None:
        """Object actions on the keys matching ``pattern`` (``videos/*``, ``inbox/*.error.json``)."""
        allow(function, actions, [self.storage.bucket.arn_for_objects(pattern)])
        bucket = arn_reference(self.storage.bucket)
        prefix = pattern.split("*", 1)[0]
        acknowledge(
            function.role or function,
            f"AwsSolutions-IAM5[Resource::{bucket}/{pattern}]",
            f"Object keys under {prefix} are named at run time (job ids, batch ids, uploaded requests); the "
            f"grant is limited to this bucket's keys matching {pattern} and to the object actions this "
            "function's code calls.",
        )
        if self.storage.key is not None:
            if decrypt:
                self.storage.key.grant(function, "kms:Decrypt")
            if encrypt:
                self.storage.key.grant(function, "kms:GenerateDataKey")

    def _outputs(self) -> None:
        outputs = {
            "ApiUrl": (self.api.url, "The API stage URL"),
            "OpenAiBaseUrl": (f"{self.api.url}v1", "base_url for OpenAI SDKs"),
            "VideoBucketName": (self.storage.bucket.bucket_name, "Where videos are stored (videos/<job id>.mp4)"),
            "EventBusName": (self.events.bus.event_bus_name, "Subscribe to job events with rules on this bus"),
            "StateMachineArn": (self.workflow.state_machine.state_machine_arn, "One execution per job"),
            "CometApiKeySecretName": (self.secret.secret_name, "The secret that holds the CometAPI key"),
            "SetSecretCommand": (set_secret_command(self.secret.secret_name), "Sets the key (COMETAPI_KEY)"),
            "JobsTableName": (self.storage.jobs.table_name, "The job records"),
            "ApiKeysTableName": (self.storage.api_keys.table_name, "Hashed API keys and their owners"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "Subscribe to be told about alarms"),
            "DashboardName": (self.monitoring.dashboard.dashboard_name, "The CloudWatch dashboard"),
            "InboxPrefix": (
                f"s3://{self.storage.bucket.bucket_name}/{INBOX_PREFIX}",
                "Drop requests here: *.json one job, *.jsonl a batch (inbox/<owner>/...)",
            ),
            "BatchStateMachineArn": (self.batch.state_machine.state_machine_arn, "One execution per inbox batch"),
            "WebhookQueueUrl": (self.webhooks.queue.queue_url, "Terminal events waiting for webhook delivery"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)


def log_retention(days: int) -> logs.RetentionDays:
    """CDK's name for a number of days CloudWatch Logs accepts (LOG_RETENTION_DAYS, same order)."""
    members = [member for member in logs.RetentionDays if member is not logs.RetentionDays.INFINITE]
    return dict(zip(LOG_RETENTION_DAYS, members, strict=True))[days]


def allow(function: lambda_.Function, actions: Sequence[str], resources: Sequence[str]) -> None:
    iam.Grant.add_to_principal(grantee=function, actions=list(actions), resource_arns=list(resources))


def build(app: App, options: StackOptions | None = None) -> VideoGenStack:
    """The app's one stack, named and configured by context, with the AwsSolutions checks on the whole app."""
    options = options or StackOptions.from_context(app.node.try_get_context)
    # Environment-agnostic: the template is the same whoever synthesises it, and `cdk deploy` targets the
    # account and region of the credentials it runs with.
    stack = VideoGenStack(app, options.stack_name, options=options)
    add_checks(app)
    return stack
