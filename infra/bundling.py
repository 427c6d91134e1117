"""The one Lambda asset: functions/ plus requirements.txt installed for arm64 Lambda, bundled without Docker.

``pip install --platform ... --only-binary=:all:`` picks the manylinux aarch64 wheels of the pinned
dependencies from PyPI, whatever machine runs the synth. The installed dependencies are cached under
build/lambda-deps/ by the hash of requirements.txt and the install recipe, so a synth after the first
only copies files. The asset hash is that of requirements.txt, the recipe and every file of functions/:
CDK re-bundles exactly when one of them changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.config import LAMBDA_PLATFORMS, LAMBDA_PYTHON_VERSION, ROOT

FUNCTIONS_DIR = ROOT / "functions"
REQUIREMENTS = ROOT / "requirements.txt"
DEPENDENCY_CACHE = ROOT / "build" / "lambda-deps"
IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache")
RECIPE_VERSION = "1"
"""Bump to re-bundle when the way the asset is built changes (not its inputs)."""


def pip_arguments(target: Path) -> list[str]:
    platforms = [arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--no-compile",  # bytecode of this interpreter would be useless to the Lambda's
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        *platforms,
        "--target",
        str(target),
        "--requirement",
        str(REQUIREMENTS),
    ]


def recipe() -> str:
    return "\n".join([RECIPE_VERSION, LAMBDA_PYTHON_VERSION, *LAMBDA_PLATFORMS])


def dependencies_hash() -> str:
    digest = hashlib.sha256(recipe().encode())
    digest.update(REQUIREMENTS.read_bytes())
    return digest.hexdigest()


def source_files() -> list[Path]:
    return sorted(
        path
        for path in FUNCTIONS_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )


def asset_hash() -> str:
    """Changes exactly when the asset's content would: the recipe, requirements.txt, or a file of functions/."""
    digest = hashlib.sha256(dependencies_hash().encode())
    for path in source_files():
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def installed_dependencies() -> Path:
    """The dependencies installed for the Lambda platform, from the cache or freshly (atomically) installed."""
    final = DEPENDENCY_CACHE / dependencies_hash()
    if final.is_dir():
        return final
    DEPENDENCY_CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="installing-", dir=DEPENDENCY_CACHE))
    try:
        result = subprocess.run(pip_arguments(staging), capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(
                "Installing requirements.txt for the arm64 Lambda runtime failed (pip needs PyPI; no AWS or "
                f"Docker is involved):\n{result.stdout}\n{result.stderr}"
            )
        try:
            staging.rename(final)
        except OSError:  # another synth (a parallel test worker) installed it first
            if not final.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """CDK's local bundling: called instead of Docker, it fills the asset directory itself."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        output = Path(output_dir)
        # Hard links where the file system allows: the cache is never written to after its install.
        shutil.copytree(installed_dependencies(), output, dirs_exist_ok=True, copy_function=link_or_copy)
        shutil.copytree(FUNCTIONS_DIR, output / "functions", ignore=shutil.ignore_patterns(*IGNORED))
        return True


def lambda_code() -> lambda_.Code:
    """The asset every function of the stack runs from (create it once per stack and share it)."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(),
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises. It names what Docker bundling would use.
            image=lambda_.Runtime.PYTHON_3_13.bundling_image,
            local=LocalPipBundling(),
        ),
    )
