"""The code stays ruff- and mypy-clean: part of the one test command, so CI enforces it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def _tool(name: str) -> list[str]:
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return [name]


def test_ruff_is_clean() -> None:
    result = subprocess.run([*_tool("ruff"), "check", "kb", "tests", "bench"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
