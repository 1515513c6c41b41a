"""What a handed-over request costs against a direct one, under ``serve(processes=2)``.

    python benchmarks/handover.py [--requests 2000]

Starts ``examples/cluster/server.py --processes 2`` (or 1) with the ``tornad_io.process``
logger at DEBUG, opens one polling session, then sends *requests* POSTs of one
event packet to it, each on a new connection (as a client does under several
processes: responses close the connection). With one process every request is
direct; with two, each new connection is accepted by whichever worker the
kernel wakes, and the server's log counts the ones handed to the owner.
Handed-over cost = direct mean + (mixed mean - direct mean) / handed fraction.
Everything is bounded: a request waits at most 10 s, the server 30 s to start.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def measure(processes: int, count: int) -> tuple[list[float], int]:
    """Latencies (seconds) of *count* POSTs on one session, and how many were handed over."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(port), str(processes)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            assert server.stdout is not None
            for _ in range(processes):
                line = server.stdout.readline()
                assert b"ready" in line, line
            status, body = request(port, "GET", "/socket.io/?EIO=4&transport=polling")
            sid = json.loads(body[1:])["sid"]
            path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
            assert request(port, "POST", path, b"40")[0] == 200
            times = []
            for _ in range(count):
                started = time.perf_counter()
                status, body = request(port, "POST", path, b'42["noop"]')
                times.append(time.perf_counter() - started)
                assert (status, body) == (200, b"ok"), (status, body)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        log.seek(0)
        handed = len(re.findall(rb"handed to worker", log.read()))
    return times, handed


SERVE = """
import logging, sys
sys.argv = ["server.py", "--port", sys.argv[1], "--processes", sys.argv[2]]
sys.path.insert(0, "examples/cluster")
import server
args = server.parse_args()
logging.getLogger("tornado.access").setLevel(logging.WARNING)
logging.getLogger("tornad_io.process").setLevel(logging.DEBUG)
if args.processes > 1:
    server.serve_processes(args)
else:
    import asyncio
    asyncio.run(server.main(args))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    direct, _ = measure(1, args.requests)
    mixed, handed = measure(2, args.requests)
    d, m = statistics.mean(direct), statistics.mean(mixed)
    fraction = handed / len(mixed)
    print(f"processes=1: {len(direct)} POSTs, mean {d * 1e6:.0f} us, median {statistics.median(direct) * 1e6:.0f} us")
    print(
        f"processes=2: {len(mixed)} POSTs, mean {m * 1e6:.0f} us, median {statistics.median(mixed) * 1e6:.0f} us, "
        f"{handed} handed over ({fraction:.0%})"
    )
    if fraction > 0:
        print(f"estimated handed-over request: {(d + (m - d) / fraction) * 1e6:.0f} us (direct: {d * 1e6:.0f} us)")


if __name__ == "__main__":
    main()
