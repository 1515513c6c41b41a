"""The demo: a small chat room at http://localhost:8888 (in memory, nothing else to run).

    python examples/chat/app.py [--port 8888] [--host 127.0.0.1]

The page uses the real socket.io-client bundle, installed from npm into
node_modules/ by the set-up command and served at /socket.io.min.js.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

import tornado.web  # noqa: E402

from tornad_io import Server, Socket  # noqa: E402

CLIENT_BUNDLE = os.path.join(ROOT, "node_modules", "socket.io-client", "dist")


def make_app() -> tuple[tornado.web.Application, Server]:
    io = Server()
    names: dict[str, str] = {}

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.emit("history", {"users": sorted(names.values())})

    @io.on("join")
    def join(socket: Socket, name: str) -> dict[str, Any]:
        name = str(name).strip()[:32] or "anonymous"
        names[socket.id] = name
        socket.broadcast.emit("joined", name)
        return {"ok": True, "name": name, "users": sorted(names.values())}

    @io.on("say")
    def say(socket: Socket, text: str) -> bool:
        name = names.get(socket.id)
        if name is None:
            return False
        io.emit("said", {"name": name, "text": str(text)[:1000]})
        return True

    @io.on("typing")
    def typing(socket: Socket) -> None:
        if socket.id in names:
            socket.broadcast.volatile.emit("typing", names[socket.id])

    @io.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        name = names.pop(socket.id, None)
        if name is not None:
            io.emit("left", name)

    app = tornado.web.Application(
        [
            (r"/()", tornado.web.StaticFileHandler, {"path": HERE, "default_filename": "index.html"}),
            (r"/(socket\.io\.min\.js(?:\.map)?)", tornado.web.StaticFileHandler, {"path": CLIENT_BUNDLE}),
            *io.routes(),
        ]
    )
    return app, io


async def main() -> None:
    parser = argparse.ArgumentParser(description="tornad_io chat demo")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(CLIENT_BUNDLE, "socket.io.min.js")):
        sys.exit("socket.io-client is not installed: run `npm ci` at the repository root first")
    app, io = make_app()
    server = app.listen(args.port, address=args.host, **io.http_server_options())
    print(f"chat demo on http://localhost:{args.port}  (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await io.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
