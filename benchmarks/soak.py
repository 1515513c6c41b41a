"""Soak test: clients connect, chat and disconnect for a while; then many connect/disconnect cycles.

    python benchmarks/soak.py --duration 600 --clients 50 --cycles 100000

The server (this project, in-memory) runs in a child process pinned apart from
the load where ``taskset`` exists. The load speaks raw Engine.IO v4 / Socket.IO
v5 over WebSocket with Tornado's client, in this process. Reported:

- messages sent vs acknowledged (each chat message is an ``echo`` with an ack:
  every one accepted must come back) and errors;
- the server's RSS over time (sampled each second from /proc), and its growth
  across the connect/disconnect cycles (after a warm-up tenth).

Everything is bounded: ``--duration`` seconds of chat, ``--cycles`` cycles, and a
per-operation timeout. Exit status 1 if any message was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

OP_TIMEOUT = 10.0


def serve(port: int) -> None:
    """The server side (run in the child process)."""
    import logging

    import tornado.web

    from tornad_io import Server, Socket

    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    io = Server()

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @io.on("join")
    def join(socket: Socket, room: str) -> None:
        socket.join(room)
        socket.to(room).emit("joined", socket.id)

    async def main() -> None:
        tornado.web.Application(io.routes()).listen(port, address="127.0.0.1")
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stats:
    def __init__(self) -> None:
        self.sent = 0
        self.acked = 0
        self.connects = 0
        self.errors: list[str] = []


async def session(port: int, stats: Stats, messages: int, payload: str) -> None:
    """One client: connect, join a room, send *messages* acked echoes, disconnect."""
    from tornado.websocket import websocket_connect

    conn = await asyncio.wait_for(
        websocket_connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"), OP_TIMEOUT
    )
    try:

        async def read() -> str:
            while True:
                message = await asyncio.wait_for(conn.read_message(), OP_TIMEOUT)
                if message is None:
                    raise ConnectionError("closed by the server")
                if message == "2":
                    conn.write_message("3")
                    continue
                return str(message)

        await read()  # open
        conn.write_message("40")
        await read()  # connect
        stats.connects += 1
        conn.write_message('42["join","lobby"]')
        for i in range(messages):
            conn.write_message(f'42{i}["echo",{i},"{payload}"]')
            stats.sent += 1
            while True:
                reply = await read()
                if reply.startswith(f"43{i}["):
                    if json.loads(reply[len(f"43{i}") :]) != [i, payload]:
                        stats.errors.append(f"bad ack {reply[:40]}")
                    stats.acked += 1
                    break
    finally:
        conn.close()


async def run(args: argparse.Namespace) -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, os.path.abspath(__file__), "--serve", str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "0", *command]
        os.sched_setaffinity(0, {1})
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("the server did not start")
        pid = server.pid
        if command[0] == "taskset":  # taskset execs the server: same pid
            pid = server.pid
        stats = Stats()
        samples: list[tuple[float, int]] = []
        start = time.monotonic()
        payload = "x" * args.payload

        async def sampler() -> None:
            while True:
                samples.append((round(time.monotonic() - start, 1), rss_kib(pid)))
                await asyncio.sleep(1)

        sampling = asyncio.ensure_future(sampler())

        async def chatter() -> None:
            deadline = start + args.duration
            while time.monotonic() < deadline:
                try:
                    await session(port, stats, args.messages, payload)
                except Exception as error:  # noqa: BLE001 - counted and reported
                    stats.errors.append(repr(error)[:100])

        await asyncio.gather(*(chatter() for _ in range(args.clients)))
        chat_end = time.monotonic()
        chat = {"seconds": round(chat_end - start, 1), "sent": stats.sent, "acked": stats.acked}

        cycles = Stats()
        warm = max(1, args.cycles // 10)
        rss_after_warmup = 0
        done = 0
        concurrency = 20

        async def cycler(share: int) -> None:
            nonlocal done, rss_after_warmup
            for _ in range(share):
                try:
                    await session(port, cycles, 1, "c")
                except Exception as error:  # noqa: BLE001
                    cycles.errors.append(repr(error)[:100])
                done += 1
                if done == warm:
                    rss_after_warmup = rss_kib(pid)

        share = args.cycles // concurrency
        await asyncio.gather(*(cycler(share) for _ in range(concurrency)))
        cycle_seconds = time.monotonic() - chat_end
        sampling.cancel()
        rss_end = rss_kib(pid)
        report = {
            "chat": chat,
            "chat_errors": stats.errors[:10],
            "cycles": {
                "count": share * concurrency,
                "per_second": round(share * concurrency / cycle_seconds, 1),
                "rss_after_warmup_kib": rss_after_warmup,
                "rss_end_kib": rss_end,
                "rss_growth_kib": rss_end - rss_after_warmup,
                "lost": cycles.sent - cycles.acked,
                "errors": cycles.errors[:10],
            },
            "rss_samples_kib": samples[:: max(1, len(samples) // 20)],
        }
        print(json.dumps(report, indent=1))
        lost = (stats.sent - stats.acked) + (cycles.sent - cycles.acked)
        return 1 if lost or stats.errors or cycles.errors else 0
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of chatting")
    parser.add_argument("--clients", type=int, default=50, help="concurrent chatting clients")
    parser.add_argument("--messages", type=int, default=20, help="acked messages per client session")
    parser.add_argument("--payload", type=int, default=100, help="bytes per message")
    parser.add_argument("--cycles", type=int, default=10_000, help="connect/disconnect cycles")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
