"""Monitoring: alarms on executions, functions and Store, to a topic; a dashboard of status, latency, cost."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from functions.common.metrics import METRICS, METRICS_NAMESPACE
from infra.config import ALL_FUNCTIONS
from infra.monitoring import JOB_STATUS_METRICS
from tests.infra.conftest import Template


def alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Metadata"]["aws:cdk:path"].split("/")[-2]: r["Properties"]
        for r in template.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_execution_alarms(template: Template) -> None:
    found = alarms(template)
    state_machine = template.by_path("/Workflow/StateMachine/Resource")
    for name, metric in (("ExecutionsFailed", "ExecutionsFailed"), ("ExecutionsTimedOut", "ExecutionsTimedOut")):
        alarm = found[name]
        assert alarm["Namespace"] == "AWS/States"
        assert alarm["MetricName"] == metric
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": state_machine}}]
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_function_error_throttle_and_store_alarms(template: Template) -> None:
    found = alarms(template)
    for key in ALL_FUNCTIONS:
        function, _ = template.function(key)
        errors = found["StoreFailures" if key == "store" else f"{key.capitalize()}Errors"]
        throttles = found[f"{key.capitalize()}Throttles"]
        assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
        assert (throttles["Namespace"], throttles["MetricName"]) == ("AWS/Lambda", "Throttles")
        for alarm in (errors, throttles):
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    assert found["StoreFailures"]["Threshold"] == 1


def test_every_alarm_notifies_the_topic(template: Template) -> None:
    topic, _ = template.one("AWS::SNS::Topic")
    for name, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
    assert template.of_type("AWS::SNS::Subscription") == {}


def test_alarm_email_subscribes(full: Template) -> None:
    _, subscription = full.one("AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"


def test_alarm_topic_refuses_plain_http(template: Template) -> None:
    _, policy = template.one("AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def dashboard_body(template: Template) -> str:
    _, dashboard = template.one("AWS::CloudWatch::Dashboard")
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def test_dashboard_shows_jobs_by_status_latency_and_cost(template: Template) -> None:
    body = dashboard_body(template)
    for title in ("Jobs by status", "Job latency (seconds)", "Execution time (ms)", "Cost estimate (USD per hour)"):
        assert title in body
    # every product metric (functions.common.metrics, emitted by the functions) is on the dashboard
    assert f'\\"{METRICS_NAMESPACE}\\"' in body
    for name in METRICS:
        assert f'\\"{name}\\"' in body, name
    assert set(JOB_STATUS_METRICS) <= set(METRICS)
    assert "Lambda compute (estimate)" in body


def test_the_deploy_guide_prices_the_alarms_the_stack_has(template: Template) -> None:
    # Given the deploy guide's cost section, When it counts the alarms, Then it counts the template's
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    (documented,) = re.findall(r"(\d+) alarms \(", guide)
    assert int(documented) == len(template.of_type("AWS::CloudWatch::Alarm"))
