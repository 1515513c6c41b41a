"""One node of a cluster: run several, on several ports or machines, with one Redis.

    python examples/cluster/server.py --port 8001 --redis redis://127.0.0.1:6379/0
    python examples/cluster/server.py --port 8002 --redis redis://127.0.0.1:6379/0
    python examples/cluster/server.py --port 8001 --redis redis://127.0.0.1:6379/0 --adapter streams --recovery
    python examples/cluster/server.py --port 8001      # no --redis: one node, in memory
    python examples/cluster/server.py --port 8001 --processes 4   # 4 workers on one port, no Redis

``--adapter`` picks the Redis wire format: ``classic`` (@socket.io/redis-adapter's
``createAdapter``, the default), ``sharded`` (its ``createShardedAdapter``) or
``streams`` (@socket.io/redis-streams-adapter). ``--recovery`` turns connection
state recovery on (a client that drops comes back within 120 s with its id,
rooms and the events it missed).

Clients of any node chat together; ``who`` answers with every connected
socket of the cluster (fetch_sockets across nodes), ``nodes`` with every
node's name (server-side emit with acks). Node.js socket.io servers with
@socket.io/redis-adapter on the same Redis join the same cluster.

``--processes N`` (0: one per core) forks N workers on the one port
(:func:`tornad_io.serve`); each is a node named ``python:PORT:PID``. Without
``--redis`` they share broadcasts, rooms and fetches through the supervisor;
with it, through Redis. Each worker prints ``worker I pid P ready``.

``--advertise HOST:PORT`` (with ``--redis``) makes the node forward a request
for another node's session to that node, so a round-robin load balancer with no
sticky sessions can sit in front of several nodes (docs/cluster.md):

    python examples/cluster/server.py --port 8001 --redis redis://10.0.0.9:6379/0 --advertise 10.0.0.5:8001
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tornado.web  # noqa: E402

from tornad_io import AdapterFactory, Server, Socket  # noqa: E402

ADAPTERS = ("classic", "sharded", "streams")


def adapter_for(redis_url: str | None, kind: str) -> AdapterFactory | None:
    """The adapter factory for *kind* on *redis_url* (None: one node, in memory)."""
    if redis_url is None:
        return None
    from tornad_io import cluster

    if kind == "sharded":
        return cluster.sharded_redis_adapter(redis_url)
    if kind == "streams":
        return cluster.redis_streams_adapter(redis_url)
    return cluster.redis_adapter(redis_url)


def make_server(
    redis_url: str | None, name: str | Callable[[], str], kind: str = "classic", recovery: bool = False
) -> Server:
    """The chat server of one node; *name* is the node's name, or what tells it (read per event)."""
    node_name = name if callable(name) else (lambda: name)
    io = Server(
        adapter=adapter_for(redis_url, kind),
        cors_allowed_origins="*",
        connection_state_recovery={"max_disconnection_duration": 120.0} if recovery else False,
    )

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.data["node"] = node_name()

    @io.on("chat")
    def chat(socket: Socket, text: str) -> None:
        io.emit("chat", {"from": socket.id, "node": node_name(), "text": str(text)[:1000]})

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> list[Any]:
        return [node_name(), *args]

    @io.on("ask")
    async def ask(socket: Socket, question: str) -> int:
        """Ask every client of the cluster (a broadcast with acks); how many answered."""
        return len(await io.timeout(5).emit_with_ack("question", str(question)[:100]))

    @io.on("rally")
    def rally(socket: Socket, room: str) -> None:
        """Put every socket of the cluster in *room*, then emit to the room."""
        io.sockets_join(str(room))
        io.to(str(room)).emit("rallied", str(room))

    @io.on("kick")
    def kick(socket: Socket) -> None:
        """Disconnect every socket of the cluster."""
        io.disconnect_sockets()

    @io.on("who")
    async def who(socket: Socket) -> list[dict[str, Any]]:
        return [{"id": s.id, "node": s.data.get("node")} for s in await io.fetch_sockets()]

    @io.on("nodes")
    async def nodes(socket: Socket) -> list[str]:
        return sorted([node_name(), *await io.server_side_emit_with_ack("name")])

    io.on_server_side_emit("name", node_name)
    return io


def serve_processes(args: argparse.Namespace) -> None:
    """Fork ``args.processes`` workers on one port; each worker is a node named python:PORT:PID."""
    import tornad_io

    names = {"name": f"python:{args.port}"}
    io = make_server(args.redis, lambda: names["name"], args.adapter, args.recovery)
    app = tornado.web.Application(io.routes())

    def started(worker: tornad_io.process.Worker | None) -> None:
        names["name"] = f"python:{args.port}:{os.getpid()}"
        index = worker.index if worker is not None else 0
        line = f"worker {index} pid {os.getpid()} ready on http://{args.host}:{args.port}\n"
        os.write(sys.stdout.fileno(), line.encode())  # one write per line: the workers share the pipe

    tornad_io.serve(
        app,
        args.port,
        address=args.host,
        processes=args.processes,
        on_worker_start=started,
        advertise=args.advertise,
        **io.http_server_options(),
    )
    print("all workers stopped", flush=True)


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="tornad_io cluster node")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", help="a Redis URL (redis://127.0.0.1:6379/0); without it, one node in memory")
    parser.add_argument("--adapter", choices=ADAPTERS, default="classic", help="the Redis wire format")
    parser.add_argument("--recovery", action="store_true", help="connection state recovery (120 s window)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--processes", type=int, default=1, help="worker processes on the port (0: one per core)")
    parser.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="forward requests for other nodes' sessions (needs --redis): the address other nodes reach this one at",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return args


async def main(args: argparse.Namespace) -> None:
    name = f"python:{args.port}"
    io = make_server(args.redis, name, args.adapter, args.recovery)
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
    arguments = parse_args()
    if arguments.processes != 1 or arguments.advertise:
        serve_processes(arguments)
    else:
        asyncio.run(main(arguments))
