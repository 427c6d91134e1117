"""Jobs started by events: the inbox rule, the requested-event rule, the intake and batch functions, the batch
state machine; webhooks (rule -> queue -> function, its DLQ); provider concurrency caps; their alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED
from infra.config import (
    BATCH_ASL_PATH,
    BATCH_ASL_SUBSTITUTIONS,
    INBOX_PREFIX,
    INTAKE_FUNCTIONS,
    REQUESTED_RULE_PATTERN,
    ROOT,
    WEBHOOK_FUNCTIONS,
    inbox_rule_pattern,
    intake_environment,
)
from infra.options import OptionError, StackOptions
from tests.infra.conftest import Template

DEPLOY_GUIDE = ROOT / "docs" / "deploy.md"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def bucket_id(template: Template) -> str:
    return template.by_path("/Storage/Videos/Resource")


def actions_on(statements: list[dict[str, Any]], resource: Any) -> set[str]:
    """Every action allowed on exactly ``resource`` (statements without conditions)."""
    return {
        action
        for s in statements
        if s["Effect"] == "Allow" and "Condition" not in s and resource in as_list(s["Resource"])
        for action in as_list(s["Action"])
    }


def objects(template: Template, pattern: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id(template), "Arn"]}, f"/{pattern}"]]}


def table(template: Template, name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [template.by_path(f"/Storage/{name}/Resource"), "Arn"]}


def object_grants(template: Template, key: str) -> dict[str, set[str]]:
    """pattern -> actions, for this function's grants on the video bucket's objects."""
    grants: dict[str, set[str]] = {}
    bucket_arn = {"Fn::GetAtt": [bucket_id(template), "Arn"]}
    for s in template.function_statements(key):
        for resource in as_list(s["Resource"]):
            if isinstance(resource, dict) and "Fn::Join" in resource and resource["Fn::Join"][1][0] == bucket_arn:
                pattern = resource["Fn::Join"][1][1].lstrip("/")
                grants.setdefault(pattern, set()).update(as_list(s["Action"]))
    return grants


def pattern_of(rule: dict[str, Any]) -> Any:
    pattern = rule["Properties"]["EventPattern"]
    return json.loads(pattern) if isinstance(pattern, str) else pattern


def rule(template: Template, path: str) -> dict[str, Any]:
    return template.resources[template.by_path(path)]


# --- intake -------------------------------------------------------------------------------------------------


def test_the_bucket_sends_its_events_to_eventbridge(template: Template) -> None:
    props = template.props(bucket_id(template))
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    assert not template.of_type("Custom::S3BucketNotifications")


def test_inbox_rule_on_the_default_bus_targets_the_intake(template: Template) -> None:
    inbox = rule(template, "/Intake/InboxObjects/Resource")
    assert "EventBusName" not in inbox["Properties"]  # the default bus: where S3 sends its events
    assert pattern_of(inbox) == inbox_rule_pattern({"Ref": bucket_id(template)})  # type: ignore[arg-type]
    intake, _ = template.function("intake")
    assert [t["Arn"] for t in inbox["Properties"]["Targets"]] == [{"Fn::GetAtt": [intake, "Arn"]}]


def test_requested_rule_on_the_product_bus_targets_the_intake(template: Template) -> None:
    requested = rule(template, "/Intake/GenerationRequested/Resource")
    assert requested["Properties"]["EventBusName"] == {"Ref": template.by_path("/Events/Bus/Resource")}
    assert pattern_of(requested) == REQUESTED_RULE_PATTERN
    intake, _ = template.function("intake")
    assert [t["Arn"] for t in requested["Properties"]["Targets"]] == [{"Fn::GetAtt": [intake, "Arn"]}]
    # EventBridge may invoke the intake, from these two rules only.
    sources = {
        json.dumps(p["Properties"]["SourceArn"], sort_keys=True)
        for p in template.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [intake, "Arn"]}
    }
    assert sources == {
        json.dumps({"Fn::GetAtt": [template.by_path(path), "Arn"]}, sort_keys=True)
        for path in ("/Intake/InboxObjects/Resource", "/Intake/GenerationRequested/Resource")
    }


@pytest.mark.parametrize("key", sorted(INTAKE_FUNCTIONS))
def test_intake_environment_names_both_state_machines(template: Template, key: str) -> None:
    _, props = template.function(key)
    variables = props["Environment"]["Variables"]
    expected = intake_environment(table="t", bucket="b", bus="e", state_machine_arn="s", batch_state_machine_arn="x")
    assert set(expected) <= set(variables)
    assert variables["INBOX_PREFIX"] == INBOX_PREFIX
    assert variables["STATE_MACHINE_ARN"] == {"Ref": template.by_path("/Workflow/StateMachine/Resource")}
    assert "VideoGenStack-video-batch" in json.dumps(variables["BATCH_STATE_MACHINE_ARN"])
    assert "PROVIDER_CONCURRENCY" not in variables  # no caps by default


def test_intake_grants(template: Template) -> None:
    statements = template.function_statements("intake")
    assert object_grants(template, "intake") == {
        "inbox/*": {"s3:GetObject"},
        "inbox/*.error.json": {"s3:PutObject"},
        "inputs/*": {"s3:PutObject"},
        "batches/*": {"s3:PutObject", "s3:DeleteObject"},
    }
    assert actions_on(statements, table(template, "Jobs")) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchGetItem",
    }
    for machine in ("/Workflow/StateMachine/Resource", "/Batch/StateMachine/Resource"):
        assert actions_on(statements, {"Ref": template.by_path(machine)}) == {"states:StartExecution"}
    assert actions_on(statements, {"Fn::GetAtt": [template.by_path("/Events/Bus/Resource"), "Arn"]}) == {
        "events:PutEvents"
    }
    assert actions_on(statements, {"Fn::GetAtt": [bucket_id(template), "Arn"]}) == {"s3:ListBucket"}


def test_batch_function_grants(template: Template) -> None:
    assert object_grants(template, "batch-read") == {
        "inbox/*": {"s3:GetObject"},
        "inbox/*.error.json": {"s3:PutObject"},
        "batches/*": {"s3:PutObject"},
    }
    assert object_grants(template, "batch-line") == {
        "inbox/*": {"s3:GetObject"},
        "batches/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        "inputs/*": {"s3:PutObject"},
    }
    assert object_grants(template, "batch-seal") == {"batches/*": {"s3:PutObject", "s3:DeleteObject"}}
    jobs = table(template, "Jobs")
    assert actions_on(template.function_statements("batch-read"), jobs) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    for key in ("batch-line", "batch-seal"):
        assert actions_on(template.function_statements(key), jobs) == {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchGetItem",
        }
    main = {"Ref": template.by_path("/Workflow/StateMachine/Resource")}
    starts = {key: actions_on(template.function_statements(key), main) for key in INTAKE_FUNCTIONS}
    assert starts == {
        "intake": {"states:StartExecution"},
        "batch-read": set(),
        "batch-line": {"states:StartExecution"},
        "batch-seal": set(),
    }


def test_finalize_and_the_api_can_complete_a_batch(template: Template) -> None:
    for key in ("finalize", "api"):
        assert object_grants(template, key)["batches/*"] == {"s3:PutObject", "s3:DeleteObject"}, key
        assert "dynamodb:BatchGetItem" in actions_on(template.function_statements(key), table(template, "Jobs"))
    assert "dynamodb:PutItem" not in actions_on(template.function_statements("finalize"), table(template, "Jobs"))


# --- the batch state machine --------------------------------------------------------------------------------


def test_batch_state_machine(template: Template) -> None:
    logical_id = template.by_path("/Batch/StateMachine/Resource")
    props = template.props(logical_id)
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "VideoGenStack-video-batch"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    definition = props["DefinitionString"]
    assert definition == BATCH_ASL_PATH.read_text(encoding="utf-8") or "Fn::Join" in definition
    assert props["DefinitionSubstitutions"] == {
        placeholder: {"Fn::GetAtt": [template.function(key)[0], "Arn"]}
        for placeholder, key in BATCH_ASL_SUBSTITUTIONS.items()
    }
    role = props["RoleArn"]["Fn::GetAtt"][0]
    statements = template.policy_statements(role)
    invoked = {
        json.dumps(r, sort_keys=True)
        for s in statements
        if "lambda:InvokeFunction" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }
    for key in BATCH_ASL_SUBSTITUTIONS.values():
        assert json.dumps({"Fn::GetAtt": [template.function(key)[0], "Arn"]}, sort_keys=True) in invoked
    # The Distributed Map starts, describes and stops child executions of this state machine only.
    starts = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert len(starts) == 1
    assert ":stateMachine:VideoGenStack-video-batch" in json.dumps(starts[0]["Resource"])
    children = [s for s in statements if "states:DescribeExecution" in as_list(s["Action"])]
    assert len(children) == 1
    assert ":execution:VideoGenStack-video-batch*" in json.dumps(children[0]["Resource"])


# --- webhooks -----------------------------------------------------------------------------------------------


def test_webhook_queue_and_dead_letter_queue(template: Template) -> None:
    queue = template.props(template.by_path("/Webhooks/Queue/Resource"))
    dlq_id = template.by_path("/Webhooks/DeadLetters/Resource")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 4 * 24 * 3600
    assert queue["VisibilityTimeout"] >= 6 * WEBHOOK_FUNCTIONS["webhook"].timeout_seconds
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 50}
    dlq = template.props(dlq_id)
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["VisibilityTimeout"] >= 6 * WEBHOOK_FUNCTIONS["webhook-dlq"].timeout_seconds
    for path in ("/Webhooks/Queue/Resource", "/Webhooks/DeadLetters/Resource"):
        queue_id = template.by_path(path)
        policies = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in template.of_type("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_id} in p["Properties"]["Queues"]
        ]
        denies = [s for statements in policies for s in statements if s["Effect"] == "Deny"]
        assert denies, path
        assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, path


def test_webhook_rule_feeds_the_queue(template: Template) -> None:
    terminal = rule(template, "/Webhooks/TerminalEvents/Resource")
    assert terminal["Properties"]["EventBusName"] == {"Ref": template.by_path("/Events/Bus/Resource")}
    assert pattern_of(terminal) == {"source": [EVENT_SOURCE], "detail-type": [COMPLETED, FAILED]}
    queue = template.by_path("/Webhooks/Queue/Resource")
    assert [t["Arn"] for t in terminal["Properties"]["Targets"]] == [{"Fn::GetAtt": [queue, "Arn"]}]


def test_webhook_functions_and_their_event_sources(template: Template) -> None:
    mappings = {
        m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
        for m in template.of_type("AWS::Lambda::EventSourceMapping").values()
    }
    webhook, props = template.function("webhook")
    assert props["Handler"] == "functions.webhooks.handler.queue_handler"
    assert mappings[webhook]["EventSourceArn"] == {"Fn::GetAtt": [template.by_path("/Webhooks/Queue/Resource"), "Arn"]}
    assert mappings[webhook]["BatchSize"] == 1
    assert mappings[webhook]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    dead, props = template.function("webhook-dlq")
    assert props["Handler"] == "functions.webhooks.handler.dead_letter_handler"
    assert mappings[dead]["EventSourceArn"] == {
        "Fn::GetAtt": [template.by_path("/Webhooks/DeadLetters/Resource"), "Arn"]
    }
    for key in WEBHOOK_FUNCTIONS:
        variables = template.function(key)[1]["Environment"]["Variables"]
        assert variables["JOBS_TABLE_NAME"] == {"Ref": template.by_path("/Storage/Jobs/Resource")}
        assert variables["API_KEYS_TABLE_NAME"] == {"Ref": template.by_path("/Storage/ApiKeys/Resource")}


def test_webhook_reads_only_tenant_items_of_the_api_keys_table(template: Template) -> None:
    statements = template.function_statements("webhook")
    keys = table(template, "ApiKeys")
    on_keys = [s for s in statements if keys in as_list(s["Resource"])]
    assert on_keys == [
        {
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["tenant#*"]}},
            "Effect": "Allow",
            "Resource": keys,
        }
    ]
    assert actions_on(statements, table(template, "Jobs")) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    queue = {"Fn::GetAtt": [template.by_path("/Webhooks/Queue/Resource"), "Arn"]}
    assert "sqs:ChangeMessageVisibility" in actions_on(statements, queue)
    dead = template.function_statements("webhook-dlq")
    assert not [s for s in dead if keys in as_list(s["Resource"])]
    assert actions_on(dead, table(template, "Jobs")) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}


# --- alarms, outputs ----------------------------------------------------------------------------------------


def test_batch_and_webhook_alarms(template: Template) -> None:
    alarms = {
        template.resources[name]["Metadata"]["aws:cdk:path"].split("/")[-2]: props["Properties"]
        for name, props in template.of_type("AWS::CloudWatch::Alarm").items()
    }
    failed = alarms["BatchExecutionsFailed"]
    assert failed["MetricName"] == "ExecutionsFailed"
    assert failed["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": template.by_path("/Batch/StateMachine/Resource")}}
    ]
    depth = alarms["WebhookDeadLetters"]
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert depth["Namespace"] == "AWS/SQS"
    assert depth["Threshold"] == 1
    assert depth["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert depth["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": [template.by_path("/Webhooks/DeadLetters/Resource"), "QueueName"]
    }


def test_event_driven_outputs(template: Template) -> None:
    outputs = template.outputs()
    assert outputs["InboxPrefix"]["Value"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id(template)}, "/inbox/"]]}
    assert outputs["BatchStateMachineArn"]["Value"] == {"Ref": template.by_path("/Batch/StateMachine/Resource")}
    assert outputs["WebhookQueueUrl"]["Value"] == {"Ref": template.by_path("/Webhooks/Queue/Resource")}


# --- provider concurrency -----------------------------------------------------------------------------------


def test_provider_concurrency_option() -> None:
    options = StackOptions.from_context({"providerConcurrency": '{"kling": 5, "runway": 2}'}.get)
    assert options.provider_concurrency_json == '{"kling":5,"runway":2}'
    assert StackOptions.from_context({"providerConcurrency": {"kling": 3}}.get).provider_concurrency_json == (
        '{"kling":3}'
    )
    assert StackOptions().provider_concurrency_json is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"nope": 1}', "unknown dialect"),
        ('{"kling": 0}', "positive"),
        ('{"kling": "5"}', "positive"),
        ('{"kling": true}', "positive"),
        ("[5]", "JSON object"),
        ("kling=5", "JSON object"),
    ],
)
def test_provider_concurrency_is_validated(raw: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        StackOptions.from_context({"providerConcurrency": raw}.get)


def test_provider_concurrency_reaches_the_functions_that_take_or_give_slots() -> None:
    from aws_cdk import App

    from infra.config import ALL_FUNCTIONS, PROVIDER_CONCURRENCY_FUNCTIONS
    from infra.options import cdk_json_context
    from infra.stack import VideoGenStack

    app = App(context={**cdk_json_context(), "aws:cdk:enable-path-metadata": True})
    stack = VideoGenStack(app, "Caps", options=StackOptions(stack_name="Caps", provider_concurrency=(("kling", 5),)))
    caps = Template(app.synth().get_stack_by_name(stack.stack_name).template)
    assert set(PROVIDER_CONCURRENCY_FUNCTIONS) == {
        "submit",
        "poll",
        "finalize",
        "api",
        "intake",
        "batch-line",
        "reaper",
    }
    for key in ALL_FUNCTIONS:
        variables = caps.function(key)[1]["Environment"]["Variables"]
        if key in PROVIDER_CONCURRENCY_FUNCTIONS:
            assert variables["PROVIDER_CONCURRENCY"] == '{"kling":5}', key
        else:
            assert "PROVIDER_CONCURRENCY" not in variables, key


def test_the_deploy_guide_covers_the_event_driven_features() -> None:
    text = DEPLOY_GUIDE.read_text(encoding="utf-8")
    for needle in (
        "providerConcurrency",
        "inbox/",
        "results.jsonl",
        "put-events",
        "Video Generation Requested",
        "tenant#",
    ):
        assert needle in text, needle
