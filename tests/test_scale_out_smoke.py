"""benchmarks/scale_out.py in its smoke size: several processes, forwarding between nodes, fan-out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow  # starts servers, Redis and the load generator (about 15 s)


def test_scale_out_smoke(tmp_path: object) -> None:
    output = os.path.join(str(tmp_path), "scale")
    result = subprocess.run(
        [sys.executable, "benchmarks/scale_out.py", "--size", "smoke", "--reps", "1", "--output", output],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    raw = json.load(open(output + ".json"))["raw"]
    assert set(raw) == {"processes", "forward", "fanout"}
    for name, reps in raw.items():
        assert len(reps) == 1
        for key, value in reps[0].items():
            assert value is not None and value > 0, (name, key, value)
    assert set(raw["processes"][0]) == {"idle x1", "poll-echo x1", "idle x2", "poll-echo x2"}
    assert "forwarding node, forwarded" in open(output + ".md").read()
