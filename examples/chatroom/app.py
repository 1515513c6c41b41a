"""A chatroom where three generations of Socket.IO clients share one room.

    python examples/chatroom/app.py [--port 8888] [--processes N]

http://localhost:8888/ uses today's client (socket.io-client 4.x, path
``/chat/``); http://localhost:8888/v2.html uses socket.io-client 2.x
(Engine.IO v3, path ``/chat``); http://localhost:8888/legacy.html uses the 0.6
client (resource ``chat``). The client bundles are served from node_modules/
(run ``npm ci`` first). One handler class serves all three; every message goes
to every connection.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

import tornado.web  # noqa: E402

from tornad_io import SocketIOServer  # noqa: E402
from tornad_io.socket_io import SocketIOHandler  # noqa: E402

MODERN_CLIENT = os.path.join(ROOT, "node_modules", "socket.io-client", "dist")
LEGACY_CLIENT = os.path.join(ROOT, "node_modules", "socket.io-legacy", "support", "socket.io-client")
V2_CLIENT = os.path.join(ROOT, "node_modules", "socket.io-client-v2", "dist")


class ChatHandler(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.session["name"] = f"guest-{self.id[:4]}"
        self.send({"welcome": self.session["name"], "protocol": self.protocol})
        self.broadcast({"joined": self.session["name"]})

    def on_message(self, message: Any) -> None:
        if isinstance(message, dict) and "name" in message:
            self.session["name"] = str(message["name"])[:32]
            return
        self.broadcast({"from": self.session["name"], "text": str(message)[:1000]}, include_self=True)

    def on_close(self) -> None:
        self.broadcast({"left": self.session.get("name")})


def make_app(**settings: Any) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/()", tornado.web.StaticFileHandler, {"path": HERE, "default_filename": "index.html"}),
            (r"/(legacy\.html|v2\.html)", tornado.web.StaticFileHandler, {"path": HERE}),
            (
                r"/modern/(socket\.io\.min\.js(?:\.map)?)",
                tornado.web.StaticFileHandler,
                {"path": MODERN_CLIENT},
            ),
            (r"/legacy/(socket\.io\.js)", tornado.web.StaticFileHandler, {"path": LEGACY_CLIENT}),
            (r"/v2/(socket\.io\.js(?:\.map)?)", tornado.web.StaticFileHandler, {"path": V2_CLIENT}),
            ChatHandler.routes("chat"),
        ],
        **settings,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="tornad_io chatroom (0.6, 2.x and 4.x clients)")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--processes", type=int, default=1, help="worker processes on the port (0: one per core)")
    args = parser.parse_args()
    print(f"chatroom on http://localhost:{args.port}/, /v2.html and /legacy.html", flush=True)
    app = make_app(socket_io_port=args.port, enabled_protocols=["websocket", "xhr-polling", "jsonp-polling"])
    SocketIOServer(app, processes=args.processes)


if __name__ == "__main__":
    main()
