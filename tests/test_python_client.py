"""The real python-socketio AsyncClient against the server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from tornad_io import ConnectionRefused, Namespace, Server, Socket

from .conftest import WAIT


@pytest.fixture
async def clients() -> Any:
    made: list[socketio.AsyncClient] = []

    def make() -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        made.append(client)
        return client

    yield make
    for client in made:
        if client.connected:
            await client.disconnect()


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
async def test_events_acks_binary(serve: Any, clients: Any, transports: list[str]) -> None:
    io = Server()
    connected: asyncio.Queue[Socket] = asyncio.Queue()

    @io.event
    def connect(socket: Socket) -> None:
        connected.put_nowait(socket)

    @io.on("sum")
    def total(socket: Socket, numbers: list[int]) -> int:
        return sum(numbers)

    @io.on("reverse-bytes")
    async def reverse(socket: Socket, data: bytes) -> tuple[bytes, str]:
        return data[::-1], "done"

    server = await serve(io.routes())
    client = clients()
    got: asyncio.Queue[Any] = asyncio.Queue()
    client.on("pushed", lambda *args: got.put_nowait(args))

    @client.on("ask")
    async def ask(question: str) -> str:
        return question.upper()

    await client.connect(server.url, transports=transports)
    socket = await asyncio.wait_for(connected.get(), WAIT)
    assert client.get_sid() == socket.id
    assert await client.call("sum", [1, 2, 3], timeout=WAIT) == 6
    assert await client.call("reverse-bytes", b"\x01\x02\x03", timeout=WAIT) == (b"\x03\x02\x01", "done")
    assert await socket.emit_with_ack("ask", "loud?", timeout=WAIT) == "LOUD?"
    socket.emit("pushed", {"a": [b"\x00"]}, "two")
    assert await asyncio.wait_for(got.get(), WAIT) == ({"a": [b"\x00"]}, "two")


async def test_class_based_namespace_auth_and_handshake(serve: Any, clients: Any) -> None:
    events: asyncio.Queue[Any] = asyncio.Queue()

    class Chat(Namespace):
        def on_connect(self, socket: Socket) -> None:
            if socket.handshake.auth.get("user") is None:
                raise RuntimeError("too late to refuse here")  # logged, not sent
            socket.data["user"] = socket.handshake.auth["user"]
            socket.join("lobby")
            events.put_nowait(("connect", socket.handshake.address, socket.handshake.query.get("room")))

        async def on_say(self, socket: Socket, text: str) -> str:
            self.to("lobby").emit("said", socket.data["user"], text)
            return "sent"

        def on_disconnect(self, socket: Socket, reason: str) -> None:
            events.put_nowait(("disconnect", reason))

    io = Server()
    chat = io.register_namespace(Chat("/chat"))

    @chat.use
    def need_user(socket: Socket) -> None:
        if "user" not in socket.handshake.auth:
            raise ConnectionRefused("who are you?")

    server = await serve(io.routes())
    anna = clients()
    heard: asyncio.Queue[Any] = asyncio.Queue()
    anna.on("said", lambda *args: heard.put_nowait(args), namespace="/chat")
    await anna.connect(server.url + "?room=blue", namespaces=["/chat"], auth={"user": "anna"})
    kind, address, room = await asyncio.wait_for(events.get(), WAIT)
    assert (kind, address, room) == ("connect", "127.0.0.1", "blue")
    assert await anna.call("say", "hello", namespace="/chat", timeout=WAIT) == "sent"
    assert await asyncio.wait_for(heard.get(), WAIT) == ("anna", "hello")

    nobody = clients()
    refusals: list[Any] = []
    nobody.on("connect_error", refusals.append, namespace="/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await nobody.connect(server.url, namespaces=["/chat"], wait_timeout=WAIT)
    assert refusals == [{"message": "who are you?"}]

    await anna.disconnect()
    # python-socketio closes its engine without flushing the DISCONNECT packet it queued
    kind, reason = await asyncio.wait_for(events.get(), WAIT)
    assert kind == "disconnect" and reason in ("client namespace disconnect", "transport close")


async def test_python_and_node_clients_share_rooms(serve: Any, clients: Any, node: Any) -> None:
    io = Server()

    @io.on("join")
    def join(socket: Socket, room: str) -> str:
        socket.join(room)
        return room

    @io.on("say")
    def say(socket: Socket, room: str, text: str) -> None:
        io.to(room).emit("said", text)

    server = await serve(io.routes())
    py = clients()
    heard: asyncio.Queue[Any] = asyncio.Queue()
    py.on("said", lambda text: heard.put_nowait(text))
    await py.connect(server.url)
    assert await py.call("join", "r", timeout=WAIT) == "r"
    node.connect("js", server.url)
    await node.expect("connect", "js")
    node.emit("js", "join", "r", ack=True, tag="joined")
    await node.expect("ack", "js", tag="joined")
    node.emit("js", "say", "r", "from node")
    assert await asyncio.wait_for(heard.get(), WAIT) == "from node"
    await node.expect("event", "js", event="said", args=["from node"])
