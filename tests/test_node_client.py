"""The real socket.io-client 4.x (Node) against the server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tornad_io import ConnectionRefused, Server, Socket

from .apps import echo_server as shared_echo_server
from .conftest import WAIT

TRANSPORTS = {
    "polling-only": {"transports": ["polling"]},
    "websocket-only": {"transports": ["websocket"]},
    "upgrade": {},
}


def echo_server(**options: Any) -> tuple[Server, dict[str, Any]]:
    io, seen = shared_echo_server(**options)

    @io.on("shout")
    def shout(socket: Socket, *args: Any) -> None:
        socket.emit("shouted", *args)

    return io, seen


PAYLOADS = [
    "plain",
    "üñíçødé and astral 𝄞 😀",
    {"nested": {"list": [1, 2.5, None, True, "x"]}},
    b"\x00\x01\x02\xff",
    {"bin": [b"abc", {"deep": b"\xfe" * 3000}], "text": "with binary"},
]


@pytest.mark.parametrize("mode", TRANSPORTS)
async def test_echo_acks_and_binary(serve: Any, node: Any, mode: str) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    node.connect("a", server.url, **TRANSPORTS[mode])
    connected = await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    assert socket.id == connected["sid"]
    if mode == "upgrade":
        await node.expect("upgrade", "a", transport="websocket")
        assert socket.transport == "websocket"
    else:
        assert connected["transport"] == TRANSPORTS[mode]["transports"][0]
    for n, payload in enumerate(PAYLOADS):
        node.emit("a", "echo", payload, n, ack=True, tag=f"echo{n}")
        ack = await node.expect("ack", "a", tag=f"echo{n}")
        assert ack["args"] == [payload, n]
    # server → client, with binary anywhere in the arguments
    socket.emit("news", {"file": b"\x01\x02", "name": "x"}, [b"\x03"], "tail")
    event = await node.expect("event", "a", event="news")
    assert event["args"] == [{"file": b"\x01\x02", "name": "x"}, [b"\x03"], "tail"]


@pytest.mark.parametrize("mode", TRANSPORTS)
async def test_server_awaits_client_ack(serve: Any, node: Any, mode: str) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    node.connect("a", server.url, acks={"question": {"answer": 42, "blob": {"$bin": "AAE="}}}, **TRANSPORTS[mode])
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    answer = await socket.emit_with_ack("question", "life?", timeout=WAIT)
    assert answer == {"answer": 42, "blob": b"\x00\x01"}
    # the callback form, answered by the client's default echo ack
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    socket.timeout(WAIT).emit("other", 1, 2, callback=lambda err, *args: got.set_result((err, args)))
    err, args = await asyncio.wait_for(got, WAIT)
    assert err is None and args == ({"echo": [1, 2]},)


async def test_client_ack_timeout(serve: Any, node: Any) -> None:
    io, seen = echo_server()

    @io.on("slow")
    async def slow(socket: Socket) -> str:
        await asyncio.sleep(3600)
        return "never"

    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    node.emit("a", "slow", ack=True, timeout=200, tag="slow")
    ack = await node.expect("ack", "a", tag="slow")
    assert ack["error"] == "operation has timed out"


async def test_server_ack_timeout(serve: Any, node: Any) -> None:
    from tornad_io import AckTimeout

    io, seen = echo_server()
    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    node.pause()  # the client cannot answer
    try:
        with pytest.raises(AckTimeout):
            await socket.emit_with_ack("question", timeout=0.2)
    finally:
        node.resume()


async def test_rooms_and_broadcast_operators(serve: Any, node: Any) -> None:
    io, seen = echo_server()

    @io.on("join")
    def join(socket: Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms)

    @io.on("leave")
    def leave(socket: Socket, room: str) -> None:
        socket.leave(room)

    @io.on("to-room")
    def to_room(socket: Socket, room: str, text: str) -> None:
        socket.to(room).emit("room-msg", text)  # everyone in the room but the sender

    server = await serve(io.routes())
    for cid, mode in zip("abcd", ["polling-only", "websocket-only", "upgrade", "websocket-only"], strict=True):
        node.connect(cid, server.url, **TRANSPORTS[mode])
    sids = {cid: (await node.expect("connect", cid))["sid"] for cid in "abcd"}
    for cid, room in [("a", "red"), ("b", "red"), ("c", "red"), ("c", "blue"), ("d", "blue")]:
        node.emit(cid, "join", room, ack=True, tag=f"join-{room}")
        ack = await node.expect("ack", cid, tag=f"join-{room}")
        assert room in ack["args"][0] and sids[cid] in ack["args"][0]

    node.emit("a", "to-room", "red", "hello red")
    for cid in "bc":
        await node.expect("event", cid, event="room-msg", args=["hello red"])

    io.to("red").except_("blue").emit("filtered", 1)
    io.to(["red", "blue"]).emit("union", 2)  # c is in both rooms: delivered once
    io.to(sids["d"]).emit("direct", 3)
    io.emit("everyone", 4)
    for cid in "abcd":
        await node.expect("event", cid, event="everyone")
    assert sorted(r["id"] for r in node.reports if r.get("event") == "filtered") == ["a", "b"]
    assert sorted(r["id"] for r in node.reports if r.get("event") == "union") == ["a", "b", "c", "d"]
    assert [r["id"] for r in node.reports if r.get("event") == "direct"] == ["d"]
    assert "room-msg" not in [e["event"] for e in node.events("a", "room-msg")]

    node.emit("b", "leave", "red", ack=True, tag="left")
    await node.expect("ack", "b", tag="left")
    io.to("red").emit("after-leave", 5)
    io.emit("marker", 6)
    for cid in "abcd":
        await node.expect("event", cid, event="marker")
    assert sorted(r["id"] for r in node.reports if r.get("event") == "after-leave") == ["a", "c"]


async def test_broadcast_with_acks(serve: Any, node: Any) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    for cid, mode in zip("abc", ["polling-only", "websocket-only", "upgrade"], strict=True):
        node.connect(cid, server.url, acks={"poll": f"vote-{cid}"}, **TRANSPORTS[mode])
    sids = {cid: (await node.expect("connect", cid))["sid"] for cid in "abc"}
    responses = await io.timeout(WAIT).emit_with_ack("poll", "which?")
    assert sorted(responses) == ["vote-a", "vote-b", "vote-c"]
    assert responses.by_sid == {sids[c]: f"vote-{c}" for c in "abc"}

    # one client frozen: the others' answers arrive, and the error names who is missing
    from tornad_io import AckTimeout

    node.connect("d", server.url, transports=["websocket"])
    sid_d = (await node.expect("connect", "d"))["sid"]
    node.pause()
    try:
        with pytest.raises(AckTimeout) as info:
            await io.timeout(0.5).emit_with_ack("poll", "again?")
    finally:
        node.resume()
    # the node process was frozen, so nobody answered in time
    assert set(info.value.missing) == set(sids.values()) | {sid_d}


async def test_broadcast_ack_counts_only_answers_in_time(serve: Any, node: Any) -> None:
    from tornad_io import AckTimeout

    io, seen = echo_server()
    server = await serve(io.routes())
    node.connect("fast", server.url, acks={"poll": "fast"}, transports=["websocket"])
    fast = (await node.expect("connect", "fast"))["sid"]
    # A Python client that never answers "poll".
    import socketio

    quiet = socketio.AsyncClient(reconnection=False)

    @quiet.on("poll")
    async def never(*args: Any) -> Any:
        await asyncio.sleep(3600)

    await quiet.connect(server.url, transports=["websocket"])
    try:
        with pytest.raises(AckTimeout) as info:
            await io.timeout(0.5).emit_with_ack("poll")
        assert info.value.responses == {fast: "fast"}
        assert info.value.missing == [quiet.get_sid()]
    finally:
        await quiet.disconnect()


async def test_namespaces_auth_and_refusal(serve: Any, node: Any) -> None:
    io, seen = echo_server()
    admin = io.of("/admin")

    @admin.use
    def check_token(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "s3cret":
            raise ConnectionRefused("not authorized", {"hint": "send a token"})

    @admin.on("connect")
    def admin_connect(socket: Socket) -> None:
        socket.emit("welcome", socket.handshake.auth["token"], socket.nsp.name)

    server = await serve(io.routes())
    node.connect("ok", server.url + "/admin", auth={"token": "s3cret"})
    await node.expect("connect", "ok")
    welcome = await node.expect("event", "ok", event="welcome")
    assert welcome["args"] == ["s3cret", "/admin"]

    node.connect("bad", server.url + "/admin", auth={"token": "wrong"})
    error = await node.expect("connect_error", "bad")
    assert error["message"] == "not authorized" and error["data"] == {"hint": "send a token"}

    node.connect("lost", server.url + "/nowhere")
    error = await node.expect("connect_error", "lost")
    assert error["message"] == "Invalid namespace"


async def test_dynamic_namespaces(serve: Any, node: Any) -> None:
    import re

    io, seen = echo_server()
    tenants = io.of(re.compile(r"/tenant-\d+"))
    joined: asyncio.Queue[str] = asyncio.Queue()

    @tenants.on("connect")
    def on_connect(socket: Socket) -> None:
        joined.put_nowait(socket.nsp.name)
        socket.emit("hello", socket.nsp.name)

    by_function = io.of(lambda name, auth: name.startswith("/fn-") and auth.get("ok") is True)
    by_function.on("connect", lambda socket: socket.emit("hello", "fn"))

    server = await serve(io.routes())
    node.connect("t1", server.url + "/tenant-1")
    node.connect("t2", server.url + "/tenant-22")
    assert (await node.expect("event", "t1", event="hello"))["args"] == ["/tenant-1"]
    assert (await node.expect("event", "t2", event="hello"))["args"] == ["/tenant-22"]
    tenants.emit("all-tenants", "x")  # the parent broadcasts to every child
    await node.expect("event", "t1", event="all-tenants")
    await node.expect("event", "t2", event="all-tenants")
    node.connect("bad", server.url + "/tenant-x")
    assert (await node.expect("connect_error", "bad"))["message"] == "Invalid namespace"
    node.connect("f1", server.url + "/fn-a", auth={"ok": True})
    assert (await node.expect("event", "f1", event="hello"))["args"] == ["fn"]
    node.connect("f2", server.url + "/fn-b", auth={"ok": False})
    assert (await node.expect("connect_error", "f2"))["message"] == "Invalid namespace"


async def test_packet_middleware_and_catch_all(serve: Any, node: Any) -> None:
    io, seen = echo_server()
    incoming: list[Any] = []
    outgoing: list[Any] = []
    errors: asyncio.Queue[str] = asyncio.Queue()

    @io.on("connect")
    def connect(socket: Socket) -> None:
        seen["connected"].put_nowait(socket)

        @socket.use
        async def no_forbidden(packet: list[Any]) -> None:
            if packet[0] == "forbidden":
                raise PermissionError("forbidden event")

        socket.on("error", lambda error: errors.put_nowait(str(error)))
        socket.on_any(lambda event, *args: incoming.append((event, args)))
        socket.on_any_outgoing(lambda event, *args: outgoing.append((event, args)))

    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    node.emit("a", "forbidden", 1)
    assert await asyncio.wait_for(errors.get(), WAIT) == "forbidden event"
    node.emit("a", "shout", "hi")
    await node.expect("event", "a", event="shouted", args=["hi"])
    # as in the reference, catch-all listeners see each event as it arrives, before the middleware refuses it
    assert incoming == [("forbidden", (1,)), ("shout", ("hi",))]
    assert ("shouted", ("hi",)) in outgoing
    io.emit("broadcasted", 7)
    await node.expect("event", "a", event="broadcasted")
    assert ("broadcasted", (7,)) in outgoing
    assert socket.connected


async def test_disconnects_and_reasons(serve: Any, node: Any) -> None:
    io, seen = echo_server()
    server = await serve(io.routes())
    node.connect("a", server.url, transports=["websocket"])
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    node.send(cmd="disconnect", id="a")
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (
        socket.id,
        "client namespace disconnect",
    )

    node.connect("b", server.url)
    await node.expect("connect", "b")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    socket.disconnect()
    assert (await node.expect("disconnect", "b"))["reason"] == "io server disconnect"
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (
        socket.id,
        "server namespace disconnect",
    )


@pytest.mark.parametrize("mode", ["polling-only", "websocket-only"])
async def test_heartbeat_detects_a_vanished_client(serve: Any, node: Any, mode: str) -> None:
    io, seen = echo_server(ping_interval=0.2, ping_timeout=0.3)
    server = await serve(io.routes())
    node.connect("a", server.url, **TRANSPORTS[mode])
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    node.pause()  # the process stops: no pong, no close
    try:
        sid, reason = await asyncio.wait_for(seen["disconnected"].get(), WAIT)
    finally:
        node.resume()
    assert (sid, reason) == (socket.id, "ping timeout")
    assert not socket.connected


async def test_handler_error_does_not_break_the_connection(serve: Any, node: Any, caplog: Any) -> None:
    io, seen = echo_server()

    @io.on("boom")
    def boom(socket: Socket) -> None:
        raise RuntimeError("handler failed")

    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    node.emit("a", "boom")
    node.emit("a", "echo", "still here", ack=True, tag="after")
    assert (await node.expect("ack", "a", tag="after"))["args"] == ["still here"]
    assert any("handler failed" in r.getMessage() or "boom" in r.getMessage() for r in caplog.records)
