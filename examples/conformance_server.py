"""A server configured as the official protocol test suites expect.

    python examples/conformance_server.py --port 3000 [--parser msgpack]

- ``/engine.io/``: a bare Engine.IO v4 server that echoes every message
  (``socketio/engine.io-protocol``, folder ``test-suite/``);
- ``/socket.io/``: a Socket.IO v5 server with namespaces ``/`` and
  ``/custom`` that emits ``auth`` on connect, answers ``message`` with
  ``message-back`` and acknowledges ``message-with-ack`` with its arguments
  (``socketio/socket.io-protocol``, folder ``test-suite/``).

Both use pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1 000 000, any
CORS origin, and the Socket.IO side a 1 s connect timeout.

With ``--allow-eio3`` both also serve Engine.IO v3 (``EIO=3``, the reference's
``allowEIO3``), as the v3 test suite (``socketio/engine.io-protocol``, branch
``v3``) and socket.io-client 2.x expect. ``--parser msgpack`` makes the
Socket.IO side speak socket.io-msgpack-parser's format (the official suite is
written for the default JSON parser; this serves clients that use the msgpack one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tornado.web  # noqa: E402

from tornad_io import HTTPServer, Server, ServerOptions, Socket  # noqa: E402
from tornad_io.engineio.server import Engine  # noqa: E402
from tornad_io.engineio.session import Session  # noqa: E402
from tornad_io.transports.engineio import engine_routes  # noqa: E402

SETTINGS: dict[str, Any] = dict(
    ping_interval=0.3, ping_timeout=0.2, max_http_buffer_size=1_000_000, cors_allowed_origins="*", jsonp=True
)


def echo_engine(allow_eio3: bool = False) -> Engine:
    """A bare Engine.IO server that sends every message back."""

    def on_connection(session: Session) -> None:
        def echo(data: str | bytes) -> None:
            session.send_one("4" + data if isinstance(data, str) else data)

        session.on_message = echo

    return Engine(ServerOptions(path="/engine.io/", allow_eio3=allow_eio3, **SETTINGS), on_connection)


def socketio_server(allow_eio3: bool = False, parser: str = "json") -> Server:
    io = Server(connect_timeout=1.0, allow_eio3=allow_eio3, parser=parser, **SETTINGS)

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    @io.on("message")
    def message(socket: Socket, *args: Any) -> None:
        socket.emit("message-back", *args)

    @io.on("message-with-ack")
    def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @io.of("/custom").on("connect")
    def custom_connect(socket: Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    return io


def make_app(allow_eio3: bool = False, parser: str = "json") -> tornado.web.Application:
    io = socketio_server(allow_eio3, parser)
    return tornado.web.Application(engine_routes(echo_engine(allow_eio3)) + io.routes())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-eio3", action="store_true", help="serve Engine.IO v3 clients too (allowEIO3)")
    parser.add_argument("--parser", choices=("json", "msgpack"), default="json", help="Socket.IO packet format")
    args = parser.parse_args()
    HTTPServer(make_app(args.allow_eio3, args.parser)).listen(args.port, address=args.host)  # limits, body cap
    print(f"conformance server on http://{args.host}:{args.port} ({args.parser} parser)", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
