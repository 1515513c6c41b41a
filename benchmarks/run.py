"""Side-by-side benchmark: this project vs Node socket.io 4.8, socket.io 4.8 on Bun (@socket.io/bun-engine),
python-socketio 5 (Tornado and aiohttp) and a raw Tornado WebSocket echo, in one run.

    python benchmarks/run.py [--size smoke|full] [--reps 3] [--only ws-echo,fanout-1000] [--servers ...]

Each server starts fresh for every measurement, pinned to core 0 while the load generator
(benchmarks/loadgen.mjs) runs on core 1 (``taskset``); the servers are alternated within each
repetition. Prints a Markdown table of medians with ratios to Node and to Bun and writes it, with the
raw figures, to benchmarks/results/latest.md and latest.json.
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
# the `bun` npm package (package.json devDependencies) puts Bun's binary here
BUN = os.path.join(ROOT, "node_modules", ".bin", "bun")

SERVERS: dict[str, list[str]] = {
    "tornad_io": [PY, os.path.join(HERE, "server.py")],
    "node socket.io": ["node", os.path.join(HERE, "node_server.mjs")],
    "bun socket.io": [BUN, os.path.join(HERE, "bun_server.mjs")],
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
    "bun socket.io",
    "python-socketio (tornado)",
    "python-socketio (aiohttp)",
    "raw tornado",
]
ECHO_ONLY = {"raw tornado"}
# Only this project speaks both protocol generations.
ONLY_OURS = {"mixed-1000"}
# The scenarios of the performance issue's targets (vs Node and Bun): this project, Node and Bun only.
PEERS = {"node socket.io", "bun socket.io"}
ONLY_PEERS = {"connect-client", "fanout-latency-1000", "fanout-latency-5000", "idle-100k"}

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
        "connect-client": {"clients": 5000, "inflight": 100},
        "fanout-latency-1000": {"clients": 1000, "rounds": 5},
        "fanout-latency-5000": {"clients": 5000, "rounds": 5},
        # clients: connections held by the server; procs: load generator processes; window: idle seconds;
        # per_address: connections per source address, below the 28 232 ephemeral ports of the default range
        "idle-100k": {"clients": 100000, "procs": 4, "window": 30, "per_address": 20000},
    },
    "smoke": {
        "ws-echo": {"clients": 5, "duration": 0.5},
        "poll-echo": {"clients": 3, "duration": 0.5},
        "fanout-1000": {"clients": 20, "messages": 3},
        "fanout-5000": {"clients": 30, "messages": 2},
        "mixed-1000": {"clients": 20, "messages": 3},
        "idle": {"clients": 50},
        "cluster-1000": {"clients": 20, "messages": 3},
        "connect-client": {"clients": 50, "inflight": 25},
        "fanout-latency-1000": {"clients": 20, "rounds": 2},
        "fanout-latency-5000": {"clients": 30, "rounds": 2},
        "idle-100k": {"clients": 200, "procs": 2, "window": 2, "per_address": 50},
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
    "connect-client": "connect-client",
    "fanout-latency-1000": "fanout-latency",
    "fanout-latency-5000": "fanout-latency",
    "idle-100k": "idle-many",
}
# Two nodes of the same server through one Redis (this project's Redis adapter vs @socket.io/redis-adapter).
CLUSTER = {"cluster-1000"}
CLUSTER_SERVERS = {"tornad_io", "node socket.io", "bun socket.io"}
UNITS = {
    "ws-echo": "round trips/s",
    "poll-echo": "round trips/s",
    "fanout-1000": "deliveries/s",
    "fanout-5000": "deliveries/s",
    "mixed-1000": "deliveries/s (half 0.6, half v4)",
    "cluster-1000": "deliveries/s (2 nodes, Redis)",
    "idle": "connects/s",
    "connect-client": "connects/s (polling handshake, CONNECT, upgrade)",
    "fanout-latency-1000": "deliveries/s (one emit)",
    "fanout-latency-5000": "deliveries/s (one emit)",
    "idle-100k": "connects/s (with a room join)",
}
# File descriptors a process keeps beside its connections (listening socket, epoll, pipes, libraries).
FD_RESERVE = 256
# idle-100k's next source address (loadgen.mjs: the n-th is 127.0.<n / 250>.<2 + n % 250>): each measurement takes
# fresh ones, as the previous one's closed connections hold their ports in TIME_WAIT for a minute.
_next_address = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *command]
    return command


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of *pid* so far, from /proc/<pid>/stat (utime, stime)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(need: int) -> int:
    """Raise RLIMIT_NOFILE (inherited by the servers and load generators started from here) to *need* if the hard
    limit allows (or can be raised: CAP_SYS_RESOURCE), else to the hard limit; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = need if hard == resource.RLIM_INFINITY else max(soft, min(hard, need))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bun_runs() -> bool:
    try:
        return subprocess.run([BUN, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


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


def measure_many(server: str, size: dict[str, Any]) -> dict[str, Any]:
    """idle-100k: many WebSocket connections on one server process, default heartbeats, each client in one room.

    The clients are spread over several load generator processes and over the source addresses 127.0.0.2,
    127.0.0.3, ... (`per_address` each). Measures the server's RSS growth per connection, its CPU % of one core over
    an idle window of `window` seconds (heartbeats only), and one broadcast to the room: emit -> first, median
    and last delivery. If RLIMIT_NOFILE's hard limit is below what the requested count needs, runs as many
    connections as it allows and says so in the result (`limited_by`).
    """
    global _next_address
    requested = int(size["clients"])
    limit = raise_nofile(requested + FD_RESERVE)
    count = min(requested, limit - FD_RESERVE)
    procs = max(1, min(int(size["procs"]), count))
    note = None
    if count < requested:
        note = f"RLIMIT_NOFILE hard limit {limit}: {count} connections instead of {requested}"
        print(f"idle-100k: {note}", file=sys.stderr, flush=True)
    port = free_port()
    proc = subprocess.Popen(pinned(0, [*SERVERS[server], "--port", str(port)]), cwd=ROOT, stderr=subprocess.DEVNULL)
    gens: list[subprocess.Popen[str]] = []
    try:
        wait_listening(port, proc)
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        window = float(size["window"])
        # a bound on the whole load generator: connecting at >= 100 connects/s, the idle window, the broadcast
        timeout = 120 + count / 100 + window + 60
        shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        offset = 0
        base = _next_address
        _next_address += -(-count // int(size["per_address"]))
        for i, share in enumerate(shares):
            heap = ["--max-old-space-size=4096"] if share > 20000 else []
            args = ["node", *heap, os.path.join(HERE, "loadgen.mjs"), "idle-many", "--port", str(port)]
            args += ["--clients", str(share), "--offset", str(offset), "--per-address", str(size["per_address"])]
            args += ["--address-base", str(base)]
            args += ["--timeout", str(int(timeout)), "--wait", "60"] + (["--driver"] if i == 0 else [])
            offset += share
            gens.append(
                subprocess.Popen(pinned(1, args), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )

        def read_all() -> list[dict[str, Any]]:
            lines = []
            for gen in gens:
                assert gen.stdout is not None
                line = gen.stdout.readline()
                lines.append(json.loads(line) if line else {"error": f"load generator exited {gen.wait()}"})
            return lines

        def tell_all(first: subprocess.Popen[str] | None = None) -> None:
            for gen in sorted(gens, key=lambda g: g is first):  # *first* (the driver) last
                assert gen.stdin is not None
                gen.stdin.write("\n")
                gen.stdin.flush()

        connected = read_all()
        errors = [c["error"] for c in connected if "error" in c]
        if errors:
            return {"error": errors[0]}
        connect_seconds = (
            max(c["finished_ms"] for c in connected) / 1000 - min(c["started_ms"] for c in connected) / 1000
        )
        time.sleep(0.5)
        after = rss_kib(proc.pid)
        cpu_start, start = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window)
        cpu_idle = (cpu_seconds(proc.pid) - cpu_start) / (time.monotonic() - start) * 100
        tell_all(first=gens[0])
        received = read_all()
        errors = [r["error"] for r in received if "error" in r]
        if errors:
            return {"error": errors[0]}
        emitted = received[0]["emitted_ms"]
        times = sorted(t - emitted for r in received for t in r["times"])
        tell_all()
        for gen in gens:
            gen.wait(timeout=60)
        result: dict[str, Any] = {
            "rate": count / connect_seconds,
            "count": count,
            "requested": requested,
            "rss_per_connection_kib": (after - before) / count,
            "cpu_idle_percent": cpu_idle,
            "idle_window_s": window,
            "delivered": len(times),
        }
        if times:
            result.update(
                first_delivery_ms=times[0],
                median_delivery_ms=times[len(times) // 2],
                last_delivery_ms=times[-1],
            )
        if len(times) < count:
            result["error"] = f"the broadcast reached {len(times)} of {count} clients"
        if note:
            result["limited_by"] = note
        return result
    finally:
        for gen in gens:
            if gen.poll() is None:
                gen.kill()
                gen.wait(timeout=10)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(server: str, scenario: str, size: dict[str, Any]) -> dict[str, Any]:
    if scenario in CLUSTER:
        return measure_cluster(server, scenario, size)
    if scenario == "idle-100k":
        return measure_many(server, size)
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


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def render(raw: dict[str, dict[str, list[dict[str, Any]]]], size: str, reps: int) -> str:
    """The Markdown table of medians, with ratios of this project to Node, Bun and python-socketio on Tornado."""
    scenarios = list(raw)
    servers = list(next(iter(raw.values()), {}))

    def median(scenario: str, server: str, key: str) -> float | None:
        values = [r[key] for r in raw[scenario][server] if key in r]
        return statistics.median(values) if values else None

    names = {"node socket.io": "node", "bun socket.io": "bun", "python-socketio (tornado)": "python-socketio (tornado)"}
    ratio_peers = {server: name for server, name in names.items() if server in servers}
    lines = [
        f"Size `{size}`, {reps} repetition(s), {time.strftime('%Y-%m-%d')}; medians; ratio = this project ÷ peer.",
        "",
        "| scenario | metric | "
        + " | ".join(servers)
        + " | "
        + " | ".join(f"tornad_io ÷ {name}" for name in ratio_peers.values())
        + " |",
        "|---|---|" + "---|" * (len(servers) + len(ratio_peers)),
    ]
    rows = [(s, "rate", UNITS[s]) for s in scenarios]
    rows += [(s, "count", "connections held") for s in scenarios if s == "idle-100k"]
    rows += [(s, "p50_ms", "p50 latency ms") for s in scenarios if s == "connect-client"]
    rows += [(s, "p99_ms", "p99 latency ms") for s in scenarios if "echo" in s or s == "connect-client"]
    delivered = ("fanout", "mixed", "cluster", "idle-100k")
    rows += [(s, "first_delivery_ms", "emit → first delivery ms") for s in scenarios if s.startswith(delivered)]
    rows += [
        (s, "median_delivery_ms", "emit → median delivery ms")
        for s in scenarios
        if s.startswith(("fanout-latency", "idle-100k"))
    ]
    rows += [(s, "last_delivery_ms", "emit → last delivery ms") for s in scenarios if s.startswith(delivered)]
    rows += [(s, "rss_per_connection_kib", "RSS per connection KiB") for s in scenarios if s in ("idle", "idle-100k")]
    rows += [(s, "cpu_idle_percent", "CPU % of a core, idle (heartbeats)") for s in scenarios if s == "idle-100k"]
    rows.sort(key=lambda row: scenarios.index(row[0]))  # each scenario's rows together
    for scenario, key, label in rows:
        cells = []
        values: dict[str, float | None] = {}
        for server in servers:
            value = median(scenario, server, key)
            values[server] = value
            errors = [r["error"] for r in raw[scenario][server] if "error" in r]
            cells.append(fmt(value) if value is not None else ("error" if errors else "—"))
        ratios = [_ratio(values.get("tornad_io"), values.get(p)) for p in ratio_peers]
        lines.append(f"| {scenario} | {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    limited = sorted({r["limited_by"] for s in raw for v in raw[s] for r in raw[s][v] if "limited_by" in r})
    lines += [f"\nidle-100k: {note}" for note in limited]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", help="comma-separated scenarios")
    parser.add_argument("--servers", help="comma-separated servers")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "latest"))
    parser.add_argument("--render", metavar="JSON", help="only write the table (--output .md) of saved raw figures")
    args = parser.parse_args()
    if args.render:
        with open(args.render) as file:
            table = render(json.load(file), args.size, args.reps)
        print(table)
        with open(args.output + ".md", "w") as file:
            file.write(table + "\n")
        return
    if not shutil.which("node"):
        sys.exit("node is required (Node.js 18+), and `npm ci` at the repository root")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "socket.io")):
        sys.exit("run `npm ci` at the repository root first (socket.io and ws are needed)")
    raise_nofile(65536)
    scenarios = args.only.split(",") if args.only else list(SIZES[args.size])
    servers = args.servers.split(",") if args.servers else list(DEFAULT_SERVERS)
    if "bun socket.io" in servers and not bun_runs():
        # the only reason to leave Bun out: its binary (the `bun` npm package) cannot run on this machine
        print(f"{BUN} --version failed: bun socket.io left out (run `npm ci`)", file=sys.stderr)
        servers.remove("bun socket.io")
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {s: {v: [] for v in servers} for s in scenarios}
    for rep in range(args.reps):
        for scenario in scenarios:
            order = servers[rep % len(servers) :] + servers[: rep % len(servers)]  # alternate who goes first
            for server in order:
                if server in ECHO_ONLY and scenario != "ws-echo":
                    continue
                if scenario in ONLY_OURS and not server.startswith("tornad_io"):
                    continue
                if scenario in ONLY_PEERS and not (server.startswith("tornad_io") or server in PEERS):
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

    table = render(raw, args.size, args.reps)
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
