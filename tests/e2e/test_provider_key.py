"""End to end: `videogen generate` with a CometAPI key, the path that renders (and bills) real videos.

The provider is a CometAPI simulator the test starts itself and names in COMETAPI_BASE_URL, with its key in
COMETAPI_KEY, exactly as a user with a real key sets them: the CLI must then use that provider (not the
built-in simulator), and the test sees every request it sent there, in each dialect's wire format.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from functions.providers.catalog import load_catalog
from local.simulator import CometApiSimulator
from tests.e2e.conftest import provider_env, run_videogen

CATALOG = load_catalog()


def test_with_a_cometapi_key_generate_uses_that_provider(tmp_path: Path, provider: CometApiSimulator) -> None:
    # Given COMETAPI_KEY and COMETAPI_BASE_URL naming a provider (the test's simulator)
    out = tmp_path / "kite.mp4"

    # When
    run = run_videogen(
        "generate",
        "A paper kite drifting above a wheat field",
        "--model",
        "veo3-fast",
        "--out",
        out,
        "--poll-interval",
        "0",
        "--json",
        cwd=tmp_path,
        env=provider_env(provider),
    )

    # Then it completed through that provider, and says so rather than that it uses the built-in simulator
    assert run.returncode == 0, run.explain()
    assert run.last_json["status"] == "completed"
    assert f"using CometAPI at {provider.base_url}" in run.stderr_text
    assert "simulator" not in run.stderr_text.lower(), run.explain()

    # And the provider saw exactly one create, with the key, and served the very bytes in --out
    [create] = provider.creates()
    assert create.path == "/v1/videos"
    assert create.header("authorization") == f"Bearer {provider.api_key}"
    assert create.task_id is not None
    data = out.read_bytes()
    assert hashlib.sha256(data).hexdigest() == run.last_json["sha256"]
    assert data == provider.video_bytes_for(create.task_id)


def test_kling_options_reach_the_provider_in_klings_wire_format(tmp_path: Path, provider: CometApiSimulator) -> None:
    # Given Kling with every option the CLI has for it
    flags = ["--aspect-ratio", "9:16", "--cfg-scale", "0.7", "--mode", "pro", "--negative-prompt", "blur"]

    # When
    run = run_videogen(
        "generate",
        "A paper kite",
        "--model",
        "kling-v1-6",
        *flags,
        "--poll-interval",
        "0",
        "--json",
        cwd=tmp_path,
        env=provider_env(provider),
    )

    # Then the one create is Kling's text2video JSON carrying each option under Kling's own name and type
    assert run.returncode == 0, run.explain()
    result = run.last_json
    [create] = provider.creates("kling")
    assert create.path == "/kling/v1/videos/text2video"
    assert isinstance(create.json, dict)
    assert create.json["model_name"] == "kling-v1-6"
    assert create.json["aspect_ratio"] == "9:16"
    assert create.json["cfg_scale"] == pytest.approx(0.7)
    assert create.json["mode"] == "pro"
    assert create.json["negative_prompt"] == "blur"
    assert create.json["duration"] == "5"
    assert create.json["external_task_id"] == result["id"]
    # And the estimate is the pro price (std costs less)
    kling = CATALOG.models["kling-v1-6"]
    assert kling.estimate_cost_usd(5, mode="pro") > kling.estimate_cost_usd(5, mode="std")
    assert result["cost_usd"] == pytest.approx(kling.estimate_cost_usd(5, mode="pro"))
