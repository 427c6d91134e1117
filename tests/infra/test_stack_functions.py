"""Functions: one factory, one asset; runtime, tracing, logs, sizes and environment from infra.config."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.bundling import FUNCTIONS_DIR
from infra.config import (
    ALL_FUNCTIONS,
    DEPLOYED_MAX_REQUEST_BYTES,
    POWERTOOLS_ENVIRONMENT,
    ROOT,
    WORKFLOW_FUNCTIONS,
    api_environment,
    workflow_environment,
)
from tests.infra.conftest import Synth, Template

DEPENDENCY_MODULES = ("aws_lambda_powertools", "pydantic", "pydantic_core", "pydantic_settings", "requests", "PIL")


def handler_file(handler: str) -> Path:
    module, _ = handler.rsplit(".", 1)
    return Path(*module.split(".")).with_suffix(".py")


@pytest.mark.parametrize("key", sorted(ALL_FUNCTIONS))
def test_function_runtime_size_tracing_and_logs(template: Template, key: str) -> None:
    # Given a function's spec in infra.config / Then the synthesised function is built from it
    spec = ALL_FUNCTIONS[key]
    _, props = template.function(key)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == spec.handler
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_seconds
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert template.props(log_group)["RetentionInDays"] == 30
    for name, value in POWERTOOLS_ENVIRONMENT.items():
        assert props["Environment"]["Variables"][name] == value


def test_store_is_sized_for_streaming(template: Template) -> None:
    _, store = template.function("store")
    _, poll = template.function("poll")
    assert store["MemorySize"] >= 1024
    assert store["Timeout"] == 900
    assert store["MemorySize"] > poll["MemorySize"]


def asset_directory(synth: Synth, template: Template) -> Path:
    keys = {props["Code"]["S3Key"] for _, props in (template.function(k) for k in ALL_FUNCTIONS)}
    assert len(keys) == 1, keys
    return synth.outdir / f"asset.{keys.pop().removesuffix('.zip')}"


def test_every_function_runs_from_the_one_asset(synth: Synth, template: Template, full: Template) -> None:
    # Given both stacks (different options, same code) / Then all twelve functions share one asset
    assert asset_directory(synth, template) == asset_directory(synth, full)


@pytest.mark.parametrize("key", sorted(WORKFLOW_FUNCTIONS))
def test_workflow_environment_comes_from_the_shared_config(template: Template, key: str) -> None:
    # Given the names the local stack passes through workflow_environment()
    _, props = template.function(key)
    variables = props["Environment"]["Variables"]
    expected = workflow_environment(
        table={"Ref": template.by_path("/Storage/Jobs/Resource")},  # type: ignore[arg-type]
        bucket={"Ref": template.by_path("/Storage/Videos/Resource")},  # type: ignore[arg-type]
        bus={"Ref": template.by_path("/Events/Bus/Resource")},  # type: ignore[arg-type]
    )
    # Then the deployed function gets the same variables, bound to the stack's resources
    assert {name: variables[name] for name in expected} == expected
    assert variables["COMETAPI_KEY_SECRET_NAME"] == "VideoGenStack/cometapi-key"
    assert variables["COMETAPI_BASE_URL"] == "https://api.cometapi.com"


def test_api_and_authorizer_environment(template: Template) -> None:
    # Given the names the local stack passes through api_environment()
    _, api = template.function("api")
    variables = api["Environment"]["Variables"]
    ref = {
        name: {"Ref": template.by_path(path)}
        for name, path in (
            ("table", "/Storage/Jobs/Resource"),
            ("bucket", "/Storage/Videos/Resource"),
            ("bus", "/Events/Bus/Resource"),
            ("state_machine_arn", "/Workflow/StateMachine/Resource"),
            ("api_keys_table", "/Storage/ApiKeys/Resource"),
            ("idempotency_table", "/Storage/Idempotency/Resource"),
        )
    }
    expected = api_environment(**ref)  # type: ignore[arg-type]
    # Then the deployed api function gets the same, bound to the stack's resources, with Lambda's request limit
    expected["MAX_REQUEST_BYTES"] = str(DEPLOYED_MAX_REQUEST_BYTES)
    assert {name: variables[name] for name in expected} == expected
    _, authorizer = template.function("authorizer")
    authorizer_variables = set(authorizer["Environment"]["Variables"])
    assert authorizer_variables == {"API_KEYS_TABLE_NAME", "USAGE_PLAN_KEY_ID", *POWERTOOLS_ENVIRONMENT}


def test_options_reach_the_functions(template: Template, full: Template) -> None:
    _, props = full.function("submit")
    assert props["Environment"]["Variables"]["COMETAPI_KEY_SECRET_NAME"] == "shared/cometapi-key"
    assert props["Environment"]["Variables"]["COMETAPI_BASE_URL"] == "https://cometapi.example.com"
    assert full.props(props["LoggingConfig"]["LogGroup"]["Ref"])["RetentionInDays"] == 90
    _, api = full.function("api")
    assert api["Environment"]["Variables"]["CORS_ALLOW_ORIGINS"] == "https://app.example.com"
    _, default_api = template.function("api")
    assert "CORS_ALLOW_ORIGINS" not in default_api["Environment"]["Variables"]


def test_asset_holds_the_handlers_and_their_arm64_dependencies(synth: Synth, template: Template) -> None:
    # Given the bundled asset directory of the synth
    asset = asset_directory(synth, template)
    assert asset.is_dir()
    # Then every handler module is there: the workflow's always, the API's once they exist in functions/
    for spec in ALL_FUNCTIONS.values():
        relative = handler_file(spec.handler)
        if spec.key in WORKFLOW_FUNCTIONS or (ROOT / relative).exists():
            assert (asset / relative).is_file(), relative
    assert (asset / "functions" / "providers" / "catalog.json").is_file()
    # and the pinned dependencies, installed for CPython 3.13 on aarch64 Linux
    for module in DEPENDENCY_MODULES:
        assert (asset / module).is_dir(), module
    assert list((asset / "pydantic_core").glob("_pydantic_core.cpython-313-aarch64-linux-gnu.so"))
    assert list((asset / "PIL").glob("_imaging.cpython-313-aarch64-linux-gnu.so"))
    assert not list(asset.rglob("*x86_64*.so"))
    # without this machine's bytecode
    assert not list((asset / "functions").rglob("__pycache__"))


def test_asset_hash_follows_the_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a copy of functions/ / When a file changes / Then the asset hash changes (and only then)
    import shutil

    from infra import bundling

    copy = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(bundling, "FUNCTIONS_DIR", copy)
    monkeypatch.setattr(bundling, "ROOT", tmp_path)
    before = bundling.asset_hash()
    assert bundling.asset_hash() == before
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert bundling.asset_hash() == before
    (copy / "submit" / "handler.py").write_text("# changed\n", encoding="utf-8")
    assert bundling.asset_hash() != before
