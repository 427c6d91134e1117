"""The state machine: statemachine/video_generation.asl.json, inline in the template, Standard, logged and traced.

The definition is the file's text as it is, with ``DefinitionSubstitutions`` mapping each ``${...}`` to its
function's ARN (infra.config.ASL_SUBSTITUTIONS, the same map the local stack applies), so cfn-lint and the
template tests read the very definition that runs. Its role gets invoke rights through grants only.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import ASL_PATH, ASL_SUBSTITUTIONS, asl_text
from infra.nag import acknowledge


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # Vended-logs names keep Step Functions clear of the account's log resource-policy size limit.
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-video-generation",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(asl_text(ASL_PATH, ASL_SUBSTITUTIONS)),
            definition_substitutions={
                placeholder: functions[key].function_arn for placeholder, key in ASL_SUBSTITUTIONS.items()
            },
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        for key in sorted(set(ASL_SUBSTITUTIONS.values())):
            # The ASL invokes the unqualified ARN: no version or alias wildcard is needed.
            functions[key].grant_invoke_latest_version(self.state_machine)
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions' log delivery (logs:CreateLogDelivery and the other *LogDelivery/ResourcePolicy "
            "actions) and X-Ray tracing (xray:PutTraceSegments, GetSamplingRules, ...) accept no resource but *.",
        )
