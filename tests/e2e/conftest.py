"""The `videogen` CLI run as a user runs it: a subprocess, no CometAPI key, its own working directory.

Every call has a timeout. COMETAPI_KEY (and every variable that would point the CLI elsewhere or change how it
prints) is removed, so the embedded stack starts the CometAPI simulator; so is every AWS_* variable and AWS
config file, as in a clean shell on a machine without AWS. stderr and stdout are pipes, as in CI: the CLI
prints plain progress lines, and Rich wraps them at 80 columns (``CliRun.stderr_text`` undoes that).
A test that needs a variable back (a real-key run against a simulator of its own) passes it in ``env``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local.simulator import CometApiSimulator

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
    "VIDEOGEN_API_KEY",
    "VIDEOGEN_API_KEYS_TABLE",
)
CLEAN_AWS = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",  # no credentials lookup off the machine (and no wait for one)
}
"""With every AWS_* variable removed: no region, no credentials, nothing read from ~/.aws."""


def videogen_command() -> list[str]:
    """The console script installed next to this interpreter; ``python -m local.cli`` where there is none."""
    script = Path(sys.executable).with_name("videogen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "local.cli"]


def cli_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in REMOVED_VARIABLES and not name.startswith("AWS_")
    }
    return {**kept, **CLEAN_AWS, **(env or {})}


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


def run_videogen(
    *args: str | Path, cwd: Path, timeout: float = CALL_TIMEOUT_SECONDS, env: Mapping[str, str] | None = None
) -> CliRun:
    text_args = tuple(str(arg) for arg in args)
    completed = subprocess.run(
        [*videogen_command(), *text_args],
        cwd=cwd,
        env=cli_environment(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliRun(text_args, completed.returncode, completed.stdout, completed.stderr)


@dataclass
class VideogenProcess:
    """A running `videogen` whose stdout and stderr are read as they come (so neither pipe can fill up)."""

    args: tuple[str, ...]
    process: subprocess.Popen[str]
    stdout_lines: list[str] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)
    _fresh: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _readers: list[threading.Thread] = field(default_factory=list)

    def start_reading(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        for pipe, lines, announce in (
            (self.process.stdout, self.stdout_lines, False),
            (self.process.stderr, self.stderr_lines, True),
        ):
            reader = threading.Thread(target=self._read, args=(pipe, lines, announce), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, pipe: Any, lines: list[str], announce: bool) -> None:
        for line in pipe:
            lines.append(line)
            if announce:
                self._fresh.put(line)
        if announce:
            self._fresh.put(None)

    def wait_for_stderr(
        self, predicate: Callable[[str], bool], *, what: str, timeout: float = CALL_TIMEOUT_SECONDS
    ) -> str:
        """All of stderr so far, once ``predicate`` holds for it (whitespace runs, Rich's wrapping included, as
        one space); fails if the process ends first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            text = " ".join("".join(self.stderr_lines).split())
            if predicate(text):
                return text
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"waited {timeout}s for {what}\n{self.explain()}"
            try:
                line = self._fresh.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"videogen ended before {what}\n{self.explain()}"

    def interrupt(self, timeout: float = CALL_TIMEOUT_SECONDS) -> CliRun:
        """Ctrl-C, then everything it printed until it exited."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout: float = CALL_TIMEOUT_SECONDS) -> CliRun:
        try:
            returncode = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.run(returncode)

    def run(self, returncode: int) -> CliRun:
        return CliRun(self.args, returncode, "".join(self.stdout_lines), "".join(self.stderr_lines))

    def explain(self) -> str:
        return self.run(self.process.returncode if self.process.returncode is not None else -1).explain()


@contextmanager
def running_videogen(*args: str | Path, cwd: Path, env: Mapping[str, str] | None = None) -> Iterator[VideogenProcess]:
    """`videogen ARGS` started in the background; on the way out it is interrupted (Ctrl-C), then killed if it
    has not exited after CALL_TIMEOUT_SECONDS, and its pipes are closed."""
    text_args = tuple(str(arg) for arg in args)
    process = subprocess.Popen(
        [*videogen_command(), *text_args],
        cwd=cwd,
        env=cli_environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = VideogenProcess(text_args, process)
    try:
        running.start_reading()
        yield running
    finally:
        try:
            if process.poll() is None:
                running.interrupt()
        finally:
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def provider() -> Iterator[CometApiSimulator]:
    """A CometAPI simulator of the test's own (renders instant), to stand in for the real provider: the CLI is
    pointed at it with COMETAPI_KEY and COMETAPI_BASE_URL (``provider_env``), as at CometAPI with a real key, and
    the test reads every request it received."""
    with CometApiSimulator(time_scale=0.0) as simulator:
        yield simulator
        assert simulator.errors == []


def provider_env(simulator: CometApiSimulator) -> dict[str, str]:
    """The environment of a user with a CometAPI key, whose CometAPI is ``simulator``."""
    return {"COMETAPI_KEY": simulator.api_key, "COMETAPI_BASE_URL": simulator.base_url}


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
