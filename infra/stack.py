"""VideoGenStack: the constructs wired together, each function granted exactly what its code calls."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import App, ArnFormat, CfnOutput, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.api import Api
from infra.config import (
    API_FUNCTIONS,
    INPUT_PREFIX,
    JOBS_TABLE,
    POWERTOOLS_ENVIRONMENT,
    VIDEO_PREFIX,
    WORKFLOW_FUNCTIONS,
    authorizer_environment,
    deployed_api_environment,
    provider_environment,
    workflow_environment,
)
from infra.event_bus import EventBus
from infra.functions import FunctionFactory
from infra.monitoring import Monitoring
from infra.nag import acknowledge, add_checks, arn_reference
from infra.options import LOG_RETENTION_DAYS, StackOptions
from infra.secret import ProviderSecret, set_secret_command
from infra.storage import Storage
from infra.workflow import Workflow

JOB_READ_WRITE = ("dynamodb:GetItem", "dynamodb:UpdateItem")


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
            key: self.factory.create(spec, {**names, **provider}) for key, spec in WORKFLOW_FUNCTIONS.items()
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
        self._grant(self.factory.functions)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=self.workflow.state_machine,
            functions=self.factory.functions,
            rest_api=self.api.rest_api,
            options=options,
        )
        self._outputs()

    # --- permissions: what each function's code calls, on exactly its resources ---------------------------

    def _grant(self, functions: dict[str, lambda_.Function]) -> None:
        jobs = self.storage.jobs
        bucket = self.storage.bucket
        inputs = bucket.arn_for_objects(f"{INPUT_PREFIX}*")
        videos = bucket.arn_for_objects(f"{VIDEO_PREFIX}*")

        for key in WORKFLOW_FUNCTIONS:
            allow(functions[key], JOB_READ_WRITE, [jobs.table_arn])
        for key in ("submit", "poll", "store", "api"):
            self.secret.grant_read(functions[key], scope=functions[key].role or functions[key])
        for key in ("finalize", "api"):  # the one terminal event (Finalize; the API when it cancels a job)
            self.events.bus.grant_put_events_to(functions[key])

        # Submit reads a job's input images; Store streams the video and its manifest in (and removes them
        # again when the job was cancelled meanwhile).
        self._objects(functions["submit"], ["s3:GetObject"], INPUT_PREFIX, inputs, decrypt=True)
        self._objects(
            functions["store"],
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
            VIDEO_PREFIX,
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
        self._objects(api, ["s3:PutObject", "s3:DeleteObject"], INPUT_PREFIX, inputs, encrypt=True)
        self._objects(api, ["s3:GetObject", "s3:DeleteObject"], VIDEO_PREFIX, videos, decrypt=True)

        allow(functions["authorizer"], ("dynamodb:GetItem",), [self.storage.api_keys.table_arn])

    def _objects(
        self,
        function: lambda_.Function,
        actions: Sequence[str],
        prefix: str,
        resource: str,
        *,
        decrypt: bool = False,
        encrypt: bool = False,
    ) -> None:
        allow(function, actions, [resource])
        bucket = arn_reference(self.storage.bucket)
        acknowledge(
            function.role or function,
            f"AwsSolutions-IAM5[Resource::{bucket}/{prefix}*]",
            f"Object keys under {prefix} are job ids made at run time; the grant is limited to this bucket's "
            f"{prefix} prefix and to the object actions this function's code calls.",
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
