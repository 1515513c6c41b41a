"""The package is ruff-clean and mypy-strict-clean (pyproject.toml settings)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff() -> None:
    result = run("ruff", "check", "tornad_io", "tests", "examples", "benchmarks", "fuzz")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
