"""The whole tree stays ruff- and mypy --strict-clean (versions pinned in the test extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(module: str) -> None:
    found = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, check=False)
    if found.returncode != 0:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


def test_ruff_is_clean() -> None:
    _tool("ruff")
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_is_clean() -> None:
    _tool("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
