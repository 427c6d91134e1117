"""End to end: `videogen models` as a user runs it (a subprocess, stdout a pipe): the catalog as a table, one
model in full, and the catalog's entries as JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path

from functions.providers.catalog import ModelSpec, load_catalog
from tests.e2e.conftest import run_videogen

CATALOG = load_catalog()


def table_rows(stdout: str) -> dict[str, dict[str, list[str]]]:
    """Rich's table (lines between rows) as model id -> column header -> the cell's lines."""
    headers: list[str] = []
    rows: dict[str, dict[str, list[str]]] = {}
    block: list[list[str]] = []
    for line in [*stdout.splitlines(), ""]:
        if line.startswith("┃"):
            headers = [cell.strip() for cell in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            block.append([cell.strip() for cell in line.strip("│").split("│")])
        elif block:
            columns = {header: [cells[i] for cells in block if cells[i]] for i, header in enumerate(headers)}
            rows[columns["model"][0]] = columns
            block = []
    return rows


def test_models_lists_every_catalog_model_id(tmp_path: Path) -> None:
    # Given the catalog, and stdout a pipe (as in CI or `videogen models | grep kling`)
    expected = CATALOG.ids()

    # When
    run = run_videogen("models", cwd=tmp_path)

    # Then every id is printed whole
    assert run.returncode == 0, run.explain()
    missing = [model_id for model_id in expected if model_id not in run.stdout]
    assert not missing, f"ids not printed whole: {missing}\n{run.stdout}"


def test_models_table_shows_each_models_prompt_limit_sizes_as_sent_and_polling_bounds(tmp_path: Path) -> None:
    # Given the catalog
    # When
    run = run_videogen("models", cwd=tmp_path)

    # Then each model has a row with its prompt limit, and its polling bounds in the catalog's order
    assert run.returncode == 0, run.explain()
    rows = table_rows(run.stdout)
    assert sorted(rows) == sorted(CATALOG.ids()), run.stdout
    for model_id, spec in CATALOG.models.items():
        row, polling = rows[model_id], spec.polling
        assert row["prompt"][0].split()[0] == str(spec.prompt_max_chars), row
        assert row["polling"] == [
            f"first {polling.first_wait_seconds} s",
            f"every {polling.min_interval_seconds}–{polling.max_interval_seconds} s",
            f"max {polling.max_wait_seconds} s",
            f"stuck {polling.stuck_queue_seconds} s",
        ], model_id
        # And every format, as its size and what the dialect is sent for it
        sent = {line.split(" → ")[0].split(", ")[0]: line.split(" → ")[1] for line in row["size → sent as"]}
        assert sent == {f.size: f.provider_value for f in spec.formats}, model_id
    # e.g. an OpenAI-style 1280x720 is Veo's 16x9, Kling's 16:9, and Runway's nearest format, 1280:768
    assert "1280x720, 1920x1080 → 16x9" in rows["veo3-fast"]["size → sent as"]
    assert "1280x720, 1920x1080 → 16:9" in rows["kling-v1-6"]["size → sent as"]
    assert "1280x768, 1280x720 → 1280:768" in rows["gen3a_turbo"]["size → sent as"]


def test_models_json_prints_every_catalog_entry_in_full(tmp_path: Path) -> None:
    # Given the catalog
    # When
    run = run_videogen("models", "--json", cwd=tmp_path)

    # Then stdout is one JSON object, each model's entry with every field of the catalog
    assert run.returncode == 0, run.explain()
    entries = json.loads(run.stdout)
    assert list(entries) == CATALOG.ids()
    for model_id, entry in entries.items():
        assert ModelSpec.model_validate(entry) == CATALOG.models[model_id]
    assert (
        entries["veo3-fast"]["polling"]["first_wait_seconds"] == CATALOG.models["veo3-fast"].polling.first_wait_seconds
    )


def test_models_with_a_model_id_shows_that_model_in_full(tmp_path: Path) -> None:
    # Given veo3-fast, whose 1280x720 is sent as 16x9
    spec = CATALOG.models["veo3-fast"]
    video_format = spec.format_for("1280x720")
    assert video_format is not None
    assert video_format.provider_value == "16x9"

    # When
    detail = run_videogen("models", "veo3-fast", cwd=tmp_path)
    as_json = run_videogen("models", "veo3-fast", "--json", cwd=tmp_path)

    # Then its sizes as sent, prompt limit and every polling bound are shown; --json is its catalog entry
    assert detail.returncode == 0, detail.explain()
    text = " ".join(detail.stdout.split())
    for expected in (
        "1280x720 → 16x9 (also accepts 16:9, 1920x1080)",
        f"at most {spec.prompt_max_chars} characters",
        f"first poll {spec.polling.first_wait_seconds} s after the create",
        f"then every {spec.polling.min_interval_seconds}–{spec.polling.max_interval_seconds} s",
        f"gives up after {spec.polling.max_wait_seconds} s",
        f"stuck if still queued after {spec.polling.stuck_queue_seconds} s",
        f"task_not_exist tolerated for {spec.polling.not_found_grace_seconds} s",
    ):
        assert expected in text, f"{expected!r} not in\n{detail.stdout}"
    assert as_json.returncode == 0, as_json.explain()
    assert ModelSpec.model_validate_json(as_json.stdout) == spec


def test_models_with_an_unknown_model_id_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    # Given a model that is not in the catalog
    # When
    run = run_videogen("models", "veo-9", cwd=tmp_path)

    # Then
    assert run.returncode == 2, run.explain()
    assert "unknown model veo-9" in run.stderr_text
    assert all(model_id in run.stderr_text for model_id in CATALOG.ids())
    assert run.stdout == ""
