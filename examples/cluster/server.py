"""One node of a cluster: run several, on several ports or machines, with one Redis.

    python examples/cluster/server.py --port 8001 --redis redis://127.0.0.1:6379/0
    python examples/cluster/server.py --port 8002 --redis redis://127.0.0.1:6379/0

Clients of any node chat together; ``who`` answers with every connected
socket of the cluster (fetch_sockets across nodes), ``nodes`` with every
node's name (server-side emit with acks). Node.js socket.io servers with
@socket.io/redis-adapter on the same Redis join the same cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tornado.web  # noqa: E402

from tornad_io import Server, Socket  # noqa: E402
from tornad_io.cluster import redis_adapter  # noqa: E402


def make_server(redis_url: str, name: str) -> Server:
    io = Server(adapter=redis_adapter(redis_url), cors_allowed_origins="*")

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.data["node"] = name

    @io.on("chat")
    def chat(socket: Socket, text: str) -> None:
        io.emit("chat", {"from": socket.id, "node": name, "text": str(text)[:1000]})

    @io.on("who")
    async def who(socket: Socket) -> list[dict[str, Any]]:
        return [{"id": s.id, "node": s.data.get("node")} for s in await io.fetch_sockets()]

    @io.on("nodes")
    async def nodes(socket: Socket) -> list[str]:
        return sorted([name, *await io.server_side_emit_with_ack("name")])

    io.on_server_side_emit("name", lambda: name)
    return io


async def main() -> None:
    parser = argparse.ArgumentParser(description="tornad_io cluster node")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    name = f"python:{args.port}"
    io = make_server(args.redis, name)
    await io.init()
    server = tornado.web.Application(io.routes()).listen(args.port, address=args.host, **io.http_server_options())
    print(f"{name} ready on http://{args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await io.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
