"""Connection state recovery with the real socket.io-client 4.x (in memory, one process).

The client's connection is dropped (by the server or by the client), events are
emitted while it is away, and it reconnects: same id, same rooms, ``recovered``,
and exactly the packets it missed, in order, once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tornad_io import Server, Socket
from tornad_io.engineio.clock import VirtualClock
from tornad_io.engineio.session import Close
from tornad_io.recovery import RecoveryStore

from .conftest import wait_until

RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 100}


def recovering_server(**settings: Any) -> tuple[Server, dict[str, Any]]:
    io = Server(connection_state_recovery=settings or True, ping_interval=60)
    seen: dict[str, Any] = {"sockets": {}, "connects": [], "middleware": 0}

    @io.use
    def count(socket: Socket) -> None:
        seen["middleware"] += 1

    @io.on("connect")
    def connect(socket: Socket) -> None:
        seen["connects"].append((socket.id, socket.recovered))
        seen["sockets"][socket.id] = socket
        if not socket.recovered:
            socket.join("news")
            socket.data["name"] = socket.handshake.auth.get("name")

    @io.on("shout")
    def shout(socket: Socket, text: str) -> None:
        socket.broadcast.emit("heard", text)

    return io, seen


def received(node: Any, client: str, event: str) -> list[Any]:
    return [r["args"][0] for r in node.events(client, event)]


@pytest.mark.parametrize(
    "transports,who",
    [
        (["websocket"], "server"),
        (["websocket"], "client"),
        (["polling"], "server"),
        (["polling"], "client"),
        (["polling", "websocket"], "server"),
        (["polling", "websocket"], "client"),
    ],
    ids=[
        "ws-server-drop",
        "ws-client-drop",
        "poll-server-drop",
        "poll-client-drop",
        "upgraded-server-drop",
        "upgraded-client-drop",
    ],
)
async def test_missed_packets_are_replayed_once_in_order(
    serve: Any, node: Any, transports: list[str], who: str
) -> None:
    io, seen = recovering_server()
    server = await serve(io.routes())
    opts: dict[str, Any] = {"transports": transports}
    node.connect("a", server.url, auth={"name": "ann"}, **RECONNECT, **opts)
    first = await node.expect("connect", "a")
    assert first["recovered"] is False
    node.connect("b", server.url, transports=["websocket"])
    await node.expect("connect", "b")
    await wait_until(lambda: first["sid"] in seen["sockets"])
    socket = seen["sockets"][first["sid"]]
    if len(transports) == 2:
        await node.expect("upgrade", "a")
    io.to("news").emit("news", 1)
    socket.emit("direct", 1)
    await node.wait_for(lambda r: r.get("event") == "direct" and r["id"] == "a")
    # the connection drops
    if who == "server":
        socket.client.session.abort("transport close", Close.DROP)
    else:
        node.send(cmd="drop", id="a")
    await node.expect("disconnect", "a")
    await wait_until(lambda: not socket.connected)
    # while it is away: broadcasts to its room and to all, an emit from another client, a volatile one
    io.to("news").emit("news", 2)
    io.emit("all", 1)
    io.to("elsewhere").emit("news", -1)  # not its room: not replayed
    io.volatile.emit("lossy", 1)  # volatile: not kept
    node.emit("b", "shout", "while away", ack=True, tag="shout")
    await node.expect("ack", "b", tag="shout")  # the server has broadcast it
    io.to("news").emit("news", 3)
    again = await node.wait_for(lambda r: r.get("type") == "connect" and r["id"] == "a" and r is not first)
    assert again["recovered"] is True and again["sid"] == first["sid"]
    await node.wait_for(lambda r: r.get("event") == "news" and r["id"] == "a" and r["args"][0] == 3)
    assert received(node, "a", "news") == [1, 2, 3]  # once each, in order
    assert received(node, "a", "all") == [1]
    assert received(node, "a", "heard") == ["while away"]
    assert received(node, "a", "lossy") == []
    assert received(node, "a", "direct") == [1]
    restored = seen["sockets"][first["sid"]]
    assert restored is not socket and restored.recovered
    assert restored.rooms == {first["sid"], "news"} and restored.data == {"name": "ann"}
    assert seen["middleware"] == 2  # a and b; the recovered connection skipped it
    # every replayed or live event carried an offset as its last argument (the reference's wire)
    offsets = [r["args"][-1] for r in node.events("a", "news")]
    assert all(isinstance(o, str) for o in offsets) and len(set(offsets)) == 3
    # after recovery the socket is a normal one: live traffic reaches it
    io.to("news").emit("news", 4)
    await node.wait_for(lambda r: r.get("event") == "news" and r["id"] == "a" and r["args"][0] == 4)


async def test_after_the_window_a_fresh_session(serve: Any, node: Any) -> None:
    io, seen = recovering_server(max_disconnection_duration=120)
    clock = VirtualClock()
    io.engine.clock = clock
    server = await serve(io.routes())
    node.connect("a", server.url, transports=["websocket"], **RECONNECT)
    first = await node.expect("connect", "a")
    await wait_until(lambda: first["sid"] in seen["sockets"])
    socket = seen["sockets"][first["sid"]]
    io.emit("tick", 1)
    await node.wait_for(lambda r: r.get("event") == "tick")
    socket.client.session.abort("transport close", Close.DROP)
    await node.expect("disconnect", "a")
    clock.advance(121)  # the client stays away longer than max_disconnection_duration
    io.emit("tick", 2)  # sweeps what expired
    again = await node.wait_for(lambda r: r.get("type") == "connect" and r is not first)
    assert again["recovered"] is False and again["sid"] != first["sid"]
    assert received(node, "a", "tick") == [1]
    assert seen["middleware"] == 2  # a fresh connection runs the middleware


async def test_middlewares_run_when_configured(serve: Any, node: Any) -> None:
    io, seen = recovering_server(skip_middlewares=False)
    server = await serve(io.routes())
    node.connect("a", server.url, transports=["websocket"], **RECONNECT)
    first = await node.expect("connect", "a")
    await wait_until(lambda: first["sid"] in seen["sockets"])
    io.emit("tick", 1)
    await node.wait_for(lambda r: r.get("event") == "tick")
    seen["sockets"][first["sid"]].client.session.abort("transport close", Close.DROP)
    again = await node.wait_for(lambda r: r.get("type") == "connect" and r is not first)
    assert again["recovered"] is True and seen["middleware"] == 2


async def test_acks_are_not_replayed_and_a_namespace_disconnect_is_final(serve: Any, node: Any) -> None:
    io, seen = recovering_server()
    server = await serve(io.routes())
    node.connect("a", server.url, transports=["websocket"], **RECONNECT)
    first = await node.expect("connect", "a")
    await wait_until(lambda: first["sid"] in seen["sockets"])
    socket = seen["sockets"][first["sid"]]
    io.emit("tick", 1)
    await node.wait_for(lambda r: r.get("event") == "tick")
    socket.client.session.abort("transport close", Close.DROP)
    await node.expect("disconnect", "a")
    io.timeout(0.2).emit("ask", 1, callback=lambda error, responses: None)  # with an ack: not kept
    io.emit("tick", 2)
    again = await node.wait_for(lambda r: r.get("type") == "connect" and r is not first)
    assert again["recovered"] is True
    await node.wait_for(lambda r: r.get("event") == "tick" and r["args"][0] == 2)
    assert received(node, "a", "ask") == []
    # a disconnect the application asked for is not recoverable
    seen["sockets"][first["sid"]].disconnect()
    await node.expect("disconnect", "a", reason="io server disconnect")
    assert io.sockets.adapter.store.sessions == 0  # type: ignore[attr-defined]


def test_store_bounds_and_filters() -> None:
    now = [0.0]
    store = RecoveryStore(max_duration=10, max_bytes=2_000, time=lambda: now[0])
    offsets = []
    for i, (rooms, excluded) in enumerate(
        [
            (frozenset(), frozenset()),
            (frozenset({"r"}), frozenset()),
            (frozenset({"x"}), frozenset()),
            (frozenset(), frozenset({"r"})),
        ]
    ):
        offset = store.next_offset()
        offsets.append(offset)
        store.keep(offset, [f'42["e",{i},"{offset}"]'], rooms, excluded)
    assert len(set(offsets)) == 4 and store.stored_bytes > 0
    store.persist("sid", "pid", ["sid", "r"], {"k": 1})
    restored = store.restore("pid", offsets[0])
    assert restored is not None
    assert restored.sid == "sid" and restored.rooms == ["sid", "r"] and restored.data == {"k": 1}
    assert restored.missed == [[f'42["e",1,"{offsets[1]}"]']]  # room r: yes; room x: no; except r: no
    assert store.restore("pid", offsets[0]) is None  # restored once
    store.persist("sid", "pid", ["sid"], {})
    assert store.restore("pid", "unknown-offset") is None  # an offset never stored: no recovery
    store.persist("sid", "pid", ["sid"], {})
    now[0] = 11  # past max_duration: the session and the packets are gone
    assert store.restore("pid", offsets[3]) is None and store.sessions == 0
    for _ in range(100):  # the byte cap: the oldest packets go first
        store.keep(store.next_offset(), ["x" * 100], frozenset(), frozenset())
    assert store.stored_bytes <= 2_000


async def test_cluster_example_in_memory_with_recovery(node: Any) -> None:
    """examples/cluster/server.py with no --redis runs one node in memory; --recovery turns recovery on."""
    import os
    import socket as pysocket
    import sys

    from .conftest import ROOT

    with pysocket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.join(ROOT, "examples", "cluster", "server.py"),
        "--port",
        str(port),
        "--recovery",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert b"ready" in await asyncio.wait_for(proc.stdout.readline(), 30)
        url = f"http://127.0.0.1:{port}"
        node.connect("a", url, transports=["websocket"], **RECONNECT)
        first = await node.expect("connect", "a")
        node.connect("b", url, transports=["websocket"])
        await node.expect("connect", "b")
        node.emit("b", "chat", "before")
        await node.wait_for(lambda r: r.get("event") == "chat" and r["id"] == "a")
        node.send(cmd="drop", id="a")
        await node.expect("disconnect", "a")
        node.emit("b", "chat", "while away")
        await node.wait_for(
            lambda r: r.get("event") == "chat" and r["id"] == "b" and r["args"][0]["text"] == "while away"
        )
        again = await node.wait_for(lambda r: r.get("type") == "connect" and r["id"] == "a" and r is not first)
        assert again["recovered"] is True and again["sid"] == first["sid"]
        await node.wait_for(
            lambda r: r.get("event") == "chat" and r["id"] == "a" and r["args"][0]["text"] == "while away"
        )
        assert [r["args"][0]["text"] for r in node.events("a", "chat")] == ["before", "while away"]
    finally:
        proc.terminate()
        await proc.wait()
