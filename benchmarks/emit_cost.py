"""The CPU cost of one broadcast to a room of N sockets, in process, with recovery on and off.

    python benchmarks/emit_cost.py [--sockets 1000] [--emits 200] [--rounds 7]

No network: each socket's session writes into a sink transport, so what is
measured is this project's own path (selection, encoding once, offsets and the
recovery store, queueing per session), not the kernel's. The two servers are
measured alternately, round after round; the best round of each is reported,
which is what a noisy shared machine lets one compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tornad_io import Server  # noqa: E402
from tornad_io.engineio.session import Close, HandshakeInfo  # noqa: E402


class Sink:
    """A transport that takes every packet and sends nothing."""

    name = "websocket"
    pulls = False
    upgradable = False
    writable = True

    def deliver(self, packets: list[Any]) -> None:
        pass

    def is_congested(self) -> bool:
        return False

    def end(self, packets: list[Any] | None = None) -> None:
        pass

    def finish(self, queue: list[Any], mode: Close) -> bool:
        return False


def populated(sockets: int, recovery: bool) -> Server:
    io = Server(connection_state_recovery=recovery, ping_interval=3600)
    for _ in range(sockets):
        session = io.engine.handshake(Sink(), HandshakeInfo({}, {}, "127.0.0.1", False, "/", False))
        session.receive("40")
    for socket in io.sockets.sockets.values():
        socket.join("room")
    return io


def cost(io: Server, emits: int) -> float:
    target = io.to("room")
    start = time.perf_counter()
    for i in range(emits):
        target.emit("bcast", {"n": i, "text": "a message of a few words"})
    return (time.perf_counter() - start) / emits


async def main(sockets: int, emits: int, rounds: int) -> dict[str, Any]:
    servers = {"recovery off": populated(sockets, False), "recovery on": populated(sockets, True)}
    best = {name: float("inf") for name in servers}
    for _ in range(rounds):
        for name, io in servers.items():
            best[name] = min(best[name], cost(io, emits))
    off, on = best["recovery off"], best["recovery on"]
    return {
        "sockets": sockets,
        "µs per broadcast, recovery off": round(off * 1e6, 1),
        "µs per broadcast, recovery on": round(on * 1e6, 1),
        "cost of recovery": f"{(on / off - 1) * 100:+.1f} %",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--emits", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.sockets, args.emits, args.rounds)), ensure_ascii=False, indent=2))
