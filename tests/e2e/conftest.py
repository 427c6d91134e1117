"""The `videogen` CLI run as a user runs it: a subprocess, no CometAPI key, its own working directory.

Every call has a timeout. COMETAPI_KEY (and every variable that would point the CLI elsewhere or change how it
prints) is removed, so the embedded stack starts the CometAPI simulator. stderr and stdout are pipes, as in CI:
the CLI prints plain progress lines, and Rich wraps them at 80 columns (``CliRun.stderr_text`` undoes that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

CALL_TIMEOUT_SECONDS = 60.0
"""A generate on the simulator takes 2–7 s (stack start-up plus the model's compressed render time)."""

REMOVED_VARIABLES = (
    "COMETAPI_KEY",
    "COMETAPI_BASE_URL",
    "COMETAPI_KEY_SECRET_NAME",
    "VIDEOGEN_POLL_INTERVAL_SECONDS",
    "AWS_ENDPOINT_URL",
    "MOTO_PORT",
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)


def videogen_command() -> list[str]:
    """The console script installed next to this interpreter; ``python -m local.cli`` where there is none."""
    script = Path(sys.executable).with_name("videogen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "local.cli"]


def cli_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in REMOVED_VARIABLES}


@dataclass(frozen=True)
class CliRun:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_text(self) -> str:
        """stderr with every run of whitespace (Rich's line wrapping included) as one space."""
        return " ".join(self.stderr.split())

    @property
    def last_json(self) -> dict[str, Any]:
        """The last line on stdout, which the --json contract says is one JSON object."""
        lines = self.stdout.rstrip("\n").splitlines()
        assert lines, f"nothing on stdout\n{self.explain()}"
        result = json.loads(lines[-1])
        assert isinstance(result, dict), f"the last stdout line is not a JSON object\n{self.explain()}"
        return result

    def explain(self) -> str:
        command = " ".join(self.args)
        return f"videogen {command} -> exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_videogen(*args: str | Path, cwd: Path, timeout: float = CALL_TIMEOUT_SECONDS) -> CliRun:
    text_args = tuple(str(arg) for arg in args)
    completed = subprocess.run(
        [*videogen_command(), *text_args],
        cwd=cwd,
        env=cli_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliRun(text_args, completed.returncode, completed.stdout, completed.stderr)


def start_videogen(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*videogen_command(), *args],
        cwd=cwd,
        env=cli_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_png(path: Path, width: int, height: int) -> Path:
    """A PNG with a gradient (not a flat colour), so it looks like a picture to anything that checks."""
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    image.save(path, "PNG")
    return path


@dataclass(frozen=True)
class Generated:
    run: CliRun
    out: Path


GenerateOnce = Callable[[str, bool], Generated]


@pytest.fixture(scope="module")
def png_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400x400: above Kling's 300x300 minimum, fine for every other model that takes an image."""
    return write_png(tmp_path_factory.mktemp("images") / "frame.png", 400, 400)


@pytest.fixture(scope="module")
def generate_once(tmp_path_factory: pytest.TempPathFactory, png_image: Path) -> GenerateOnce:
    """``generate_once(model, with_image)``: one completed-path run per (model, image) in this module.

    Several tests read the same run (the JSON contract, the image variant, the deprecation warning), so each
    real generate happens once: that keeps the module near a minute on two cores.
    """
    runs: dict[tuple[str, bool], Generated] = {}

    def generate(model: str, with_image: bool) -> Generated:
        key = (model, with_image)
        if key not in runs:
            cwd = tmp_path_factory.mktemp(f"generate-{model}")
            out = cwd / "videos" / f"{model}.mp4"
            image_args = ["--image", str(png_image)] if with_image else []
            run = run_videogen(
                "generate",
                "A paper kite drifting above a wheat field",
                "--model",
                model,
                *image_args,
                "--out",
                str(out),
                "--poll-interval",
                "0",
                "--json",
                cwd=cwd,
            )
            runs[key] = Generated(run, out)
        return runs[key]

    return generate
