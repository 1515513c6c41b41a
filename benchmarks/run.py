"""Side-by-side benchmark: this project vs Node socket.io 4.8, python-socketio 5 (Tornado and
aiohttp) and a raw Tornado WebSocket echo, in one run.

    python benchmarks/run.py [--size smoke|full] [--reps 3] [--only ws-echo,fanout-1000] [--servers ...]

Each server starts fresh for every measurement, pinned to core 0 while the load generator
(benchmarks/loadgen.mjs) runs on core 1 (``taskset``); the servers are alternated within each
repetition. Prints a Markdown table of medians with ratios to Node and writes it, with the raw
figures, to benchmarks/results/latest.md and latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable

SERVERS: dict[str, list[str]] = {
    "tornad_io": [PY, os.path.join(HERE, "server.py")],
    "node socket.io": ["node", os.path.join(HERE, "node_server.mjs")],
    "python-socketio (tornado)": [PY, os.path.join(HERE, "pysio_server.py"), "--mode", "tornado"],
    "python-socketio (aiohttp)": [PY, os.path.join(HERE, "pysio_server.py"), "--mode", "aiohttp"],
    "raw tornado": [PY, os.path.join(HERE, "raw_tornado.py")],
    # only with --servers: this project on uvloop (pip install uvloop)
    "tornad_io (uvloop)": [PY, os.path.join(HERE, "server.py"), "--uvloop"],
    # only with --servers: this project with connection state recovery on (offsets and stored packets)
    "tornad_io (recovery)": [PY, os.path.join(HERE, "server.py"), "--recovery"],
}
DEFAULT_SERVERS = [
    "tornad_io",
    "node socket.io",
    "python-socketio (tornado)",
    "python-socketio (aiohttp)",
    "raw tornado",
]
ECHO_ONLY = {"raw tornado"}
# Only this project speaks both protocol generations.
ONLY_OURS = {"mixed-1000"}

# scenario -> (loadgen scenario, loadgen arguments per size, unit)
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "ws-echo": {"clients": 100, "duration": 5},
        "poll-echo": {"clients": 50, "duration": 5},
        "fanout-1000": {"clients": 1000, "messages": 20},
        "fanout-5000": {"clients": 5000, "messages": 5},
        "mixed-1000": {"clients": 1000, "messages": 20},
        "idle": {"clients": 10000},
        "cluster-1000": {"clients": 1000, "messages": 10},
    },
    "smoke": {
        "ws-echo": {"clients": 5, "duration": 0.5},
        "poll-echo": {"clients": 3, "duration": 0.5},
        "fanout-1000": {"clients": 20, "messages": 3},
        "fanout-5000": {"clients": 30, "messages": 2},
        "mixed-1000": {"clients": 20, "messages": 3},
        "idle": {"clients": 50},
        "cluster-1000": {"clients": 20, "messages": 3},
    },
}
LOADGEN = {
    "ws-echo": "ws-echo",
    "poll-echo": "poll-echo",
    "fanout-1000": "fanout",
    "fanout-5000": "fanout",
    "mixed-1000": "mixed",
    "idle": "idle",
    "cluster-1000": "fanout",
}
# Two nodes of the same server through one Redis (this project's Redis adapter vs @socket.io/redis-adapter).
CLUSTER = {"cluster-1000"}
CLUSTER_SERVERS = {"tornad_io", "node socket.io"}
UNITS = {
    "ws-echo": "round trips/s",
    "poll-echo": "round trips/s",
    "fanout-1000": "deliveries/s",
    "fanout-5000": "deliveries/s",
    "mixed-1000": "deliveries/s (half 0.6, half v4)",
    "cluster-1000": "deliveries/s (2 nodes, Redis)",
    "idle": "connects/s",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *command]
    return command


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_listening(port: int, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def measure_cluster(server: str, scenario: str, size: dict[str, Any]) -> dict[str, Any]:
    """Two nodes of *server* joined through a fresh redis-server; subscribers alternate between them."""
    redis_port = free_port()
    redis = subprocess.Popen(
        pinned(
            1, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        ),
        stdout=subprocess.DEVNULL,
    )
    ports = [free_port(), free_port()]
    nodes = []
    try:
        url = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.3)
        for port in ports:
            nodes.append(
                subprocess.Popen(
                    pinned(0, [*SERVERS[server], "--port", str(port), "--redis", url]),
                    cwd=ROOT,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port, proc in zip(ports, nodes, strict=True):
            wait_listening(port, proc)
        time.sleep(0.5)
        args = [
            "node",
            os.path.join(HERE, "loadgen.mjs"),
            LOADGEN[scenario],
            "--port",
            str(ports[0]),
            "--port2",
            str(ports[1]),
        ]
        for key, value in size.items():
            args += [f"--{key}", str(value)]
        out = subprocess.run(pinned(1, args), cwd=ROOT, capture_output=True, text=True, timeout=300)
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        for proc in [*nodes, redis]:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(server: str, scenario: str, size: dict[str, Any]) -> dict[str, Any]:
    if scenario in CLUSTER:
        return measure_cluster(server, scenario, size)
    port = free_port()
    proc = subprocess.Popen(pinned(0, [*SERVERS[server], "--port", str(port)]), cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        time.sleep(0.2)
        args = ["node", os.path.join(HERE, "loadgen.mjs"), LOADGEN[scenario], "--port", str(port)]
        for key, value in size.items():
            args += [f"--{key}", str(value)]
        if scenario != "idle":
            out = subprocess.run(pinned(1, args), cwd=ROOT, capture_output=True, text=True, timeout=300)
            result = json.loads(out.stdout.strip().splitlines()[-1])
        else:
            before = rss_kib(proc.pid)
            gen = subprocess.Popen(pinned(1, args), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert gen.stdout is not None and gen.stdin is not None
            first = json.loads(gen.stdout.readline())
            if "error" in first:
                return first
            time.sleep(0.5)
            after = rss_kib(proc.pid)
            gen.stdin.write("\n")
            gen.stdin.flush()
            result = json.loads(gen.stdout.readline())
            gen.wait(timeout=60)
            result["rss_per_connection_kib"] = (after - before) / size["clients"]
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ratio(ours: float | None, other: float | None) -> str:
    if ours is None or not other:
        return "—"
    return f"{ours / other:.2f}×"


def _ratio(ours: float | None, other: float | None) -> str:
    if ours is None or not other:
        return "—"
    return f"{ours / other:.2f}×"


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", help="comma-separated scenarios")
    parser.add_argument("--servers", help="comma-separated servers")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "latest"))
    args = parser.parse_args()
    if not shutil.which("node"):
        sys.exit("node is required (Node.js 18+), and `npm ci` at the repository root")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "socket.io")):
        sys.exit("run `npm ci` at the repository root first (socket.io and ws are needed)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    except (ValueError, OSError):
        pass
    scenarios = args.only.split(",") if args.only else list(SIZES[args.size])
    servers = args.servers.split(",") if args.servers else list(DEFAULT_SERVERS)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {s: {v: [] for v in servers} for s in scenarios}
    for rep in range(args.reps):
        for scenario in scenarios:
            order = servers[rep % len(servers) :] + servers[: rep % len(servers)]  # alternate who goes first
            for server in order:
                if server in ECHO_ONLY and scenario != "ws-echo":
                    continue
                if scenario in ONLY_OURS and not server.startswith("tornad_io"):
                    continue
                if scenario in CLUSTER and (server not in CLUSTER_SERVERS or not shutil.which("redis-server")):
                    continue
                try:
                    result = measure(server, scenario, SIZES[args.size][scenario])
                except Exception as error:  # noqa: BLE001 - recorded in the table
                    result = {"error": repr(error)}
                raw[scenario][server].append(result)
                print(
                    f"rep {rep + 1} {scenario:12} {server:28} {json.dumps(result)}",
                    file=sys.stderr,
                    flush=True,
                )

    def median(scenario: str, server: str, key: str) -> float | None:
        values = [r[key] for r in raw[scenario][server] if key in r]
        return statistics.median(values) if values else None

    lines = [
        f"Size `{args.size}`, {args.reps} repetition(s), {time.strftime('%Y-%m-%d')}; medians; ratio = this project ÷ peer.",
        "",
        "| scenario | metric | "
        + " | ".join(servers)
        + " | tornad_io ÷ node | tornad_io ÷ python-socketio (tornado) |",
        "|---|---|" + "---|" * len(servers) + "---|---|",
    ]
    rows = [(s, "rate", UNITS[s]) for s in scenarios]
    rows += [(s, "p99_ms", "p99 latency ms") for s in scenarios if "echo" in s]
    rows += [
        (s, "last_delivery_ms", "emit → last delivery ms")
        for s in scenarios
        if "fanout" in s or "mixed" in s or "cluster" in s
    ]
    rows += [(s, "rss_per_connection_kib", "RSS per connection KiB") for s in scenarios if s == "idle"]
    for scenario, key, label in rows:
        cells = []
        values: dict[str, float | None] = {}
        for server in servers:
            value = median(scenario, server, key)
            values[server] = value
            errors = [r["error"] for r in raw[scenario][server] if "error" in r]
            cells.append(fmt(value) if value is not None else ("error" if errors else "—"))
        ratios = [
            _ratio(values.get("tornad_io"), values.get(p)) for p in ("node socket.io", "python-socketio (tornado)")
        ]
        lines.append(f"| {scenario} | {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".md", "w") as file:
        file.write(table + "\n")
    with open(args.output + ".json", "w") as file:
        json.dump(raw, file, indent=1)
    failed = [(s, v) for s in raw for v in raw[s] if any("error" in r for r in raw[s][v])]
    if failed:
        print(f"errors in: {failed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
