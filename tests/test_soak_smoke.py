"""The soak script in a short size: every accepted message comes back, nothing errs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow  # a short soak (about 4 s)


def test_soak_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--duration", "3", "--clients", "5", "--cycles", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["chat"]["sent"] > 0 and report["chat"]["sent"] == report["chat"]["acked"]
    assert report["cycles"]["count"] == 300 and report["cycles"]["lost"] == 0
