"""The function factory: every Lambda of the stack is built here, the same way, from infra.config's specs.

Each function gets the one shared asset, Python 3.13 on arm64, X-Ray active tracing, JSON logs into its own
log group with a retention, and its own role that starts with nothing but writing that log group: whatever
else it may do is granted by the stack, one resource at a time.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import lambda_code
from infra.config import FunctionSpec
from infra.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64


class FunctionFactory(Construct):
    """Builds the stack's functions; ``environment`` is what all of them share (the config module's)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_code()
        self.environment = dict(environment)
        self.log_retention = log_retention
        self.functions: dict[str, lambda_.Function] = {}

    def create(self, spec: FunctionSpec, environment: Mapping[str, str] | None = None) -> lambda_.Function:
        if spec.key in self.functions:
            raise ValueError(f"function {spec.key!r} was already created")
        group = Construct(self, spec.key.capitalize())
        role = iam.Role(
            group,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"videogen {spec.key}: its log group, X-Ray, and what the stack grants it",
        )
        log_group = logs.LogGroup(group, "Logs", retention=self.log_retention, removal_policy=RemovalPolicy.DESTROY)
        function = lambda_.Function(
            group,
            "Function",
            description=f"videogen {spec.key}: {spec.description}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self.code,
            handler=spec.handler,
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            environment={**self.environment, **(environment or {})},
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
        )
        log_group.grant_write(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Active X-Ray tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which accept no "
            "resource but *; every other statement of this role names its resource.",
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Python 3.13 is the newest runtime the project supports and tests on (requires-python <3.14), and "
            "the one the asset's binary wheels are installed for.",
        )
        self.functions[spec.key] = function
        return function
