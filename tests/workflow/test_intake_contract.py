"""The intake's contracts, checked offline: the batch state machine file, config <-> code, the documented
examples, owners and names, the line index. (No AWS: these need no fixture.)"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from functions.api.logic import parse_create_body
from functions.common.batches import BatchCompletedDetail, LineResult
from functions.common.errors import ERRORS_BY_NAME, InvalidRequestError, RetryableError
from functions.common.events import REQUESTED
from functions.intake import logic as intake_logic
from functions.intake.logic import OFFSET, BatchInput, Intake, IntakeSettings, error_key_for
from functions.providers.catalog import load_catalog
from infra.config import (
    BATCH_ASL_PATH,
    BATCH_ASL_SUBSTITUTIONS,
    INBOX_PREFIX,
    INTAKE_FUNCTIONS,
    PLACEHOLDER,
    REQUESTED_DETAIL_TYPE,
    REQUESTED_RULE_PATTERN,
    ROOT,
    inbox_rule_pattern,
    intake_environment,
    load_batch_definition,
)
from local.lambdas import _import

LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
DOC = ROOT / "docs" / "events-and-inbox.md"


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(BATCH_ASL_PATH.read_text())
    return definition


def all_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, the Map's item processor's included."""
    found = dict(states)
    for state in states.values():
        if "ItemProcessor" in state:
            found.update(all_states(state["ItemProcessor"]["States"]))
    return found


def tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in all_states(asl["States"]).items() if s["Type"] == "Task"}


# --- the batch state machine ------------------------------------------------------------------------------


def test_every_placeholder_has_a_substitution_naming_an_intake_function() -> None:
    assert set(PLACEHOLDER.findall(BATCH_ASL_PATH.read_text())) == set(BATCH_ASL_SUBSTITUTIONS)
    assert set(BATCH_ASL_SUBSTITUTIONS.values()) <= set(INTAKE_FUNCTIONS)
    definition = load_batch_definition({key: f"arn:test:{key}" for key in INTAKE_FUNCTIONS})
    assert "${" not in definition


def test_every_transition_names_an_existing_state_and_every_state_is_reachable(asl: dict[str, Any]) -> None:
    def check(machine: dict[str, Any]) -> None:
        states = machine["States"]
        targets = {machine["StartAt"]}
        for state in states.values():
            targets.update(t for t in (state.get("Next"), state.get("Default")) if t)
            targets.update(choice["Next"] for choice in state.get("Choices", []))
            targets.update(catch["Next"] for catch in state.get("Catch", []))
            if "ItemProcessor" in state:
                check(state["ItemProcessor"])
        assert targets == set(states)

    check(asl)


def test_every_task_retries_transient_errors_with_jitter_and_catches_everything(asl: dict[str, Any]) -> None:
    retryable = {name for name, cls in ERRORS_BY_NAME.items() if issubclass(cls, RetryableError)}
    for name, state in tasks(asl).items():
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_TRANSIENT | {"TransientAwsError"}, name
        assert {e for e in retried if e in ERRORS_BY_NAME} <= retryable, name
        assert all(e in ERRORS_BY_NAME or e.startswith("Lambda.") for e in retried), name
        assert all(retrier["JitterStrategy"] == "FULL" for retrier in state["Retry"]), name
        assert [catch["ErrorEquals"] for catch in state["Catch"]] == [["States.ALL"]], name


def test_no_line_can_fail_the_map_and_seal_always_runs(asl: dict[str, Any]) -> None:
    lines = asl["States"]["Lines"]
    assert lines["ItemsPath"] == "$.lines"
    assert lines["ItemSelector"]["line.$"] == "$$.Map.Item.Value"
    assert lines["MaxConcurrencyPath"] == "$.max_concurrency"
    assert lines["ResultPath"] is None  # the lines' outputs never grow the state
    assert lines["ToleratedFailureCount"] >= IntakeSettings.model_fields["max_batch_lines"].default
    assert lines["Next"] == "Seal"
    assert [catch["Next"] for catch in lines["Catch"]] == ["Seal"]
    start_line = lines["ItemProcessor"]["States"]["StartLine"]
    assert [catch["Next"] for catch in start_line["Catch"]] == ["LineNotStarted"]


def test_statelint_accepts_the_batch_definition() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statelint", str(BATCH_ASL_PATH)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- config <-> code --------------------------------------------------------------------------------------


def test_the_rule_patterns_match_what_the_intake_handles() -> None:
    assert REQUESTED_DETAIL_TYPE == REQUESTED
    assert REQUESTED_RULE_PATTERN == {"detail-type": [REQUESTED]}
    pattern = inbox_rule_pattern("bucket-1")
    assert pattern["source"] == [intake_logic.S3_SOURCE]
    assert pattern["detail-type"] == [intake_logic.OBJECT_CREATED]
    assert IntakeSettings.model_fields["inbox_prefix"].default == INBOX_PREFIX


def test_the_intake_environment_is_what_its_settings_read() -> None:
    environment = intake_environment(
        table="t", bucket="b", bus="e", state_machine_arn="arn:sm", batch_state_machine_arn="arn:batch"
    )
    settings = IntakeSettings.model_validate({name.lower(): value for name, value in environment.items()})
    assert settings.batch_state_machine_arn == "arn:batch"
    assert {name.lower() for name in environment} <= set(IntakeSettings.model_fields)


@pytest.mark.parametrize("spec", INTAKE_FUNCTIONS.values(), ids=lambda spec: spec.key)
def test_every_intake_function_names_a_real_handler(spec: Any) -> None:
    assert callable(_import(spec.handler))


# --- names and owners --------------------------------------------------------------------------------------


def intake(**settings: Any) -> Intake:
    values = {
        "jobs_table_name": "t",
        "video_bucket_name": "b",
        "event_bus_name": "e",
        "state_machine_arn": "arn:sm",
        "batch_state_machine_arn": "arn:batch",
        **settings,
    }
    deps: Any = SimpleNamespace(catalog=load_catalog())
    return Intake(settings=IntakeSettings.model_validate(values), deps=deps, sfn=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        ("inbox/kite.json", "inbox"),
        ("inbox/alice/kite.json", "alice"),
        ("inbox/alice/deep/er/kite.jsonl", "alice"),
        ("inbox//kite.json", "inbox"),
    ],
)
def test_the_owner_is_the_first_folder_under_the_inbox(key: str, owner: str) -> None:
    assert intake().owner_of(key) == owner


def test_an_owner_longer_than_128_characters_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        intake().owner_of("inbox/" + "a" * 129 + "/x.json")
    assert caught.value.param == "owner"


@pytest.mark.parametrize(
    ("key", "report"),
    [
        ("inbox/a/cat.json", "inbox/a/cat.error.json"),
        ("inbox/a/shots.jsonl", "inbox/a/shots.error.json"),
        ("inbox/x.y.json", "inbox/x.y.error.json"),
    ],
)
def test_the_error_object_sits_next_to_the_request(key: str, report: str) -> None:
    assert error_key_for(key) == report


# --- the line index ----------------------------------------------------------------------------------------


class FakeS3:
    def __init__(self, data: bytes):
        self.data = data

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"ContentLength": len(self.data), "Body": io.BytesIO(self.data)}


@pytest.mark.parametrize("chunk", [1, 3, 1024])
@pytest.mark.parametrize(
    ("data", "requests"),
    [
        (b'{"a":1}\n{"b":2}\n', [1, 2]),
        (b'{"a":1}\n\n  \n{"b":2}', [1, 4]),
        (b'{"a":1}\r\n{"b":2}\r\n\r\n', [1, 2]),
        (b"\n\n", []),
        (b"", []),
    ],
)
def test_lines_are_indexed_by_their_byte_offsets(
    monkeypatch: pytest.MonkeyPatch, chunk: int, data: bytes, requests: list[int]
) -> None:
    monkeypatch.setattr(intake_logic, "READ_CHUNK_BYTES", chunk)
    service = intake()
    service.deps.s3 = FakeS3(data)  # type: ignore[assignment]
    offsets, found = service._scan_lines(BatchInput(batch_id="b1", bucket="b", key="k.jsonl", etag="e", owner="o"))
    assert found == requests
    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    assert len(offsets) == len(physical) + 1
    assert offsets[-1] == len(data)
    for number, line in enumerate(physical, start=1):
        assert data[offsets[number - 1] : offsets[number]].rstrip(b"\n") == line
    assert OFFSET.size == 8


# --- the documented examples -------------------------------------------------------------------------------


def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_documented_put_events_example_is_a_valid_request() -> None:
    (entries,) = re.findall(r"aws events put-events --entries '(.*)'", doc())
    (entry,) = json.loads(entries)
    assert entry["DetailType"] == REQUESTED
    detail = json.loads(entry["Detail"])
    detail.pop("owner")
    request = parse_create_body(detail, catalog=load_catalog())
    assert request.model == "veo3-fast"


def test_the_documented_json_examples_are_what_the_code_writes() -> None:
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", doc(), re.DOTALL)]
    error_object, batch_event, batch_rule, rejected_rule = blocks
    assert set(error_object) == {"error", "source"}
    assert set(error_object["error"]) == {"code", "message", "param"}
    BatchCompletedDetail.model_validate(batch_event)
    assert batch_rule == {"source": ["videogen"], "detail-type": ["Video Batch Completed"]}
    assert rejected_rule["detail"] == {"job_id": [None]}


def test_the_documented_results_lines_are_results_lines() -> None:
    block = doc().split("### Results", 1)[1].split("```", 2)[1]
    for line in block.strip().splitlines():
        result = LineResult.model_validate(json.loads(line))
        assert json.loads(result.to_json()).keys() == json.loads(line).keys()
