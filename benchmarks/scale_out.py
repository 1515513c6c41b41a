"""Scaling out: several processes on one port, and requests forwarded between nodes.

    python benchmarks/scale_out.py [--size smoke|full] [--reps 2] [--only processes,forward,fanout]

``processes``: connects/s (``idle``) and long-polling echo (``poll-echo``) of this project with 1
and with 2 worker processes (``tornad_io.serve``) on this machine. Neither the server nor the load
generator is pinned: with 2 workers the server may use both cores, which it shares with the load
generator (Node, one process), so the figure is what this 2-core machine gives, not a per-core
one.

``forward``: what a request for another node's session costs. Two nodes with ``--advertise``
and one Redis; one polling session on node A; *requests* POSTs of one event packet to it, each
on a new connection (forwarding nodes close connections after each response), sent to A (direct)
and to B (forwarded to A). Also a node that does not forward, with keep-alive, as the baseline
of a sticky deployment.

``fanout``: fan-out to 1 000 clients (deliveries/s) with 2 worker processes and the local
inter-process adapter, against 2 nodes through Redis (the ``cluster-1000`` scenario of run.py).

Prints a Markdown table and writes it with the raw figures to benchmarks/results/scale-out-latest.*.
Every wait is bounded (a request 10 s, a server 20 s to start, a load run 300 s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import run  # noqa: E402  # the side-by-side runner: sizes, load generator, cluster measurement

SIZES = {
    "smoke": {"requests": 30, "poll-echo": run.SIZES["smoke"]["poll-echo"], "idle": run.SIZES["smoke"]["idle"]},
    "full": {"requests": 2000, "poll-echo": run.SIZES["full"]["poll-echo"], "idle": {"clients": 5000}},
}


def start_server(port: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "server.py"), "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run.wait_listening(port, proc)
    time.sleep(0.3)
    return proc


def stop(*procs: subprocess.Popen[Any]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def loadgen(scenario: str, port: int, size: dict[str, Any]) -> dict[str, Any]:
    args = ["node", os.path.join(HERE, "loadgen.mjs"), run.LOADGEN[scenario], "--port", str(port)]
    for key, value in size.items():
        args += [f"--{key}", str(value)]
    if scenario != "idle":
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    gen = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert gen.stdout is not None and gen.stdin is not None
    first: dict[str, Any] = json.loads(gen.stdout.readline())
    gen.stdin.write("\n")
    gen.stdin.flush()
    gen.stdout.readline()
    gen.wait(timeout=60)
    return first


def measure_processes(size: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for processes in (1, 2):
        for scenario in ("idle", "poll-echo"):
            port = run.free_port()
            proc = start_server(port, "--processes", str(processes))
            try:
                result = loadgen(scenario, port, size[scenario])
            finally:
                stop(proc)
            results[f"{scenario} x{processes}"] = result.get("rate")
    return results


def request(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> bytes:
    connection.request(method, path, body=body)
    response = connection.getresponse()
    data = response.read()
    assert response.status == 200, (response.status, data)
    return data


def post_times(port: int, path: str, count: int, keep_alive: bool) -> list[float]:
    times = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(count):
            if not keep_alive:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            started = time.perf_counter()
            assert request(connection, "POST", path, b'42["noop"]') == b"ok"
            times.append(time.perf_counter() - started)
    finally:
        connection.close()
    return times


def open_session(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sid = json.loads(request(connection, "GET", "/socket.io/?EIO=4&transport=polling")[1:])["sid"]
    finally:
        connection.close()
    path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        request(connection, "POST", path, b"40")
    finally:
        connection.close()
    return path


def measure_forward(size: dict[str, Any]) -> dict[str, Any]:
    count = size["requests"]
    redis_port = run.free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{redis_port}/0"
    a, b, plain = run.free_port(), run.free_port(), run.free_port()
    procs = [redis]
    try:
        procs.append(start_server(a, "--redis", url, "--advertise"))
        procs.append(start_server(b, "--redis", url, "--advertise"))
        procs.append(start_server(plain))
        path = open_session(a)
        baseline = post_times(plain, open_session(plain), count, keep_alive=True)
        direct = post_times(a, path, count, keep_alive=False)
        forwarded = post_times(b, path, count, keep_alive=False)
    finally:
        stop(*reversed(procs))
    return {
        "keep-alive, no forwarding (sticky)": statistics.median(baseline) * 1e6,
        "forwarding node, direct": statistics.median(direct) * 1e6,
        "forwarding node, forwarded": statistics.median(forwarded) * 1e6,
    }


def measure_fanout(size_name: str) -> dict[str, Any]:
    size = run.SIZES[size_name]["fanout-1000"]
    port = run.free_port()
    proc = start_server(port, "--processes", "2")
    try:
        local = loadgen("fanout-1000", port, size)
    finally:
        stop(proc)
    redis = run.measure_cluster("tornad_io", "cluster-1000", run.SIZES[size_name]["cluster-1000"])
    return {"2 processes, local adapter": local.get("rate"), "2 nodes, Redis": redis.get("rate")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--only", default="processes,forward,fanout")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "scale-out-latest"))
    args = parser.parse_args()
    size = SIZES[args.size]
    chosen = args.only.split(",")
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for _ in range(args.reps):
        if "processes" in chosen:
            raw["processes"].append(measure_processes(size))
        if "forward" in chosen:
            raw["forward"].append(measure_forward(size))
        if "fanout" in chosen:
            raw["fanout"].append(measure_fanout(args.size))
    lines = [f"# Scaling out ({args.size}, medians of {args.reps}, {time.strftime('%Y-%m-%d')})", ""]
    lines += ["| measurement | value |", "|---|---|"]
    for name, reps in raw.items():
        unit = {"processes": "per s", "forward": "µs per request (median)", "fanout": "deliveries/s"}[name]
        for key in reps[0]:
            values = [r[key] for r in reps if r.get(key) is not None]
            value = statistics.median(values) if values else None
            shown = "—" if value is None else f"{value:,.0f}"
            lines.append(f"| {name}: {key} | {shown} {unit} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".md", "w") as f:
        f.write(table + "\n")
    with open(args.output + ".json", "w") as f:
        json.dump({"size": args.size, "reps": args.reps, "raw": raw}, f, indent=1)


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    main()
