"""Servers with ``parser="msgpack"`` and the real clients: socket.io-client 4.8 (Node) with
socket.io-msgpack-parser 3.0.2, and python-socketio's AsyncClient with ``serializer="msgpack"``."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import msgpack
import pytest
import socketio

from tornad_io import ConnectionRefused, Server, Socket
from tornad_io.engineio.session import Close
from tornad_io.socketio.codec import Packet
from tornad_io.socketio.msgpack_parser import MsgpackParser
from tornad_io.socketio.parsers import Decoder

from .apps import echo_server
from .conftest import WAIT, wait_until

TRANSPORTS = {
    "polling-only": {"transports": ["polling"]},
    "websocket-only": {"transports": ["websocket"]},
    "upgrade": {},
}
MSGPACK = {"parser": "msgpack"}
UTC = datetime.timezone.utc


class RecordingParser:
    """The msgpack parser, plugged in through the seam as any custom parser would be, keeping
    what it writes and reads so that the tests can look at the wire."""

    name = "recording-msgpack"

    def __init__(self) -> None:
        self.inner = MsgpackParser()
        self.sent: list[tuple[Packet, list[str | bytes]]] = []
        self.received: list[str | bytes] = []

    def encode(self, packet: Packet) -> list[str | bytes]:
        messages = self.inner.encode(packet)
        self.sent.append((packet, messages))
        return messages

    def decoder(self, max_attachments: int, max_attachment_bytes: int | None) -> Decoder:
        inner, received = self.inner.decoder(max_attachments, max_attachment_bytes), self.received

        class Recording:
            def add(self, message: str | bytes) -> Packet | None:
                received.append(message)
                return inner.add(message)

        return Recording()

    def wire(self) -> list[Any]:
        """Every message both ways, decoded as plain msgpack (each one is a whole packet)."""
        messages = [m for _, sent in self.sent for m in sent] + self.received
        assert all(isinstance(m, bytes) for m in messages), "a text message went over the wire"
        return [msgpack.unpackb(m, strict_map_key=False, ext_hook=lambda code, data: (code, data)) for m in messages]


def msgpack_server(**options: Any) -> tuple[Server, dict[str, Any]]:
    io, seen = echo_server(**options)

    @io.on("to-room")
    def to_room(socket: Socket, room: str, text: str) -> None:
        socket.to(room).emit("room-msg", text)

    admin = io.of("/admin")

    @admin.use
    def check_token(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "s3cret":
            raise ConnectionRefused("not authorized", {"hint": "send a token", "blob": b"\x00\x01"})

    @admin.on("connect")
    def admin_connect(socket: Socket) -> None:
        socket.emit("welcome", socket.handshake.auth["token"], socket.nsp.name)

    return io, seen


PAYLOADS = [
    "plain",
    "üñíçødé and astral 𝄞 😀",
    {"nested": {"list": [1, 2.5, None, True, "x", -7, 2**40]}},
    b"\x00\x01\x02\xff",
    {"bin": [b"abc", {"deep": b"\xfe" * 3000}], "text": "with binary"},
]


@pytest.mark.parametrize("mode", TRANSPORTS)
async def test_node_client_events_acks_binary_and_namespaces(serve: Any, node: Any, mode: str) -> None:
    parser = RecordingParser()
    io, seen = msgpack_server(parser=parser)
    server = await serve(io.routes())
    node.connect(
        "a", server.url, acks={"question": {"answer": 42, "blob": {"$bin": "AAE="}}}, **MSGPACK, **TRANSPORTS[mode]
    )
    connected = await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    assert socket.id == connected["sid"]
    if mode == "upgrade":
        await node.expect("upgrade", "a", transport="websocket")
        assert socket.transport == "websocket"
    else:
        assert connected["transport"] == TRANSPORTS[mode]["transports"][0]
    # client → server with an ack, binary anywhere
    for n, payload in enumerate(PAYLOADS):
        node.emit("a", "echo", payload, n, ack=True, tag=f"echo{n}")
        ack = await node.expect("ack", "a", tag=f"echo{n}")
        assert ack["args"] == [payload, n]
    # server → client, binary anywhere; and the server waits for the client's ack (binary in it)
    socket.emit("news", {"file": b"\x01\x02", "name": "x"}, [b"\x03"], "tail")
    event = await node.expect("event", "a", event="news")
    assert event["args"] == [{"file": b"\x01\x02", "name": "x"}, [b"\x03"], "tail"]
    assert await socket.emit_with_ack("question", "life?", timeout=WAIT) == {"answer": 42, "blob": b"\x00\x01"}
    # namespaces: accepted with auth, refused with data (binary included), unknown
    node.connect("ok", server.url + "/admin", auth={"token": "s3cret"}, **MSGPACK, **TRANSPORTS[mode])
    await node.expect("connect", "ok")
    welcome = await node.expect("event", "ok", event="welcome")
    assert welcome["args"] == ["s3cret", "/admin"]
    node.connect("bad", server.url + "/admin", auth={"token": "wrong"}, **MSGPACK, **TRANSPORTS[mode])
    error = await node.expect("connect_error", "bad")
    assert error["message"] == "not authorized"
    assert error["data"] == {"hint": "send a token", "blob": {"$bin": "AAE="}}
    node.connect("lost", server.url + "/nowhere", **MSGPACK, **TRANSPORTS[mode])
    error = await node.expect("connect_error", "lost")
    assert error["message"] == "Invalid namespace"
    # a namespace disconnect from the client, then from the server
    node.send(cmd="disconnect", id="ok")
    await wait_until(lambda: not io.of("/admin").sockets)
    socket.disconnect()
    await node.expect("disconnect", "a", reason="io server disconnect")

    # the wire: one binary message per packet, a map; binary values are msgpack bin, not placeholders
    wire = parser.wire()
    assert all(isinstance(packet, dict) and isinstance(packet["nsp"], str) for packet in wire)
    assert {packet["type"] for packet in wire} == {0, 1, 2, 3, 4}
    echoed = [p for p in wire if p["type"] == 2 and p["data"][0] == "echo" and p["data"][2] == 4]
    assert echoed and echoed[0]["data"][1]["bin"][1]["deep"] == b"\xfe" * 3000
    assert not any("_placeholder" in repr(p) for p in wire)
    assert all(
        p.get("options") == {"compress": True} for p in wire if p["type"] == 2 and "id" in p and p["data"][0] == "echo"
    )


async def test_node_client_broadcasts_to_rooms_volatile_and_dates(serve: Any, node: Any) -> None:
    parser = RecordingParser()
    io, seen = msgpack_server(parser=parser)
    server = await serve(io.routes())
    for cid, mode in zip("abcd", ["polling-only", "websocket-only", "upgrade", "websocket-only"], strict=True):
        node.connect(cid, server.url, **MSGPACK, **TRANSPORTS[mode])
    sids = {cid: (await node.expect("connect", cid))["sid"] for cid in "abcd"}
    await node.expect("upgrade", "c")
    for cid, room in [("a", "red"), ("b", "red"), ("c", "red"), ("c", "blue"), ("d", "blue")]:
        node.emit(cid, "join", room, ack=True, tag=f"join-{room}")
        ack = await node.expect("ack", cid, tag=f"join-{room}")
        assert room in ack["args"][0] and sids[cid] in ack["args"][0]

    node.emit("a", "to-room", "red", "hello red")
    for cid in "bc":
        await node.expect("event", cid, event="room-msg", args=["hello red"])
    before = len(parser.sent)
    io.to("red").except_("blue").emit("filtered", b"\x01")
    assert len(parser.sent) == before + 1  # three recipients, one encoding
    io.to(["red", "blue"]).emit("union", 2)
    io.to(sids["d"]).emit("direct", 3)
    when = datetime.datetime(2026, 11, 25, 12, 0, 0, 250000, tzinfo=UTC)
    io.emit("everyone", when)
    for cid in "abcd":
        event = await node.expect("event", cid, event="everyone")
        assert event["args"] == [{"$date": int(when.timestamp() * 1000)}]  # a JavaScript Date
    assert sorted(r["id"] for r in node.reports if r.get("event") == "filtered") == ["a", "b"]
    assert [r["args"] for r in node.reports if r.get("event") == "filtered"] == [[b"\x01"], [b"\x01"]]
    assert sorted(r["id"] for r in node.reports if r.get("event") == "union") == ["a", "b", "c", "d"]
    assert [r["id"] for r in node.reports if r.get("event") == "direct"] == ["d"]

    # volatile both ways: a connected WebSocket client takes a volatile broadcast, and the server
    # gets a client's volatile emit
    io.to("blue").volatile.emit("lossy", "maybe")
    for cid in "cd":
        await node.expect("event", cid, event="lossy", args=["maybe"])
    node.send(cmd="emit", id="d", event="echo", args=["volatile from d"], volatile=True)
    node.emit("d", "echo", "after", ack=True, tag="after")
    await node.expect("ack", "d", tag="after")
    assert any(p["type"] == 2 and p["data"] == ["echo", "volatile from d"] for p in parser.wire())

    # a Date from the client arrives as a datetime
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    io.sockets.sockets[sids["b"]].on("when", lambda value: got.set_result(value))
    node.emit("b", "when", {"$date": 1700000000123})
    assert await asyncio.wait_for(got, WAIT) == datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
async def test_python_socketio_msgpack_client(serve: Any, transports: list[str], caplog: Any) -> None:
    """python-socketio's AsyncClient speaks this format too (serializer="msgpack"); it sends a null
    CONNECT payload without auth and a null DISCONNECT payload, which the server reads as none."""
    caplog.set_level(logging.INFO, logger="tornad_io.socketio")
    io, seen = msgpack_server(parser="msgpack")

    @io.on("reverse-bytes")
    async def reverse(socket: Socket, data: bytes) -> tuple[bytes, str]:
        return data[::-1], "done"

    server = await serve(io.routes())
    client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
    got: asyncio.Queue[Any] = asyncio.Queue()
    client.on("pushed", lambda *args: got.put_nowait(args))

    @client.on("ask")
    async def ask(question: str) -> str:
        return question.upper()

    try:
        await client.connect(server.url, transports=transports)
        socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
        assert client.get_sid() == socket.id
        assert await client.call("echo", {"a": [1, "x"]}, timeout=WAIT) == {"a": [1, "x"]}
        assert await client.call("reverse-bytes", b"\x01\x02\x03", timeout=WAIT) == (b"\x03\x02\x01", "done")
        assert await socket.emit_with_ack("ask", "loud?", timeout=WAIT) == "LOUD?"
        socket.emit("pushed", {"a": [b"\x00"]}, "two")
        assert await asyncio.wait_for(got.get(), WAIT) == ({"a": [b"\x00"]}, "two")
        await client.disconnect()
        # the DISCONNECT (null payload) races the transport's close over WebSocket, as with JSON
        sid, reason = await asyncio.wait_for(seen["disconnected"].get(), WAIT)
        assert sid == socket.id and reason in ("client namespace disconnect", "transport close")

        with_auth = socketio.AsyncClient(reconnection=False, serializer="msgpack")
        with_auth.on("welcome", lambda *args: got.put_nowait(args), namespace="/admin")
        await with_auth.connect(server.url, namespaces=["/admin"], auth={"token": "s3cret"}, transports=transports)
        assert await asyncio.wait_for(got.get(), WAIT) == ("s3cret", "/admin")
        await with_auth.disconnect()
        refused = socketio.AsyncClient(reconnection=False, serializer="msgpack")
        refused.on("connect_error", lambda data: got.put_nowait(data), namespace="/admin")
        with pytest.raises(socketio.exceptions.ConnectionError, match="/admin"):
            await refused.connect(server.url, namespaces=["/admin"], auth={"token": "no"}, transports=transports)
        error = await asyncio.wait_for(got.get(), WAIT)
        assert error == {"message": "not authorized", "data": {"hint": "send a token", "blob": b"\x00\x01"}}
    finally:
        if client.connected:
            await client.disconnect()
    assert not [r for r in caplog.records if "invalid packet" in r.getMessage()]


async def test_a_client_with_the_other_parser_is_turned_away(serve: Any, node: Any, caplog: Any) -> None:
    """A JSON client's text packets are a protocol error for a msgpack server: the session closes
    ("parse error"), no socket connects, and the server goes on."""
    io, seen = msgpack_server(parser="msgpack")
    server = await serve(io.routes())
    with caplog.at_level(logging.INFO, logger="tornad_io.socketio"):
        node.connect("json", server.url, transports=["websocket"])
        await node.wait_for(lambda r: r.get("id") == "json" and r["type"] in ("connect_error", "disconnect"))
        await wait_until(lambda: not io.engine.sessions)
    assert not io.sockets.sockets
    assert any("msgpack packets are binary" in record.getMessage() for record in caplog.records)
    node.connect("ok", server.url, transports=["websocket"], **MSGPACK)
    await node.expect("connect", "ok")


RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 100}


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_recovery_replays_msgpack_packets_with_offsets(serve: Any, node: Any, transports: list[str]) -> None:
    io = Server(parser="msgpack", connection_state_recovery=True, ping_interval=60)
    sockets: dict[str, Socket] = {}

    @io.on("connect")
    def connect(socket: Socket) -> None:
        sockets[socket.id] = socket
        if not socket.recovered:
            socket.join("news")

    server = await serve(io.routes())
    node.connect("a", server.url, transports=transports, **RECONNECT, **MSGPACK)
    first = await node.expect("connect", "a")
    await wait_until(lambda: first["sid"] in sockets)
    socket = sockets[first["sid"]]
    io.to("news").emit("news", 1, b"\x01")
    await node.wait_for(lambda r: r.get("event") == "news" and r["id"] == "a")
    socket.client.session.abort("transport close", Close.DROP)
    await node.expect("disconnect", "a")
    await wait_until(lambda: not socket.connected)
    io.to("news").emit("news", 2, b"\x02")  # nobody is connected: stored in the server's format
    io.emit("all", {"when": datetime.datetime(2026, 1, 1, tzinfo=UTC)})
    again = await node.wait_for(lambda r: r.get("type") == "connect" and r["id"] == "a" and r is not first)
    assert again["recovered"] is True and again["sid"] == first["sid"]
    await node.wait_for(lambda r: r.get("event") == "all" and r["id"] == "a")
    news = [r["args"] for r in node.events("a", "news")]
    assert [args[:2] for args in news] == [[1, b"\x01"], [2, b"\x02"]]
    offsets = [args[-1] for args in news] + [r["args"][-1] for r in node.events("a", "all")]
    assert all(isinstance(o, str) for o in offsets) and len(set(offsets)) == 3
    assert node.events("a", "all")[0]["args"][0] == {"when": {"$date": 1767225600000}}


async def test_conformance_server_with_the_msgpack_parser(node: Any) -> None:
    """examples/conformance_server.py --parser msgpack serves msgpack clients (Node and Python)."""
    import os
    import socket as pysocket
    import sys

    from .conftest import ROOT

    with pysocket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = os.path.join(ROOT, "examples", "conformance_server.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, script, "--port", str(port), "--parser", "msgpack", cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert b"(msgpack parser)" in await asyncio.wait_for(proc.stdout.readline(), 30)
        url = f"http://127.0.0.1:{port}"
        node.connect("js", url + "/custom", auth={"token": "t"}, **MSGPACK)
        await node.expect("connect", "js")
        assert (await node.expect("event", "js", event="auth"))["args"] == [{"token": "t"}]
        node.connect("main", url, **MSGPACK)
        await node.expect("connect", "main")
        node.emit("main", "message", 1, "two", {"3": [True]}, {"$bin": "AQ=="})
        back = await node.expect("event", "main", event="message-back")
        assert back["args"] == [1, "two", {"3": [True]}, b"\x01"]
        node.emit("main", "message-with-ack", "a", 2, ack=True, tag="ack")
        assert (await node.expect("ack", "main", tag="ack"))["args"] == ["a", 2]
        py = socketio.AsyncClient(reconnection=False, serializer="msgpack")
        await py.connect(url)
        try:
            assert await py.call("message-with-ack", ("y", b"\x02"), timeout=WAIT) == ("y", b"\x02")
        finally:
            await py.disconnect()
    finally:
        proc.terminate()
        await proc.wait()
