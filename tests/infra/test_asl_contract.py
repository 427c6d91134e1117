"""The state machine file's contract with the code: names, routes, retries, catches, substitutions."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.common.errors import ERRORS_BY_NAME, RetryableError
from functions.common.video_request import MAX_FALLBACK_MODELS, VideoRequest
from functions.common.workflow import StepState
from functions.providers.catalog import load_catalog
from infra.config import (
    ASL_PATH,
    ASL_SUBSTITUTIONS,
    BATCH_ASL_PATH,
    PLACEHOLDER,
    WORKFLOW_FUNCTIONS,
    asl_text,
    load_definition,
)

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(ASL_PATH.read_text())
    return definition


def tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in asl["States"].items() if state["Type"] == "Task"}


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used() -> None:
    # Given the raw file / When its placeholders are listed / Then they are exactly the substitutions
    placeholders = set(PLACEHOLDER.findall(ASL_PATH.read_text()))
    assert placeholders == set(ASL_SUBSTITUTIONS)
    assert set(ASL_SUBSTITUTIONS.values()) <= set(WORKFLOW_FUNCTIONS)
    definition = load_definition({key: f"arn:test:{key}" for key in WORKFLOW_FUNCTIONS})
    assert "${" not in definition


def test_a_definition_whose_placeholders_differ_from_the_substitutions_is_refused(tmp_path: Path) -> None:
    # Given a definition that uses one placeholder the stacks do not provide and misses the ones they do
    definition = tmp_path / "drifted.asl.json"
    definition.write_text('{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${RenamedArn}"}}}')

    # When it is loaded, Then the error names the placeholders on both sides
    with pytest.raises(KeyError, match="RenamedArn") as refused:
        asl_text(definition, ASL_SUBSTITUTIONS)
    assert sorted(ASL_SUBSTITUTIONS)[0] in str(refused.value)

    # And a missing file says which one
    with pytest.raises(FileNotFoundError, match=r"missing\.asl\.json"):
        asl_text(tmp_path / "missing.asl.json", ASL_SUBSTITUTIONS)


def test_every_transition_names_an_existing_state_and_every_state_is_reachable(asl: dict[str, Any]) -> None:
    states = asl["States"]
    targets: set[str] = {asl["StartAt"]}
    for state in states.values():
        targets.update(t for t in (state.get("Next"), state.get("Default")) if t)
        targets.update(choice["Next"] for choice in state.get("Choices", []))
        targets.update(catch["Next"] for catch in state.get("Catch", []))
    assert targets <= set(states), targets - set(states)
    assert set(states) <= targets, f"unreachable: {set(states) - targets}"


def test_every_task_retries_transient_errors_and_catches_everything(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_TRANSIENT, name
        assert all(retrier.get("JitterStrategy") == "FULL" for retrier in state["Retry"]), name
        assert any(catch["ErrorEquals"] == ["States.ALL"] for catch in state["Catch"]), name


def task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Task state, including those inside a Map's or Parallel's own states."""
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for inner in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                yield from task_states(inner["States"])


@pytest.mark.parametrize("path", [ASL_PATH, BATCH_ASL_PATH], ids=lambda path: path.name)
def test_every_task_retries_transient_aws_errors(path: Path) -> None:
    # Given a state machine whose Lambdas turn throttled or failing AWS calls into TransientAwsError
    # (step_handler and the intake's handlers, through functions/common/aws_errors.py)
    states = json.loads(path.read_text())["States"]
    # When each Task's Retry is read / Then it retries that name: a throttle never fails a job
    for name, state in task_states(states):
        retried = {e for retrier in state["Retry"] for e in retrier["ErrorEquals"]}
        assert "TransientAwsError" in retried, (path.name, name)


def test_every_error_name_is_a_real_exception_class_or_an_aws_name(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        for rule in [*state["Retry"], *state["Catch"]]:
            for error in rule["ErrorEquals"]:
                assert error in ERRORS_BY_NAME or error.startswith(("States.", "Lambda.")), (name, error)


def test_only_retryable_errors_are_retried(asl: dict[str, Any]) -> None:
    retryable = {name for name, cls in ERRORS_BY_NAME.items() if issubclass(cls, RetryableError)}
    for name, state in tasks(asl).items():
        ours = {e for retrier in state["Retry"] for e in retrier["ErrorEquals"] if e in ERRORS_BY_NAME}
        assert ours <= retryable, (name, ours - retryable)


def test_every_retryable_error_is_retried_by_the_provider_facing_steps(asl: dict[str, Any]) -> None:
    # Step Functions matches exact names: a RetryableError subclass the ASL does not name is never retried.
    # Store is provider-facing too: it downloads from the provider's host and may poll the task again.
    retryable = {name for name, cls in ERRORS_BY_NAME.items() if issubclass(cls, RetryableError)}
    retryable.discard("WebhookDeliveryError")  # raised by the webhook function, retried by its queue, never here
    for name in ("Submit", "Poll", "Store"):
        retried = {e for retrier in asl["States"][name]["Retry"] for e in retrier["ErrorEquals"]}
        assert retryable <= retried, (name, retryable - retried)


def raised_names(package: Path) -> set[str]:
    """The names of the exceptions ``raise Name(...)`` / ``raise Name`` statements in a package raise."""
    names: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


@pytest.mark.parametrize(("state", "package"), [("Submit", "submit"), ("Poll", "poll"), ("Store", "store")])
def test_every_retryable_error_a_step_raises_is_retried_by_its_state(
    asl: dict[str, Any], state: str, package: str
) -> None:
    # Given the retryable errors the step's own code raises (a 429 on Store's download, a 5xx, ...)
    retryable = {name for name, cls in ERRORS_BY_NAME.items() if issubclass(cls, RetryableError)}
    raised = raised_names(FUNCTIONS_DIR / package) & retryable
    # When the state's Retry is read / Then it names every one of them
    retried = {e for retrier in asl["States"][state]["Retry"] for e in retrier["ErrorEquals"]}
    assert raised <= retried, (state, raised - retried)


def test_every_error_class_defined_is_registered() -> None:
    import functions.common.errors as errors_module

    defined = {
        name
        for name, value in vars(errors_module).items()
        if isinstance(value, type) and issubclass(value, errors_module.VideogenError)
    }
    abstract = {"VideogenError", "RetryableError"}
    assert defined - abstract == set(ERRORS_BY_NAME)


def test_all_paths_lead_to_finalize(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        if name != "Finalize":
            assert all(catch["Next"] == "Finalize" for catch in state["Catch"]), name
    routes = {choice["StringEquals"] for choice in asl["States"]["Route"]["Choices"]}
    outcomes = set(StepState.model_fields["outcome"].annotation.__args__[0].__args__)  # type: ignore[union-attr]
    assert routes <= outcomes
    assert asl["States"]["Route"]["Default"] == "Finalize"


def test_execution_timeout_is_above_the_longest_possible_job(asl: dict[str, Any]) -> None:
    # Given the longest wait a request may ask for, for the first model and each fallback
    field = VideoRequest.model_fields["max_wait_seconds"]
    longest_request = max(m.le for m in field.metadata if hasattr(m, "le"))
    longest_catalog = max(spec.polling.max_wait_seconds for spec in load_catalog().models.values())
    longest = max(longest_request, longest_catalog) * (1 + MAX_FALLBACK_MODELS)
    # Then the execution times out only after all of them
    assert asl["TimeoutSeconds"] > longest


def test_statelint_accepts_the_definition() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statelint", str(ASL_PATH)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
