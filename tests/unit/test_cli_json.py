"""`videogen generate --json`: however a run ends, the last stdout line is one JSON object with every key of the
contract, and the exit code says how it ended. The local stack is replaced by a stand-in for
local.generate.generate (``main(generate_video=...)``), so every ending is reached without timing; the real
pipeline's endings are in tests/e2e/test_cli.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.common.errors import InvalidRequestError, ProviderUnavailableError
from local.cli import main
from local.generate import GenerateInterrupted
from local.outcome import GenerateOutcome

CONTRACT_KEYS = {"id", "status", "model", "s3_uri", "file", "bytes", "sha256", "cost_usd", "error"}
"""The spec (issue 4): {"id", "status": completed|failed|cancelled, "model", "s3_uri", "file", "bytes",
"sha256", "cost_usd", "error": null | {"code", "message"}}."""
STATUSES = {"completed", "failed", "cancelled"}
PROMPT = "A paper kite"

COMPLETED = GenerateOutcome(
    id="video_1",
    status="completed",
    model="veo3-fast",
    s3_uri="s3://videogen-videos/videos/video_1.mp4",
    file="output/video_1.mp4",
    bytes=8418,
    sha256="ab" * 32,
    cost_usd=0.4,
    event={"detail-type": "Video Generation Completed"},
)
FAILED = GenerateOutcome(
    id="video_2",
    status="failed",
    model="veo3-fast",
    cost_usd=0.4,
    error={"code": "content_filtered", "message": "The provider's content filter refused the prompt."},
)
CANCELLED = GenerateOutcome(
    id="video_3",
    status="cancelled",
    model="veo3-fast",
    error={"code": "cancelled", "message": "Cancelled with Ctrl-C."},
)


@dataclass(frozen=True)
class Ending:
    """What the stand-in for the pipeline does: return this outcome, or raise this exception."""

    returns: GenerateOutcome | None = None
    raises: BaseException | None = None

    def __call__(self, fields: dict[str, Any], **options: Any) -> GenerateOutcome:
        if self.raises is not None:
            raise self.raises
        assert self.returns is not None
        return self.returns


def never_called(fields: dict[str, Any], **options: Any) -> GenerateOutcome:
    raise AssertionError("the pipeline was started for input the CLI should have refused")


def last_json(stdout: str) -> dict[str, Any]:
    lines = stdout.rstrip("\n").splitlines()
    assert lines, "nothing on stdout"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def assert_contract(result: dict[str, Any]) -> None:
    assert set(result) == CONTRACT_KEYS, f"keys {sorted(result)}"
    assert result["status"] in STATUSES
    if result["status"] == "completed":
        assert result["error"] is None
    else:
        assert isinstance(result["error"], dict)
        assert {"code", "message"} <= set(result["error"])
        assert result["error"]["message"]


ENDINGS = [
    pytest.param(Ending(returns=COMPLETED), 0, "completed", None, "video_1", id="completed"),
    pytest.param(Ending(returns=FAILED), 1, "failed", "content_filtered", "video_2", id="failed"),
    pytest.param(
        Ending(raises=GenerateInterrupted(CANCELLED)), 130, "cancelled", "cancelled", "video_3", id="cancelled"
    ),
    pytest.param(Ending(raises=KeyboardInterrupt()), 130, "cancelled", "cancelled", None, id="ctrl-c-before-the-job"),
    pytest.param(
        Ending(raises=ProviderUnavailableError("The local stack could not start the workflow.")),
        1,
        "failed",
        "provider_unavailable",
        None,
        id="failed-before-the-job",
    ),
    pytest.param(
        Ending(raises=InvalidRequestError("seconds: 7 is not allowed for veo3-fast; allowed: 8", param="seconds")),
        2,
        "failed",
        "invalid_request",
        None,
        id="invalid-request",
    ),
]


@pytest.mark.parametrize(("ending", "exit_code", "status", "code", "job_id"), ENDINGS)
def test_every_ending_prints_every_key_of_the_contract(
    capsys: pytest.CaptureFixture[str],
    ending: Ending,
    exit_code: int,
    status: str,
    code: str | None,
    job_id: str | None,
) -> None:
    # Given a run of veo3-fast that ends this way
    argv = ["generate", PROMPT, "--model", "veo3-fast", "--json"]

    # When
    returned = main(argv, generate_video=ending)

    # Then the exit code says how it ended, and the last stdout line is the whole contract
    assert returned == exit_code
    result = last_json(capsys.readouterr().out)
    assert_contract(result)
    assert result["status"] == status
    assert (result["error"] or {}).get("code") == code
    assert result["id"] == job_id
    assert result["model"] == "veo3-fast"


def test_a_completed_run_reports_the_stored_video_and_not_the_event(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a completed run

    # When
    main(["generate", PROMPT, "--model", "veo3-fast", "--json"], generate_video=Ending(returns=COMPLETED))

    # Then the JSON is the outcome's fields (the event is shown on stderr, not in the contract)
    assert last_json(capsys.readouterr().out) == {
        "id": "video_1",
        "status": "completed",
        "model": "veo3-fast",
        "s3_uri": "s3://videogen-videos/videos/video_1.mp4",
        "file": "output/video_1.mp4",
        "bytes": 8418,
        "sha256": "ab" * 32,
        "cost_usd": 0.4,
        "error": None,
    }


REFUSED_BY_THE_CLI = [
    pytest.param(["--model", "veo3-fast", "--seconds", "seven"], "seconds", "veo3-fast", id="flag-of-the-wrong-type"),
    pytest.param(["--model", "veo3-fast", "--image", "{missing}"], "images[0]", "veo3-fast", id="no-such-image-file"),
    pytest.param(["--model", "veo3-fast", "--poll-interval", "-1"], "poll_interval", "veo3-fast", id="negative-poll"),
    pytest.param(["--model", "no-such-model", "--seconds", "seven"], "seconds", None, id="flag-error-unknown-model"),
]


@pytest.mark.parametrize(("flags", "param", "model"), REFUSED_BY_THE_CLI)
def test_input_the_cli_refuses_is_a_failed_run_with_exit_2_and_every_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], param: str, model: str | None
) -> None:
    # Given input the CLI refuses before the pipeline is involved
    args = [flag.format(missing=tmp_path / "missing.png") for flag in flags]

    # When
    returned = main(["generate", PROMPT, *args, "--json"], generate_video=never_called)

    # Then: exit 2, and the contract's object, failed with invalid_request naming the field
    assert returned == 2
    result = last_json(capsys.readouterr().out)
    assert_contract(result)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "invalid_request"
    assert result["error"]["param"] == param
    assert result["id"] is None
    assert {result[name] for name in ("s3_uri", "file", "bytes", "sha256", "cost_usd")} == {None}
    if "--seconds" not in flags:  # argparse stops before the model is read
        assert result["model"] == model


def test_an_unknown_model_is_not_named_as_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a request for a model that is not in the catalog, refused by validation
    refusal = InvalidRequestError("model: no-such-model is not a videogen model", param="model")

    # When
    returned = main(["generate", PROMPT, "--model", "no-such-model", "--json"], generate_video=Ending(raises=refusal))

    # Then the JSON has every key, and model is null rather than an id no catalog lookup would find
    assert returned == 2
    result = last_json(capsys.readouterr().out)
    assert_contract(result)
    assert result["model"] is None
    assert result["error"]["param"] == "model"
