"""The batch state machine: statemachine/video_batch.asl.json, inline, Standard, logged and traced.

Like infra.workflow: the file's text as it is, with ``DefinitionSubstitutions`` mapping each ``${...}`` to its
function's ARN (infra.config.BATCH_ASL_SUBSTITUTIONS, the map ``load_batch_definition`` and the local stack use).

The state machine has a fixed name (``<stack>-video-batch``), so its ARN is known without a reference to it:
the batch functions read it from their environment (BATCH_STATE_MACHINE_ARN) while the state machine refers to
their ARNs, and its own Distributed Map starts child executions of itself; a reference either way would be a
circular dependency.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import BATCH_ASL_PATH, BATCH_ASL_SUBSTITUTIONS, BATCH_STATE_MACHINE_SUFFIX, asl_text
from infra.nag import acknowledge


def batch_state_machine_name(stack: Stack) -> str:
    return f"{stack.stack_name}{BATCH_STATE_MACHINE_SUFFIX}"


def batch_state_machine_arn(stack: Stack) -> str:
    return stack.format_arn(
        service="states",
        resource="stateMachine",
        resource_name=batch_state_machine_name(stack),
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def batch_executions_arn(stack: Stack) -> str:
    """Every execution of the batch state machine, and the Distributed Map's child executions (``name/...``)."""
    return stack.format_arn(
        service="states",
        resource="execution",
        resource_name=f"{batch_state_machine_name(stack)}*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class BatchWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}{BATCH_STATE_MACHINE_SUFFIX}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.arn = batch_state_machine_arn(stack)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=batch_state_machine_name(stack),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(asl_text(BATCH_ASL_PATH, BATCH_ASL_SUBSTITUTIONS)),
            definition_substitutions={
                placeholder: functions[key].function_arn for placeholder, key in BATCH_ASL_SUBSTITUTIONS.items()
            },
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        for key in sorted(set(BATCH_ASL_SUBSTITUTIONS.values())):
            functions[key].grant_invoke_latest_version(self.state_machine)
        # The Distributed Map runs each line as a child execution of this state machine, and describes and
        # stops them (a failed or aborted Map).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.arn])
        )
        executions = batch_executions_arn(stack)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions])
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions' log delivery (logs:CreateLogDelivery and the other *LogDelivery/ResourcePolicy "
            "actions) and X-Ray tracing (xray:PutTraceSegments, GetSamplingRules, ...) accept no resource but *.",
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{batch_state_machine_name(stack)}*]",
            "The Distributed Map describes and stops its child executions, named by Step Functions at run time; "
            "the wildcard covers only executions of this batch state machine.",
        )
