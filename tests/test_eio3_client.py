"""The real socket.io-client 2.5 (Engine.IO v3) under Node against the server, beside 4.x clients.

Driven by tests/js/remote_client_v2.mjs (the 2.x client from package.json's ``socket.io-client-v2``).
Under Node the 2.x client has no XHR2, so its polling asks for base64 (``b64=1``) and its WebSocket
sends binary frames; the binary polling payloads of a browser are in test_eio3_browser.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from examples.echo import make_app as echo_app
from tornad_io import ConnectionRefused, Server, Socket
from tornad_io.engineio.clock import VirtualClock
from tornad_io.socketio import client as v5_client
from tornad_io.socketio import eio3_client

from .apps import echo_server as shared_echo_server
from .conftest import WAIT, start_driver, wait_until

TRANSPORTS: dict[str, dict[str, Any]] = {
    "polling-only": {"transports": ["polling"]},
    "websocket-only": {"transports": ["websocket"]},
    "upgrade": {},
}


@pytest.fixture
async def v2() -> Any:
    """A Node process running socket.io-client 2.5, driven from the test."""
    clients = await start_driver("remote_client_v2.mjs")
    yield clients
    await clients.close()


def echo_server(**options: Any) -> tuple[Server, dict[str, Any]]:
    io, seen = shared_echo_server(allow_eio3=True, **options)

    @io.on("to-room")
    def to_room(socket: Socket, room: str, *args: Any) -> None:
        socket.to(room).emit("room-msg", *args)  # everyone in the room but the sender

    return io, seen


PAYLOADS = [
    "plain",
    "üñíçødé and astral 𝄞 😀",
    {"nested": {"list": [1, 2.5, None, True, "x"]}},
    b"\x00\x01\x02\xff",
    {"bin": [b"abc", {"deep": b"\xfe" * 3000}], "text": "with binary"},
]


@pytest.mark.parametrize("mode", TRANSPORTS)
async def test_events_acks_and_binary_both_ways(serve: Any, v2: Any, mode: str) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    v2.connect("a", server.url, **TRANSPORTS[mode])
    connected = await v2.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    assert socket.client.session.sid == connected["engine"]
    # the 2.x client derives its socket.id from the session id; the server keeps that id private
    assert connected["sid"] == connected["engine"] != socket.id
    if mode == "upgrade":
        await v2.expect("upgrade", "a", transport="websocket")
        assert socket.transport == "websocket"
    else:
        assert connected["transport"] == TRANSPORTS[mode]["transports"][0] == socket.transport
    # client → server, with an acknowledgement carrying the arguments back
    for n, payload in enumerate(PAYLOADS):
        v2.emit("a", "echo", payload, n, ack=True, tag=f"echo{n}")
        ack = await v2.expect("ack", "a", tag=f"echo{n}")
        assert ack["args"] == [payload, n]
    # server → client, binary anywhere in the arguments
    socket.emit("news", {"file": b"\x01\x02", "name": "x"}, [b"\x03"], "tail")
    event = await v2.expect("event", "a", event="news")
    assert event["args"] == [{"file": b"\x01\x02", "name": "x"}, [b"\x03"], "tail"]
    # server → client with an acknowledgement, answered by the client (binary in the answer too)
    answer = await socket.emit_with_ack("question", "life?", timeout=WAIT)
    assert answer == {"echo": ["life?"]}
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    socket.timeout(WAIT).emit("blob", b"\x09", callback=lambda err, *args: got.set_result((err, args)))
    err, args = await asyncio.wait_for(got, WAIT)
    assert err is None and args == ({"echo": [b"\x09"]},)


async def test_namespaces_with_query_and_refusals(serve: Any, v2: Any) -> None:
    io, seen = echo_server()
    admins: asyncio.Queue[Socket] = asyncio.Queue()
    admin = io.of("/admin")

    @admin.use
    def check(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "secret":
            raise ConnectionRefused("Not authorized")

    @admin.on("connect")
    def on_admin(socket: Socket) -> None:
        admins.put_nowait(socket)

    @admin.on("whoami")
    def whoami(socket: Socket) -> dict[str, Any]:
        return {"nsp": socket.nsp.name, "auth": socket.handshake.auth}

    @io.of("/data").use
    def refuse_with_data(socket: Socket) -> None:
        raise ConnectionRefused("closed", data={"reason": "maintenance", "retry": 60})

    server = await serve(io.routes())
    # the query option of a namespace travels in its CONNECT packet (/admin?token=secret) and becomes
    # handshake.auth; 2.x also puts it in the Engine.IO handshake's query
    v2.connect("ok", f"{server.url}/admin", query={"token": "secret"})
    await v2.expect("connect", "ok")
    socket = await asyncio.wait_for(admins.get(), WAIT)
    assert socket.handshake.auth == {"token": "secret"} and socket.handshake.query["token"] == "secret"
    v2.emit("ok", "whoami", ack=True, tag="who")
    ack = await v2.expect("ack", "ok", tag="who")
    assert ack["args"] == [{"nsp": "/admin", "auth": {"token": "secret"}}]
    socket.emit("admin-news", b"\x01")
    assert (await v2.expect("event", "ok", event="admin-news"))["args"] == [b"\x01"]
    # refused by the middleware: an ERROR packet, the message as a string
    v2.connect("bad", f"{server.url}/admin", query={"token": "wrong"})
    assert (await v2.expect("error", "bad"))["data"] == "Not authorized"
    # refused with data: the data itself
    v2.connect("data", f"{server.url}/data")
    assert (await v2.expect("error", "data"))["data"] == {"reason": "maintenance", "retry": 60}
    # a namespace nobody serves
    v2.connect("none", f"{server.url}/nowhere")
    assert (await v2.expect("error", "none"))["data"] == "Invalid namespace"
    assert not [r for r in v2.reports if r.get("type") == "connect" and r["id"] != "ok"]


async def test_rooms_and_broadcasts_reach_2x_and_4x_clients(
    serve: Any, v2: Any, node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    v2.connect("a", server.url, **TRANSPORTS["polling-only"])
    v2.connect("b", server.url, **TRANSPORTS["websocket-only"])
    node.connect("c", server.url, **TRANSPORTS["upgrade"])
    node.connect("d", server.url, **TRANSPORTS["websocket-only"])
    clients = {"a": v2, "b": v2, "c": node, "d": node}
    for cid, peer in clients.items():
        await peer.expect("connect", cid)
    for cid, room in [("a", "red"), ("b", "red"), ("c", "red"), ("d", "blue"), ("b", "blue")]:
        clients[cid].emit(cid, "join", room, ack=True, tag=f"join-{room}")
        assert room in (await clients[cid].expect("ack", cid, tag=f"join-{room}"))["args"][0]

    # a client of one generation reaches the others in its room (itself excluded)
    v2.emit("a", "to-room", "red", "from 2.x", b"\x07")
    for cid in "bc":
        event = await clients[cid].expect("event", cid, event="room-msg")
        assert event["args"] == ["from 2.x", b"\x07"]
    node.emit("d", "to-room", "blue", "from 4.x")
    await v2.expect("event", "b", event="room-msg", args=["from 4.x"])

    # a broadcast is encoded once per generation present among its recipients
    calls: list[str] = []

    def counting(generation: str, encode: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            calls.append(generation)
            return encode(*args)

        return staticmethod(wrapper)

    monkeypatch.setattr(eio3_client.Eio3Client, "encode", counting("eio3", eio3_client.encode_v4))
    monkeypatch.setattr(v5_client.Client, "encode", counting("v5", v5_client.encode_v5))
    io.to("red").emit("alert", {"level": 3}, b"\x00\xff")
    monkeypatch.undo()
    assert sorted(calls) == ["eio3", "v5"]
    for cid in "abc":
        event = await clients[cid].expect("event", cid, event="alert")
        assert event["args"] == [{"level": 3}, b"\x00\xff"]

    # everyone, and everyone but a room
    io.emit("all", 1)
    io.except_("blue").emit("not-blue", 2)
    for cid in "abcd":
        assert (await clients[cid].expect("event", cid, event="all"))["args"] == [1]
    await clients["c"].expect("event", "c", event="not-blue")
    await clients["a"].expect("event", "a", event="not-blue")
    await clients["b"].expect("event", "b", event="all")
    assert not clients["b"].events("b", "not-blue") and not node.events("d", "not-blue")

    # a broadcast with acknowledgements gathers the answers of both generations
    responses = await io.to("red").timeout(WAIT).emit_with_ack("poll", "q")
    assert sorted(map(repr, responses)) == sorted(repr({"echo": ["q"]}) for _ in range(3))


@pytest.mark.parametrize("mode", ["polling-only", "websocket-only"])
async def test_disconnects_both_ways(serve: Any, v2: Any, mode: str) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    opts = TRANSPORTS[mode]

    # the client disconnects
    v2.connect("a", server.url, **opts)
    await v2.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    v2.send(cmd="disconnect", id="a")
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (socket.id, "client namespace disconnect")

    # the server disconnects the socket
    v2.connect("b", server.url, **opts)
    await v2.expect("connect", "b")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    socket.disconnect()
    assert (await v2.expect("disconnect", "b"))["reason"] == "io server disconnect"
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (socket.id, "server namespace disconnect")

    # the server closes the whole connection
    v2.connect("c", server.url, **opts)
    await v2.expect("connect", "c")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    socket.disconnect(close=True)
    assert (await v2.expect("disconnect", "c"))["reason"] == "io server disconnect"
    await asyncio.wait_for(seen["disconnected"].get(), WAIT)

    # the client's connection goes away underneath
    v2.connect("d", server.url, **opts)
    await v2.expect("connect", "d")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    v2.send(cmd="drop", id="d")
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (socket.id, "transport close")


@pytest.mark.parametrize("mode", ["polling-only", "websocket-only"])
async def test_heartbeat_timeout_of_a_client_that_stops_pinging(serve: Any, v2: Any, mode: str) -> None:
    """The client pings every pingInterval (real time); the server's deadline runs on a VirtualClock."""
    io, seen = echo_server(ping_interval=0.2, ping_timeout=5)
    clock = VirtualClock()
    io.engine.clock = clock
    server = await serve(io.routes())
    v2.connect("a", server.url, **TRANSPORTS[mode])
    await v2.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    pongs = 0
    for _ in range(2):
        # each PING the server answers resets its deadline: 2 × 5 virtual seconds pass, more than the
        # 5.2 s the session would live without them
        pongs += 1
        await v2.wait_for(lambda r, n=pongs: r.get("type") == "pong" and len(v2_pongs(v2)) >= n)
        clock.advance(5.0)
        assert seen["disconnected"].empty()
    v2.emit("a", "echo", "still here", ack=True, tag="alive")
    assert (await v2.expect("ack", "a", tag="alive"))["args"] == ["still here"]
    v2.send(cmd="stop_pinging", id="a")
    await v2.expect("stopped", "a")
    # over polling, once the client's next poll waits (so that the close can ride on it)
    await wait_until(lambda: getattr(socket.client.session.transport, "polling", True))
    clock.advance(5.3)  # past the last possible PING's deadline
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (socket.id, "ping timeout")
    assert (await v2.expect("disconnect", "a"))["reason"] == "transport close"


def v2_pongs(v2: Any) -> list[dict[str, Any]]:
    return [r for r in v2.reports if r.get("type") == "pong"]


async def test_2x_clients_are_refused_unless_allowed(serve: Any, v2: Any) -> None:
    server = await serve(Server().routes())
    v2.connect("a", server.url, **TRANSPORTS["polling-only"])
    await v2.expect("connect_error", "a")
    v2.connect("b", server.url, **TRANSPORTS["websocket-only"])
    await v2.expect("connect_error", "b")


async def test_echo_example_serves_2x_clients_at_its_route(serve: Any, v2: Any) -> None:
    """examples/echo.py (the original API) answers socket.io-client 2.x at the route 4.x clients use."""
    server = await serve(echo_app())
    for cid, mode in [("p", "polling-only"), ("w", "websocket-only")]:
        v2.connect(cid, server.url, path="/echoTest/123abc", **TRANSPORTS[mode])
        await v2.expect("connect", cid)
        v2.emit(cid, "message", "OMG! Ponies!")
        assert (await v2.expect("event", cid, event="message"))["args"] == ["[echo] OMG! Ponies!"]
        v2.emit(cid, "message", {"n": [1, 2]})
        event = await v2.wait_for(lambda r, c=cid: r.get("id") == c and r.get("args") == ['[echo] {"n":[1,2]}'])
        assert event["event"] == "message"


async def test_conformance_server_serves_2x_clients(serve: Any, v2: Any) -> None:
    from examples.conformance_server import make_app

    server = await serve(make_app(allow_eio3=True))
    v2.connect("a", f"{server.url}/custom", query={"token": "123"})
    await v2.expect("connect", "a")
    assert (await v2.expect("event", "a", event="auth"))["args"] == [{"token": "123"}]
    v2.connect("b", server.url)
    await v2.expect("connect", "b")
    v2.emit("b", "message", "x", b"\x01")
    assert (await v2.expect("event", "b", event="message-back"))["args"] == ["x", b"\x01"]
    v2.emit("b", "message-with-ack", 1, "2", b"\x03", ack=True, tag="m")
    assert (await v2.expect("ack", "b", tag="m"))["args"] == [1, "2", b"\x03"]
