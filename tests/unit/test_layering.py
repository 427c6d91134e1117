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
