"""DESIGN.md's layering, checked: shared code never imports a Lambda folder; Lambda code never imports the
local stack or the CDK app; handlers stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
LAMBDA_FOLDERS = sorted(
    p.name for p in FUNCTIONS.iterdir() if p.is_dir() and p.name not in ("common", "providers", "__pycache__")
)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", modules_under(FUNCTIONS / "common") + modules_under(FUNCTIONS / "providers"), ids=str)
def test_shared_code_never_imports_a_lambda_folder(path: Path) -> None:
    upward = {m for m in imports_of(path) for folder in LAMBDA_FOLDERS if m.startswith(f"functions.{folder}")}
    assert not upward, f"{path.relative_to(ROOT)} imports {upward}"


@pytest.mark.parametrize("path", modules_under(FUNCTIONS), ids=str)
def test_lambda_code_never_imports_the_local_stack_or_the_cdk_app(path: Path) -> None:
    outside = {m for m in imports_of(path) if m.split(".")[0] in ("local", "infra", "tests", "moto", "aws_cdk")}
    assert not outside, f"{path.relative_to(ROOT)} imports {outside}"


def test_there_are_lambda_folders_to_check() -> None:
    assert {"submit", "poll", "store", "finalize", "api"} <= set(LAMBDA_FOLDERS)


CONTAINER_CACHE_EXCEPTIONS = {FUNCTIONS / "providers" / "catalog.py"}
"""Pure data read from a file in the asset: the same whatever the environment."""


@pytest.mark.parametrize("path", sorted(set(modules_under(FUNCTIONS)) - CONTAINER_CACHE_EXCEPTIONS), ids=str)
def test_container_lifetime_objects_are_made_through_per_container(path: Path) -> None:
    # A bare functools cache keeps a client bound to the AWS endpoint of the moment and escapes
    # forget_container_state(), which the local stack relies on each time it starts.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    decorators = {
        ast.unparse(decorator)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for decorator in node.decorator_list
    }
    bare = decorators & {"cache", "functools.cache", "lru_cache", "functools.lru_cache", "lru_cache()"}
    assert not bare, f"{path.relative_to(ROOT)} uses {bare}: use functions.common.container.per_container"
