"""The porting example on tornad_io: the "after" side of ``pysio_app.py``.

    python examples/porting/tornadio_app.py [--port 8000] [--host 127.0.0.1]

The same application, event for event, as ``pysio_app.py`` (python-socketio on
aiohttp); ``docs/porting-from-python-socketio.md`` explains each change and
``tests/test_porting_example.py`` checks that python-socketio's ``AsyncClient``
sees the same results from both. What changes:

- handlers get the :class:`~tornad_io.Socket`, not a sid, and most calls become
  methods of it (``socket.join``, ``socket.rooms``, ``socket.disconnect``);
- emitting is a plain call, not a coroutine (no ``await``);
- the session is ``socket.data``, a dict that needs no saving;
- ``sio.call`` is ``await socket.emit_with_ack``;
- background tasks are asyncio tasks; ``sio.sleep`` is ``asyncio.sleep``;
- the refusal sits in a connection middleware (``io.use``), which runs before
  the ``connect`` handler.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any, Awaitable, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import tornado.httpserver  # noqa: E402
import tornado.netutil  # noqa: E402
import tornado.web  # noqa: E402

from tornad_io import ConnectionRefused, Server, Socket  # noqa: E402


def make_server() -> Server:
    io = Server()
    # asyncio keeps only weak references to tasks: hold them until they finish.
    background: set[asyncio.Task[Any]] = set()

    def start_background_task(target: Callable[..., Awaitable[Any]], *args: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(target(*args))
        background.add(task)
        task.add_done_callback(background.discard)
        return task

    @io.use
    def require_name(socket: Socket) -> None:
        auth = socket.handshake.auth
        if not (isinstance(auth, dict) and auth.get("name")):
            raise ConnectionRefused("a name is required")

    @io.event
    def connect(socket: Socket) -> None:
        socket.data["name"] = socket.handshake.auth["name"]

    @io.event
    def join(socket: Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms - {socket.id})

    @io.event
    def leave(socket: Socket, room: str) -> list[str]:
        socket.leave(room)
        return sorted(socket.rooms - {socket.id})

    @io.event
    def say(socket: Socket, message: dict[str, str]) -> str:
        said = {"from": socket.data["name"], "text": message["text"]}
        socket.to(message["room"]).emit("said", said)  # socket.to(...) leaves the sender out
        return "delivered"

    @io.event
    def rename(socket: Socket, name: str) -> str:
        old = socket.data["name"]
        socket.data["name"] = name
        return str(old)

    @io.event
    def whoami(socket: Socket) -> str:
        return str(socket.data["name"])

    @io.event
    async def quiz(socket: Socket, question: str) -> dict[str, Any]:
        answer = await socket.emit_with_ack("ask", question, timeout=10)
        return {"question": question, "answer": answer}

    async def count_down(socket: Socket, start: int) -> None:
        for n in range(start, 0, -1):
            socket.emit("count", n)
            await asyncio.sleep(0.01)
        socket.emit("liftoff")

    @io.event
    def countdown(socket: Socket, start: int) -> str:
        start_background_task(count_down, socket, int(start))
        return "started"

    @io.event
    def bye(socket: Socket) -> None:
        socket.disconnect()

    @io.event
    def disconnect(socket: Socket, reason: str) -> None:
        io.emit("left", socket.data["name"])  # the socket has already left every room

    @io.on_any
    def any_event(socket: Socket, event: str, *args: Any) -> dict[str, str]:
        return {"unknown": event}

    return io


async def main() -> None:
    parser = argparse.ArgumentParser(description="porting example: tornad_io")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    io = make_server()
    app = tornado.web.Application(io.routes())
    sockets = tornado.netutil.bind_sockets(args.port, args.host)
    server = tornado.httpserver.HTTPServer(app, **io.http_server_options())
    server.add_sockets(sockets)
    host, port = sockets[0].getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await io.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
