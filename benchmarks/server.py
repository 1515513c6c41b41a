"""This project's benchmark server: ``echo`` (ack the payload), ``join`` (enter a room, ack),
``broadcast`` ``{n, room, payload}`` (emit ``bcast`` n times to the room, ack n).

    python benchmarks/server.py --port N [--uvloop] [--recovery] [--no-lean] [--processes N [--redis URL --advertise]]

Served by ``tornad_io.HTTPServer``, whose lean polling path is on unless ``--no-lean``. With
``--processes`` (or ``--advertise``) it runs under :func:`tornad_io.serve`: N workers on the port, and
with ``--advertise`` one node of a forwarding cluster (needs ``--redis``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tornado.web  # noqa: E402

from tornad_io import HTTPServer, Server, Socket  # noqa: E402
from tornad_io.socket_io import SocketIOHandler  # noqa: E402


class Mixed(SocketIOHandler):
    """The mixed-generation scenario: 0.6 clients at /mixed/websocket, v4 clients at path /mixed/."""

    def on_message(self, message: Any) -> None:
        if message == "join":
            self.join("room")
            self.send("joined")


def handlers(io: Server) -> None:
    """The three benchmark events on *io*."""

    @io.on("echo")
    def echo(socket: Socket, payload: Any) -> Any:
        return payload

    @io.on("join")
    def join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @io.on("broadcast")
    def broadcast(socket: Socket, spec: dict[str, Any]) -> int:
        target = io.to(spec["room"])
        payload = spec["payload"]
        for _ in range(spec["n"]):
            target.emit("bcast", payload)
        return int(spec["n"])


def make_app(redis: str | None = None, recovery: bool = False) -> tuple[tornado.web.Application, Server]:
    if redis:
        from tornad_io.cluster import redis_adapter

        io = Server(cors_allowed_origins="*", adapter=redis_adapter(redis), connection_state_recovery=recovery)
    else:
        io = Server(cors_allowed_origins="*", connection_state_recovery=recovery)
    handlers(io)
    handlers(Mixed.io())
    # No access log: logging is not configured, so tornado.access drops its INFO lines (a log_function
    # setting would also turn the lean polling path off, see tornad_io.transports.lean_http).
    app = tornado.web.Application(io.routes() + [Mixed.routes("mixed")])
    return app, io


async def main(port: int, redis: str | None = None, recovery: bool = False, lean: bool = True) -> None:
    app, io = make_app(redis, recovery)
    await io.init()
    HTTPServer(app, lean_polling=lean).listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (pip install uvloop)")
    parser.add_argument("--redis", help="join a cluster through this Redis (redis://...)")
    parser.add_argument("--recovery", action="store_true", help="connection state recovery on (offsets kept)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (tornad_io.serve)")
    parser.add_argument("--advertise", action="store_true", help="forward other nodes' sessions (needs --redis)")
    parser.add_argument("--no-lean", action="store_true", help="every request through the Tornado application")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.uvloop:
        import uvloop

        uvloop.install()
    if args.processes != 1 or args.advertise:
        import tornad_io

        application, _io = make_app(args.redis, args.recovery)
        tornad_io.serve(
            application,
            args.port,
            address="127.0.0.1",
            processes=args.processes,
            advertise=f"127.0.0.1:{args.port}" if args.advertise else None,
            on_worker_start=lambda worker: print("ready", flush=True),
        )
    else:
        asyncio.run(main(args.port, args.redis, args.recovery, not args.no_lean))
