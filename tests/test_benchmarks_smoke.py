"""The benchmark in its tiny smoke size: every scenario runs against every server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow  # runs the benchmark harness (about 50 s)

SCENARIOS = {
    "ws-echo",
    "poll-echo",
    "fanout-1000",
    "fanout-5000",
    "mixed-1000",
    "idle",
    "cluster-1000",
    "connect-client",
    "fanout-latency-1000",
    "fanout-latency-5000",
    "idle-100k",
}
# the scenarios of the performance targets run for this project, Node and Bun only
PEER_SCENARIOS = {"connect-client", "fanout-latency-1000", "fanout-latency-5000", "idle-100k"}
BUN = os.path.join(ROOT, "node_modules", ".bin", "bun")


def bun_runs() -> bool:
    try:
        return subprocess.run([BUN, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_benchmark_smoke(tmp_path: object) -> None:
    output = os.path.join(str(tmp_path), "smoke")
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--size", "smoke", "--reps", "1", "--output", output],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    raw = json.load(open(output + ".json"))
    assert set(raw) == SCENARIOS
    # Bun is left out only where its binary (the `bun` npm package) cannot run on the machine
    expected = {"tornad_io", "node socket.io", "python-socketio (tornado)", "python-socketio (aiohttp)", "raw tornado"}
    expected |= {"bun socket.io"} if bun_runs() else set()
    for scenario, servers in raw.items():
        assert set(servers) == expected, scenario
        for server, results in servers.items():
            skipped = (
                (server == "raw tornado" and scenario != "ws-echo")
                or (scenario == "mixed-1000" and server != "tornad_io")
                or (scenario in PEER_SCENARIOS and server not in ("tornad_io", "node socket.io", "bun socket.io"))
                or (scenario == "cluster-1000" and server not in ("tornad_io", "node socket.io", "bun socket.io"))
            )
            if skipped:
                assert results == []
                continue
            assert len(results) == 1 and results[0]["rate"] > 0, (scenario, server, results)
            figures = results[0]
            if scenario.startswith(("fanout", "idle-100k")):
                assert 0 < figures["first_delivery_ms"] <= figures["last_delivery_ms"], (scenario, server, figures)
            if scenario.startswith("fanout-latency"):
                assert figures["first_delivery_ms"] <= figures["median_delivery_ms"] <= figures["last_delivery_ms"]
            if scenario == "connect-client":
                assert figures["count"] == 50 and 0 < figures["p50_ms"] <= figures["p99_ms"], (server, figures)
            if scenario == "idle-100k":
                assert figures["count"] == figures["delivered"] == 200, (server, figures)
                assert figures["rss_per_connection_kib"] > 0 and figures["cpu_idle_percent"] >= 0, (server, figures)
    table = open(output + ".md").read()
    assert "| ws-echo | round trips/s |" in table
    assert "tornad_io ÷ node | tornad_io ÷ bun |" in table
    assert "| idle-100k | CPU % of a core, idle (heartbeats) |" in table


def test_recovery_benchmarks_smoke(tmp_path: object) -> None:
    """The recovery row (fan-out with offsets kept) and the memory per stored session run."""
    output = os.path.join(str(tmp_path), "recovery")
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--size",
            "smoke",
            "--reps",
            "1",
            "--only",
            "fanout-1000",
            "--servers",
            "tornad_io,tornad_io (recovery)",
            "--output",
            output,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    raw = json.load(open(output + ".json"))
    assert all(raw["fanout-1000"][server][0]["rate"] > 0 for server in ("tornad_io", "tornad_io (recovery)"))
    memory = subprocess.run(
        [sys.executable, "benchmarks/recovery_memory.py", "--sessions", "2000", "--packets", "2000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    figures = json.loads(memory.stdout)
    assert 0 < figures["bytes per stored session"] < 4_000 and 0 < figures["bytes per stored packet"] < 4_000
    emit = subprocess.run(
        [sys.executable, "benchmarks/emit_cost.py", "--sockets", "50", "--emits", "10", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    costs = json.loads(emit.stdout)
    assert costs["µs per broadcast, recovery off"] > 0 and costs["µs per broadcast, recovery on"] > 0
