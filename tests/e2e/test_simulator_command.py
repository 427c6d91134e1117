"""End to end: `videogen simulator` as a user runs it, reading what it prints to find and use it."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from tests.e2e.conftest import running_videogen


def test_simulator_prints_its_url_and_key_and_answers_there(tmp_path: Path) -> None:
    # Given `videogen simulator` on a free port (0: only what it prints says which)
    with running_videogen("simulator", "--port", "0", "--time-scale", "0", cwd=tmp_path) as process:
        text = process.wait_for_stderr(lambda text: "Ctrl-C stops." in text, what="the simulator to be ready")
        url = re.search(r"CometAPI simulator (http://127\.0\.0\.1:\d+)", text)
        key = re.search(r"API key (\S+)", text)
        assert url, process.explain()
        assert key, process.explain()
        base_url, api_key = url[1], key[1]

        # When a client creates a video there with that key, and with another
        created = requests.post(
            f"{base_url}/v1/videos",
            headers={"Authorization": f"Bearer {api_key}"},
            files=[("prompt", (None, "A paper kite")), ("model", (None, "veo3-fast"))],
            timeout=10,
        )
        refused = requests.post(
            f"{base_url}/v1/videos",
            headers={"Authorization": "Bearer sk-not-the-simulators"},
            files=[("prompt", (None, "A paper kite")), ("model", (None, "veo3-fast"))],
            timeout=10,
        )

        # Then the printed key is the one it takes, and it says how to point videogen at it
        assert created.status_code == 200, created.text
        assert created.json()["id"]
        assert refused.status_code == 401
        assert f"COMETAPI_BASE_URL={base_url}" in text
        assert f"COMETAPI_KEY={api_key}" in text

        # And Ctrl-C stops it cleanly
        run = process.interrupt()
        assert run.returncode == 0, run.explain()
