"""Workflow: the ASL file inline in the template, substituted with the functions' ARNs; Standard, logged, traced."""

from __future__ import annotations

import json
from typing import Any

from infra.config import ASL_PATH, ASL_SUBSTITUTIONS, WORKFLOW_FUNCTIONS, load_definition
from tests.infra.conftest import Template


def state_machine(template: Template) -> dict[str, Any]:
    return template.props(template.by_path("/Workflow/StateMachine/Resource"))


def test_definition_is_the_asl_file_inline(template: Template) -> None:
    # Given the template / Then the definition is the file's text itself (not an S3 location, not rebuilt)
    props = state_machine(template)
    assert "DefinitionS3Location" not in props
    assert props["DefinitionString"] == ASL_PATH.read_text(encoding="utf-8")


def test_substitutions_are_the_functions_arns(template: Template) -> None:
    substitutions = state_machine(template)["DefinitionSubstitutions"]
    assert set(substitutions) == set(ASL_SUBSTITUTIONS)
    for placeholder, key in ASL_SUBSTITUTIONS.items():
        function, _ = template.function(key)
        assert substitutions[placeholder] == {"Fn::GetAtt": [function, "Arn"]}


def test_definition_after_substitution_equals_the_file_after_substitution(template: Template) -> None:
    # Given what CloudFormation does: replace each ${placeholder} with its substitution
    props = state_machine(template)
    deployed = props["DefinitionString"]
    for placeholder, value in props["DefinitionSubstitutions"].items():
        deployed = deployed.replace("${" + placeholder + "}", f"arn-of:{value['Fn::GetAtt'][0]}")
    # Then it is what infra.config.load_definition (the local stack's loader) makes of the file
    local = load_definition({key: f"arn-of:{template.function(key)[0]}" for key in WORKFLOW_FUNCTIONS})
    assert json.loads(deployed) == json.loads(local)


def test_standard_type_logging_all_and_tracing(template: Template) -> None:
    props = state_machine(template)
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is True
    [destination] = logging["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert template.props(log_group)["LogGroupName"] == "/aws/vendedlogs/states/VideoGenStack-video-generation"
    assert template.props(log_group)["RetentionInDays"] == 30


def test_state_machine_may_invoke_exactly_the_workflow_functions(template: Template) -> None:
    # Given the state machine's role (made by CDK, extended through grants only)
    role = state_machine(template)["RoleArn"]["Fn::GetAtt"][0]
    invoke = [s for s in template.policy_statements(role) if s["Action"] == "lambda:InvokeFunction"]
    [statement] = invoke
    functions = {template.function(key)[0] for key in WORKFLOW_FUNCTIONS}
    arns = {json.dumps(r) for r in statement["Resource"]}
    expected = {json.dumps({"Fn::GetAtt": [f, "Arn"]}) for f in functions} | {
        json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [f, "Arn"]}, ":$LATEST"]]}) for f in functions
    }
    assert arns == expected
    # and the role has no inline or managed policy of its own
    role_props = template.props(role)
    assert "ManagedPolicyArns" not in role_props
    assert "Policies" not in role_props
