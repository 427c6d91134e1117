"""End to end: `videogen generate` as a user runs it, on the embedded local stack.

Each call is a subprocess of the installed console script, with COMETAPI_KEY removed (the CometAPI simulator
stands in, at the stack's time scale), in a temporary working directory, with a timeout. The contract under
test: exit 0 completed, 1 failed (code and message on stderr), 2 invalid input (nothing started; stderr names
the field), 130 on Ctrl-C after the job is cancelled; with --json the last stdout line is one JSON object.
The Ctrl-C test points the CLI at a simulator of its own (COMETAPI_BASE_URL), to see the provider cancel.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from functions.providers.catalog import Mode, load_catalog
from local.simulator import CometApiSimulator
from tests.e2e.conftest import CliRun, GenerateOnce, provider_env, run_videogen, running_videogen, write_png

CATALOG = load_catalog()
CONTRACT_KEYS = {"id", "status", "model", "s3_uri", "file", "bytes", "sha256", "cost_usd", "error"}
IMAGE_DIALECT_MODELS = ("veo3-fast", "kling-v1-6", "gen3a_turbo")
"""One image-capable model per dialect: videos (multipart upload), Kling (base64), Runway (data URI)."""


def needs_image(model_id: str) -> bool:
    return not CATALOG.models[model_id].supports(Mode.TEXT)


def top_level_boxes(data: bytes) -> list[str]:
    """The ISO-BMFF top-level box types, checking that their sizes tile the file exactly."""
    boxes, offset = [], 0
    while offset < len(data):
        assert offset + 8 <= len(data), f"a truncated box header at byte {offset}"
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        assert size >= 8, f"box {kind!r} at byte {offset} has an impossible size {size}"
        assert offset + size <= len(data), f"box {kind!r} at byte {offset} runs past the end of the file"
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


def assert_refused_contract(run: CliRun, param: str) -> None:
    """Invalid input: exit 2, and with --json a failed run with every key, nothing of a job, and the field named."""
    assert run.returncode == 2, run.explain()
    result = run.last_json
    assert set(result) == CONTRACT_KEYS, f"keys {sorted(result)}\n{run.explain()}"
    assert result["status"] == "failed"
    assert result["error"]["code"] == "invalid_request"
    assert result["error"]["param"] == param
    assert result["error"]["message"]
    assert {result[name] for name in ("id", "s3_uri", "file", "bytes", "sha256", "cost_usd")} == {None}


def assert_completed_contract(run: CliRun, model_id: str, out: Path) -> None:
    assert run.returncode == 0, run.explain()
    result = run.last_json
    assert result.keys() >= CONTRACT_KEYS, f"missing keys {CONTRACT_KEYS - result.keys()}"
    assert result["status"] == "completed"
    assert result["error"] is None
    assert result["model"] == model_id
    assert str(result["id"]).startswith("video_")
    assert str(result["s3_uri"]).startswith("s3://")
    assert Path(result["file"]).resolve() == out.resolve()
    data = out.read_bytes()
    assert result["bytes"] == len(data) == out.stat().st_size
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert data[4:8] == b"ftyp", f"not an MP4: starts with {data[:16]!r}"
    boxes = top_level_boxes(data)
    assert boxes[0] == "ftyp"
    assert {"moov", "mdat"} <= set(boxes), f"top-level boxes {boxes}"


# --- generate: completed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", CATALOG.ids())
def test_generate_completes_every_catalog_model_on_the_simulator(model_id: str, generate_once: GenerateOnce) -> None:
    # Given a catalog model at its defaults (with an image where the model only does image-to-video)
    spec = CATALOG.models[model_id]

    # When
    generated = generate_once(model_id, needs_image(model_id))

    # Then the video is in --out, as the JSON says, at the catalog's estimate, from the simulator
    assert_completed_contract(generated.run, model_id, generated.out)
    assert generated.run.last_json["cost_usd"] == pytest.approx(spec.estimate_cost_usd(spec.seconds.default))
    assert "simulator" in generated.run.stderr_text.lower()


@pytest.mark.parametrize("model_id", IMAGE_DIALECT_MODELS)
def test_generate_takes_a_local_png_for_each_image_dialect(model_id: str, generate_once: GenerateOnce) -> None:
    # Given an image-capable model of each dialect, and a 400x400 PNG on disk
    assert CATALOG.models[model_id].supports(Mode.IMAGE)

    # When
    generated = generate_once(model_id, True)

    # Then (that the CLI reads and checks that file: see the too-small and not-an-image cases below)
    assert_completed_contract(generated.run, model_id, generated.out)


def test_generate_warns_about_a_deprecated_model(generate_once: GenerateOnce) -> None:
    # Given sora-2, deprecated in the catalog, and veo3-fast, which is not
    assert CATALOG.models["sora-2"].deprecated is not None
    assert CATALOG.models["veo3-fast"].deprecated is None

    # When
    deprecated = generate_once("sora-2", False).run
    current = generate_once("veo3-fast", False).run

    # Then only the deprecated one warns (on a line naming it), and it still runs
    assert deprecated.returncode == 0, deprecated.explain()
    warnings = [line for line in deprecated.stderr.splitlines() if "deprecat" in line.lower()]
    assert any("sora-2" in line for line in warnings), deprecated.explain()
    assert "deprecat" not in current.stderr.lower(), current.explain()


# --- generate: failed -------------------------------------------------------------------------------------------


def test_generate_reports_a_content_filter_failure_with_exit_1(tmp_path: Path) -> None:
    # Given a prompt the simulator fails as a content-filter rejection (no reason given)
    prompt = "[sim:filter] A paper kite"

    # When
    run = run_videogen("generate", prompt, "--model", "veo3-fast", "--poll-interval", "0", "--json", cwd=tmp_path)

    # Then
    assert run.returncode == 1, run.explain()
    result = run.last_json
    assert result.keys() >= CONTRACT_KEYS
    assert result["status"] == "failed"
    assert result["error"]["code"] == "content_filtered"
    assert result["error"]["message"]
    assert result["file"] is None
    assert result["s3_uri"] is None
    assert "content_filtered" in run.stderr_text
    assert not (tmp_path / "output").exists()


# --- generate: invalid input --------------------------------------------------------------------------------------


INVALID_CASES = [
    pytest.param(["--model", "no-such-model"], "model", ["no-such-model", "veo3-fast"], id="unknown-model"),
    pytest.param(["--model", "kling-v1-6", "--seconds", "7"], "seconds", ["5, 10"], id="seconds-not-allowed"),
    pytest.param(["--model", "veo3-fast", "--image", "{missing}"], "images[0]", ["missing.png"], id="no-such-file"),
    pytest.param(["--model", "gen3a_turbo"], "images", ["gen3a_turbo", "image"], id="image-only-model-no-image"),
    pytest.param(["--model", "kling-v1-6", "--image", "{small}"], "images[0]", ["300x300"], id="image-too-small"),
    pytest.param(["--model", "veo3-fast", "--image", "{not_image}"], "images[0]", [], id="file-not-an-image"),
]


@pytest.mark.parametrize(("flags", "param", "mentions"), INVALID_CASES)
def test_generate_refuses_invalid_input_with_exit_2_and_starts_nothing(
    tmp_path: Path, flags: list[str], param: str, mentions: list[str]
) -> None:
    # Given an invalid request (and the files some cases name)
    files = {
        "missing": tmp_path / "missing.png",
        "small": write_png(tmp_path / "small.png", 299, 299),
        "not_image": tmp_path / "notes.png",
    }
    files["not_image"].write_text("not an image, whatever the name says")
    args = [flag.format(**files) for flag in flags]

    # When
    run = run_videogen("generate", "A paper kite", *args, "--json", cwd=tmp_path)

    # Then: exit 2, the JSON (every key) names the field, stderr too, and no job was started
    assert_refused_contract(run, param)
    assert param in run.last_json["error"]["message"]
    assert param in run.stderr_text
    for text in mentions:
        assert text in run.stderr_text
    assert "started" not in run.stderr
    assert not (tmp_path / "output").exists()


def test_generate_refuses_a_flag_of_the_wrong_type_with_the_json_contract(tmp_path: Path) -> None:
    # Given --seconds that is not a number (argparse's own check, before any request is built)
    args = ["generate", "A paper kite", "--model", "kling-v1-6", "--seconds", "seven", "--json"]

    # When
    run = run_videogen(*args, cwd=tmp_path)

    # Then it is invalid input like any other: exit 2, and with --json the last line is the refused run's object
    assert_refused_contract(run, "seconds")
    assert "--seconds" in run.stderr_text
    assert "started" not in run.stderr


def test_generate_refuses_a_negative_poll_interval_before_anything_starts(tmp_path: Path) -> None:
    # Given a negative --poll-interval (the workflow cannot wait a negative time)
    args = ["generate", "A paper kite", "--model", "veo3-fast", "--poll-interval", "-1", "--json"]

    # When
    run = run_videogen(*args, cwd=tmp_path)

    # Then it is refused as invalid input, before a job (and a billed provider task) exists
    assert "started" not in run.stderr, run.explain()
    assert_refused_contract(run, "poll_interval")


# --- generate: Ctrl-C ---------------------------------------------------------------------------------------------


def test_ctrl_c_cancels_the_job_and_its_runway_task_and_exits_130(
    tmp_path: Path, png_image: Path, provider: CometApiSimulator
) -> None:
    # Given a Runway job (Runway can cancel a task) that never leaves the provider's queue, on a provider the
    # test can watch (its own simulator, as COMETAPI_BASE_URL), followed until stderr shows it in progress
    args = ["generate", "[sim:stuck] a kite", "--model", "gen3a_turbo", "--image", str(png_image)]
    with running_videogen(*args, "--poll-interval", "0", "--json", cwd=tmp_path, env=provider_env(provider)) as process:
        process.wait_for_stderr(
            lambda text: "gen3a_turbo | in progress" in text, what="a progress line showing the job in progress"
        )
        [create] = provider.creates("runway")
        assert create.status == 200, process.explain()

        # When the user presses Ctrl-C
        run = process.interrupt()

    # Then it exits 130, reporting the job cancelled (JSON and stderr) and the failed event with code cancelled
    assert run.returncode == 130, run.explain()
    result = run.last_json
    assert result["status"] == "cancelled"
    assert result["error"]["code"] == "cancelled"
    assert str(result["id"]).startswith("video_")
    assert f"cancelled job {result['id']}" in run.stderr_text
    assert "event: Video Generation Failed (cancelled) on the videogen bus" in run.stderr_text
    # And the provider was asked to cancel the task, once, with Runway's DELETE
    deletes = [request for request in provider.received if request.method == "DELETE"]
    assert [request.path for request in deletes] == [f"/runwayml/v1/tasks/{create.task_id}"], run.explain()
    assert not (tmp_path / "output").exists()
