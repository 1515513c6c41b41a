"""The demo: a small chat room at http://localhost:8888 (in memory, nothing else to run).

    python examples/chat/app.py [--port 8888] [--host 127.0.0.1] [--admin]

The page uses the real socket.io-client bundle, installed from npm into
node_modules/ by the set-up command and served at /socket.io.min.js.

With ``--admin`` the server is instrumented for the Socket.IO Admin UI
(:mod:`tornad_io.admin`), and the UI's static files (the npm package
``@socket.io/admin-ui``, installed by the set-up command into node_modules/, not
copied here) are served at /admin/: open it, enter the server's URL
(http://localhost:8888) and connect. Authentication is off, which is only
acceptable for a demo on your own machine.

Events: on connect the server sends ``history`` (who is online, and the last
``HISTORY`` messages); ``join(name)`` answers ``{ok, name, users}``;
``say(text)`` sends ``said {name, text}`` to everyone, the text cut to
``MAX_TEXT`` characters, and answers the sender ``{ok, truncated, length,
limit}`` so the page can tell them about the cut; ``typing``, ``joined`` and
``left`` are notes. Whoever joins is in the room ``chat`` (which the Admin UI shows).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
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
ADMIN_UI = os.path.join(ROOT, "node_modules", "@socket.io", "admin-ui", "ui", "dist")
MAX_NAME = 32  # characters of a name
MAX_TEXT = 1000  # characters of a message; longer ones are cut, and the sender is told
HISTORY = 20  # messages a newcomer is shown


def make_app(admin: bool | dict[str, str] = False) -> tuple[tornado.web.Application, Server]:
    """The demo's application and server; *admin* instruments it for the Admin UI and serves the UI at /admin/.

    ``True`` turns the UI's authentication off (for the local demo only); a
    dict is the ``auth`` option of :func:`tornad_io.admin.instrument`
    (``{"type": "basic", "username": ..., "password": <bcrypt hash>}``).
    """
    io = Server()
    names: dict[str, str] = {}
    history: collections.deque[dict[str, str]] = collections.deque(maxlen=HISTORY)

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.emit("history", {"users": sorted(names.values()), "messages": list(history)})

    @io.on("join")
    def join(socket: Socket, name: str) -> dict[str, Any]:
        name = str(name).strip()[:MAX_NAME] or "anonymous"
        names[socket.id] = name
        socket.join("chat")
        socket.broadcast.emit("joined", name)
        return {"ok": True, "name": name, "users": sorted(names.values())}

    @io.on("say")
    def say(socket: Socket, text: str) -> dict[str, Any]:
        name = names.get(socket.id)
        if name is None:
            return {"ok": False}
        text = str(text)
        message = {"name": name, "text": text[:MAX_TEXT]}
        history.append(message)
        io.emit("said", message)
        return {"ok": True, "truncated": len(text) > MAX_TEXT, "length": len(text), "limit": MAX_TEXT}

    @io.on("typing")
    def typing(socket: Socket) -> None:
        if socket.id in names:
            socket.broadcast.volatile.emit("typing", names[socket.id])

    @io.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        name = names.pop(socket.id, None)
        if name is not None:
            io.emit("left", name)

    routes: list[Any] = [
        (r"/()", tornado.web.StaticFileHandler, {"path": HERE, "default_filename": "index.html"}),
        (r"/(socket\.io\.min\.js(?:\.map)?)", tornado.web.StaticFileHandler, {"path": CLIENT_BUNDLE}),
        *io.routes(),
    ]
    if admin is not False:
        from tornad_io.admin import instrument

        # auth=False: anyone who reaches the server may watch and act on every socket. Acceptable only for
        # this demo on 127.0.0.1; a real deployment gives {"type": "basic", "username": ..., "password": hash}.
        instrument(io, auth=False if admin is True else admin)
        routes += [
            (r"/admin", tornado.web.RedirectHandler, {"url": "/admin/"}),
            (r"/admin/(.*)", tornado.web.StaticFileHandler, {"path": ADMIN_UI, "default_filename": "index.html"}),
        ]
    app = tornado.web.Application(routes)
    return app, io


async def main() -> None:
    parser = argparse.ArgumentParser(description="tornad_io chat demo")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--admin", action="store_true", help="serve the Socket.IO Admin UI at /admin/ (no login)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(CLIENT_BUNDLE, "socket.io.min.js")):
        sys.exit("socket.io-client is not installed: run `npm ci` at the repository root first")
    if args.admin and not os.path.exists(os.path.join(ADMIN_UI, "index.html")):
        sys.exit("@socket.io/admin-ui is not installed: run `npm ci` at the repository root first")
    app, io = make_app(admin=args.admin)
    server = app.listen(args.port, address=args.host, **io.http_server_options())
    print(f"chat demo on http://localhost:{args.port}  (Ctrl-C to stop)", flush=True)
    if args.admin:
        print(
            f"Admin UI on http://localhost:{args.port}/admin/ (server URL: http://localhost:{args.port});"
            " authentication is OFF: for this local demo only",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await io.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
