"""The one seam into moto's internals (local/lambdas.py): if a moto upgrade moves it, these fail loudly."""

from __future__ import annotations

import inspect
import json
import sys
import threading
import time
from importlib.metadata import version

import boto3

from local.lambdas import LambdaRegistry, route_invocations
from local.resources import ACCOUNT


def test_moto_is_the_pinned_version_the_seam_was_written_for() -> None:
    assert version("moto") == "5.2.5", "local/lambdas.py overrides LambdaSimpleBackend.invoke: re-check it"


def test_the_simple_lambda_backend_still_has_the_invoke_we_override() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    parameters = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_a_task_state_runs_the_registered_handler_and_its_error_reaches_catch(aws: None) -> None:
    # Given a two-state machine whose task raises a named error, caught into a Pass state
    def explode(event, context):
        raise ValueError(f"boom {event['n']}")

    function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:explode"
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="seam", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/seam"
    )["stateMachineArn"]
    registry = LambdaRegistry({"explode": explode})
    # When it runs with the registry routed in
    with route_invocations(registry):
        execution = sfn.start_execution(stateMachineArn=arn, name="seam-1", input=json.dumps({"n": 7}))
        for _ in range(200):
            result = sfn.describe_execution(executionArn=execution["executionArn"])
            if result["status"] != "RUNNING":
                break
            time.sleep(0.02)
    # Then the handler ran in-process and its exception class is the error name Catch matched
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["error"]["Error"] == "ValueError"
    assert "boom 7" in output["error"]["Cause"]
    assert [(i.function_name, i.error_type) for i in registry.invocations] == [("explode", "ValueError")]


def test_moto_dynamodb_still_answers_every_request_through_the_method_we_serialise() -> None:
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler

    # DynamoHandler overrides BaseResponse.call_action, which dispatches every DynamoDB action and serialises
    # its answer: holding the lock around it covers the condition, the write and the answer
    assert "call_action" in vars(DynamoHandler)
    assert callable(vars(BaseResponse).get("call_action"))


def test_conditional_writes_from_racing_threads_let_exactly_one_through(aws: None) -> None:
    # Given a cap of one provider slot, and threads switching as often as the interpreter allows
    from functions.common.concurrency import ProviderSlots
    from local.resources import provision

    table_name = provision().table
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(20):
            # When four jobs ask for the slot at the same instant, each from its own thread
            start = threading.Barrier(4)
            winners: list[str] = []

            def ask(job_id: str, start: threading.Barrier, winners: list[str]) -> None:
                slots = ProviderSlots(boto3.resource("dynamodb").Table(table_name), {"videos": 1})
                start.wait()
                if slots.acquire("videos", job_id):
                    winners.append(job_id)

            threads = [threading.Thread(target=ask, args=(f"video_{round_}_{n}", start, winners)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            # Then exactly one of them holds it
            assert len(winners) == 1, f"round {round_}: {winners}"
            ProviderSlots(boto3.resource("dynamodb").Table(table_name), {"videos": 1}).release("videos", winners[0])
    finally:
        sys.setswitchinterval(previous)
