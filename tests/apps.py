"""Server apps the real-client tests share (not a test module)."""

from __future__ import annotations

import asyncio
from typing import Any

from tornad_io import Server, Socket


def echo_server(**options: Any) -> tuple[Server, dict[str, Any]]:
    """A server that reports connects and disconnects and answers ``echo`` and ``join``.

    ``seen["connected"]`` gets each connected socket, ``seen["disconnected"]`` each
    ``(socket id, reason)``; ``echo`` acknowledges with its arguments, ``join``
    enters a room and acknowledges with the socket's rooms, sorted.
    """
    io = Server(**options)
    seen: dict[str, Any] = {"connected": asyncio.Queue(), "disconnected": asyncio.Queue()}

    @io.on("connect")
    def connect(socket: Socket) -> None:
        seen["connected"].put_nowait(socket)

    @io.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        seen["disconnected"].put_nowait((socket.id, reason))

    @io.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @io.on("join")
    def join(socket: Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms)

    return io, seen
