"""The reaper's wiring: executions of the workflow that end abnormally reach it, and it may do Finalize's work."""

from __future__ import annotations

from typing import Any

from infra.config import REAPER_STATUSES
from tests.infra.conftest import Template


def test_abnormal_ends_of_the_workflow_reach_the_reaper(template: Template) -> None:
    # Given the stack's rules / Then one matches the workflow's TIMED_OUT, ABORTED and FAILED executions
    rules = [r["Properties"] for r in template.of_type("AWS::Events::Rule").values()]
    [rule] = [r for r in rules if r.get("EventPattern", {}).get("source") == ["aws.states"]]
    pattern: dict[str, Any] = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["status"] == list(REAPER_STATUSES)
    assert len(pattern["detail"]["stateMachineArn"]) == 1
    # And its target is the reaper function, retried for up to a day
    [target] = rule["Targets"]
    reaper, _ = template.function("reaper")
    assert target["Arn"] == {"Fn::GetAtt": [reaper, "Arn"]}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 24 * 3600


def test_the_reaper_may_write_job_records_and_emit_the_event(template: Template) -> None:
    statements = template.function_statements("reaper")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem", "events:PutEvents"} <= actions
    _, props = template.function("reaper")
    assert props["Handler"] == "functions.reaper.handler.handler"
