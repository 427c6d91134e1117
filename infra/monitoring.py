"""Alarms (to an SNS topic, optionally e-mailed) and one dashboard: jobs by status, latency, cost estimate.

The dashboard reads AWS's own metrics (Step Functions, Lambda, API Gateway) and the product's metrics in the
``videogen`` namespace (functions.common.metrics.METRICS), which the functions emit with Powertools Metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.common.metrics import METRICS, METRICS_DIMENSIONS, METRICS_NAMESPACE, TERMINAL_STATUS_METRICS
from infra.config import (
    ALARM_THRESHOLDS,
    ALL_FUNCTIONS,
    LAMBDA_ARM_PRICE_PER_GB_SECOND,
)
from infra.options import StackOptions

PERIOD = Duration.minutes(5)
JOB_STATUS_METRICS = ("JobsCreated", *TERMINAL_STATUS_METRICS.values())


def product_metric(name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cloudwatch.Metric:
    if name not in METRICS:
        raise KeyError(f"{name} is not in functions.common.metrics.METRICS")
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=METRICS_DIMENSIONS,
        statistic=statistic,
        period=period,
        label=name,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.Function],
        rest_api: apigw.RestApi,
        options: StackOptions,
        batch_state_machine: sfn.StateMachine | None = None,
        webhook_dead_letters: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", display_name="videogen alarms", enforce_ssl=True)
        if options.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(options.alarm_email))

        self.alarms: list[cloudwatch.Alarm] = []
        self._alarm(
            "ExecutionsFailed",
            state_machine.metric_failed(period=PERIOD, statistic="Sum"),
            1,
            "A video generation execution failed (Finalize itself could not finish): see its execution history.",
        )
        self._alarm(
            "ExecutionsTimedOut",
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            1,
            "A video generation execution hit the state machine's timeout.",
        )
        if batch_state_machine is not None:
            self._alarm(
                "BatchExecutionsFailed",
                batch_state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                1,
                "An inbox batch execution failed (BatchUnreadable or SealFailed): see its execution history.",
            )
        if webhook_dead_letters is not None:
            self._alarm(
                "WebhookDeadLetters",
                webhook_dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                1,
                "Webhook deliveries reached the dead-letter queue (their dead-letter function could not record them).",
            )
        for key, function in functions.items():
            if key == "store":
                self._alarm(
                    "StoreFailures",
                    function.metric_errors(period=PERIOD, statistic="Sum"),
                    ALARM_THRESHOLDS["store_failures"],
                    "Store failed to put a generated video into S3: the provider may have billed a video we lost.",
                )
            else:
                self._alarm(
                    f"{key.capitalize()}Errors",
                    function.metric_errors(period=PERIOD, statistic="Sum"),
                    ALARM_THRESHOLDS["lambda_errors"],
                    f"The {key} function is failing repeatedly.",
                )
            self._alarm(
                f"{key.capitalize()}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                ALARM_THRESHOLDS["lambda_throttles"],
                f"The {key} function is being throttled (account concurrency).",
            )
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            ALARM_THRESHOLDS["api_5xx"],
            "The API is answering with server errors.",
        )
        self.dashboard = self._dashboard(state_machine, functions, rest_api)

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: int, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)

    def _dashboard(
        self, state_machine: sfn.StateMachine, functions: Mapping[str, lambda_.Function], rest_api: apigw.RestApi
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{Stack.of(self).stack_name}-videogen", default_interval=Duration.days(1)
        )
        executions = [
            state_machine.metric_started(period=PERIOD, label="Started"),
            state_machine.metric_succeeded(period=PERIOD, label="Succeeded"),
            state_machine.metric_failed(period=PERIOD, label="Failed"),
            state_machine.metric_timed_out(period=PERIOD, label="Timed out"),
            state_machine.metric_aborted(period=PERIOD, label="Aborted (cancelled)"),
        ]
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    "# videogen\nJobs by status, latency and cost. Product metrics come from the functions "
                    f"(namespace `{METRICS_NAMESPACE}`); the rest is AWS's own."
                ),
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs by status",
                left=[product_metric(name) for name in JOB_STATUS_METRICS],
                stacked=False,
                width=12,
            ),
            cloudwatch.GraphWidget(title="Executions", left=executions, width=12),
        )
        latency_seconds = [
            product_metric("JobDuration", "p50"),
            product_metric("JobDuration", "p90"),
            product_metric("ProviderDuration", "p90"),
            product_metric("StoreDuration", "p90"),
        ]
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Job latency (seconds)", left=latency_seconds, width=8),
            cloudwatch.GraphWidget(
                title="Execution time (ms)",
                left=[
                    state_machine.metric_time(period=PERIOD, statistic="p50", label="p50"),
                    state_machine.metric_time(period=PERIOD, statistic="p90", label="p90"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    rest_api.metric_latency(period=PERIOD, statistic="p50", label="p50"),
                    rest_api.metric_latency(period=PERIOD, statistic="p90", label="p90"),
                ],
                right=[
                    rest_api.metric_client_error(period=PERIOD, label="4xx"),
                    rest_api.metric_server_error(period=PERIOD, label="5xx"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Cost estimate (USD per hour)",
                left=[
                    product_metric("CostUsd", period=Duration.hours(1)),
                    self._lambda_cost(functions),
                ],
                width=12,
            ),
            cloudwatch.SingleValueWidget(
                title="Provider cost, last 24 h (USD)",
                metrics=[product_metric("CostUsd", period=Duration.days(1))],
                set_period_to_time_range=True,
                width=6,
            ),
            cloudwatch.SingleValueWidget(
                title="Videos stored, last 24 h",
                metrics=[product_metric("JobsCompleted", period=Duration.days(1))],
                set_period_to_time_range=True,
                width=6,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[f.metric_errors(period=PERIOD, label=key) for key, f in functions.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function throttles",
                left=[f.metric_throttles(period=PERIOD, label=key) for key, f in functions.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Store: bytes and failures",
                left=[product_metric("StoredBytes")],
                right=[product_metric("StoreFailures")],
                width=8,
            ),
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=list(self.alarms), title="Alarms", width=24))
        return dashboard

    @staticmethod
    def _lambda_cost(functions: Mapping[str, lambda_.Function]) -> cloudwatch.MathExpression:
        """Lambda compute in USD per hour: sum of duration x memory x the arm64 price."""
        using: dict[str, cloudwatch.IMetric] = {}
        terms = []
        for index, (key, function) in enumerate(functions.items()):
            memory_gb = ALL_FUNCTIONS[key].memory_mb / 1024
            name = f"d{index}"
            using[name] = function.metric_duration(period=Duration.hours(1), statistic="Sum")
            terms.append(f"FILL({name}, 0) * {memory_gb:g}")
        return cloudwatch.MathExpression(
            expression=f"({' + '.join(terms)}) / 1000 * {LAMBDA_ARM_PRICE_PER_GB_SECOND:.10f}",
            using_metrics=using,
            label="Lambda compute (estimate)",
            period=Duration.hours(1),
        )
