"""tornad_io.admin.instrument() speaks @socket.io/admin-ui 0.5's protocol: the real socket.io-client 4.x (Node)
connects to /admin as the UI does, and more clients to the instrumented namespaces."""

from __future__ import annotations

import os
import socket as pysocket
from typing import Any

import bcrypt
import pytest

from tornad_io import Server, Socket
from tornad_io.admin import InMemoryStore, instrument
from tornad_io.engineio.clock import VirtualClock

PASSWORD = "s3cret ☀"
HASHED = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()  # cheap rounds: a test
BASIC = {"type": "basic", "username": "admin", "password": HASHED}
ALL_FEATURES = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
]
LOGIN = {"username": "admin", "password": PASSWORD}


def app_server() -> tuple[Server, dict[str, Any]]:
    """An application: a middleware that stores who the user is, a join/leave/set handler, an echo."""
    io = Server()
    seen: dict[str, Any] = {"sockets": {}}

    @io.use
    def who(socket: Socket) -> None:
        socket.data["user"] = socket.handshake.auth.get("user", "anonymous")

    @io.on("connect")
    def connect(socket: Socket) -> None:
        seen["sockets"][socket.handshake.auth.get("user")] = socket

    @io.on("join")
    def join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @io.on("leave")
    def leave(socket: Socket, room: str) -> bool:
        socket.leave(room)
        return True

    @io.on("set")
    def set_data(socket: Socket, key: str, value: Any) -> bool:
        socket.data[key] = value
        return True

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        socket.emit("echoed", *args)
        return args

    @io.of("/admin").on("probe")
    def probe(socket: Socket) -> str:
        # The UI's connection handles packets in order: once this answers, what it sent before was handled.
        return "done"

    return io, seen


def admin_events(node: Any, event: str, id: str = "admin") -> list[list[Any]]:
    return [r["args"] for r in node.events(id, event)]


async def probe(node: Any, tag: str, id: str = "admin") -> None:
    node.emit(id, "probe", ack=True, tag=tag)
    assert (await node.expect("ack", id, tag=tag))["args"] == ["done"]


async def test_basic_auth_sessions_and_failures(serve: Any, node: Any) -> None:
    io, _ = app_server()
    store = InMemoryStore()
    instrument(io, auth=BASIC, store=store)
    server = await serve(io.routes())
    # wrong password, wrong user, nothing at all, an unknown session id: refused with the reference's message
    for n, auth in enumerate(
        [{"username": "admin", "password": "nope"}, {"username": "root", "password": PASSWORD}, {}, {"sessionId": "x"}]
    ):
        node.connect(f"bad{n}", server.url + "/admin", auth=auth)
        assert (await node.expect("connect_error", f"bad{n}"))["message"] == "invalid credentials"
    # the right credentials: connected, and given a session id (16 hex digits) for the next time
    node.connect("admin", server.url + "/admin", auth=LOGIN)
    await node.expect("connect", "admin")
    session = await node.expect("event", "admin", event="session")
    (session_id,) = session["args"]
    assert len(session_id) == 16 and int(session_id, 16) >= 0
    assert session_id in store.sessions
    config = await node.expect("event", "admin", event="config")
    assert config["args"] == [{"supportedFeatures": ALL_FEATURES}]
    # a UI that comes back presents its session id instead of the password
    node.connect("again", server.url + "/admin", auth={"sessionId": session_id})
    await node.expect("connect", "again")
    await node.expect("event", "again", event="config")
    assert not node.events("again", "session")  # no new session for a session login


def test_auth_option_is_checked() -> None:
    io = Server()
    with pytest.raises(ValueError, match="must be given"):
        instrument(io, auth=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bcrypt hash"):
        instrument(io, auth={"type": "basic", "username": "admin", "password": "plain text"})
    with pytest.raises(ValueError, match="invalid auth option"):
        instrument(io, auth={"type": "digest", "username": "admin", "password": HASHED})
    with pytest.raises(ValueError, match="mode"):
        instrument(io, auth=False, mode="staging")  # type: ignore[arg-type]


async def test_all_sockets_and_live_socket_events(serve: Any, node: Any) -> None:
    io, seen = app_server()
    instrument(io, auth=False)
    server = await serve(io.routes())
    node.connect("ann", server.url, auth={"user": "ann"}, transports=["websocket"], query={"lang": "fr"})
    node.connect("bob", server.url, auth={"user": "bob"}, transports=["polling"])
    ann = (await node.expect("connect", "ann"))["sid"]
    bob = (await node.expect("connect", "bob"))["sid"]
    node.emit("ann", "join", "lobby", ack=True, tag="j")
    await node.expect("ack", "ann", tag="j")

    node.connect("admin", server.url + "/admin")
    await node.expect("connect", "admin")
    assert not node.events("admin", "session")  # no login, no session
    listed = (await node.expect("event", "admin", event="all_sockets"))["args"][0]
    by_id = {s["id"]: s for s in listed}
    assert set(by_id) >= {ann, bob}
    first = by_id[ann]
    assert first["nsp"] == "/" and first["transport"] == "websocket" and by_id[bob]["transport"] == "polling"
    assert first["data"] == {"user": "ann"}  # what the middleware stored, without the instrumentation's own entry
    assert sorted(first["rooms"]) == sorted([ann, "lobby"])
    engine_sid = seen["sockets"]["ann"].conn.sid
    assert first["clientId"] == engine_sid[:12]
    handshake = first["handshake"]
    assert set(handshake) == {"address", "headers", "query", "issued", "secure", "time", "url", "xdomain"}
    assert handshake["address"] == "127.0.0.1" and handshake["secure"] is False
    assert handshake["query"]["lang"] == "fr" and handshake["query"]["EIO"] == "4"
    assert handshake["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert "auth" not in handshake
    # the admin socket itself is listed too, in its namespace
    assert any(s["nsp"] == "/admin" for s in listed)

    # live: a connection, a data change, rooms joined and left, events both ways, a disconnection
    node.connect("cid", server.url, auth={"user": "cid"}, transports=["websocket"])
    cid = (await node.expect("connect", "cid"))["sid"]
    connected = await node.wait_for(
        lambda r: r.get("event") == "socket_connected" and r["args"][0]["id"] == cid and r["id"] == "admin"
    )
    socket, when = connected["args"]
    assert socket["nsp"] == "/" and socket["data"] == {"user": "cid"} and socket["transport"] == "websocket"
    assert when.endswith("Z") and "T" in when  # a JavaScript Date in JSON
    node.emit("cid", "set", "mood", {"level": 3}, ack=True, tag="s")
    await node.expect("ack", "cid", tag="s")
    updated = await node.wait_for(lambda r: r.get("event") == "socket_updated" and r["args"][0]["id"] == cid)
    assert updated["args"] == [{"id": cid, "nsp": "/", "data": {"user": "cid", "mood": {"level": 3}}}]
    node.emit("cid", "join", "lobby", ack=True, tag="j2")
    joined = await node.wait_for(lambda r: r.get("event") == "room_joined" and r["args"][1:3] == ["lobby", cid])
    assert joined["args"][0] == "/"
    node.emit("cid", "leave", "lobby", ack=True, tag="l2")
    left = await node.wait_for(lambda r: r.get("event") == "room_left" and r["args"][1:3] == ["lobby", cid])
    assert left["args"][0] == "/"
    node.emit("cid", "echo", "hi", 2, ack=True, tag="e")
    await node.expect("ack", "cid", tag="e")
    node.send(cmd="disconnect", id="cid")
    gone = await node.wait_for(lambda r: r.get("event") == "socket_disconnected" and r["args"][1] == cid)
    assert gone["args"][:3] == ["/", cid, "client namespace disconnect"]
    # (the UI's connection is ordered: what was sent to it before the disconnection has arrived)
    received = [r["args"][:3] for r in node.events("admin", "event_received") if r["args"][1] == cid]
    assert received[:4] == [
        ["/", cid, ["set", "mood", {"level": 3}]],
        ["/", cid, ["join", "lobby"]],
        ["/", cid, ["leave", "lobby"]],
        ["/", cid, ["echo", "hi", 2]],
    ]
    sent = await node.wait_for(lambda r: r.get("event") == "event_sent" and r["args"][1] == cid)
    assert sent["args"][:3] == ["/", cid, ["echoed", "hi", 2]]
    # its own room goes after the disconnection is told
    own = await node.wait_for(lambda r: r.get("event") == "room_left" and r["args"][1:3] == [cid, cid])
    assert node.reports.index(own) > node.reports.index(gone)
    # the admin namespace's own traffic is not reported as events
    assert not [r for r in node.events("admin", "event_received") if r["args"][0] == "/admin"]


async def test_server_stats(serve: Any, node: Any) -> None:
    io, _ = app_server()
    io.engine.clock = clock = VirtualClock()  # the stats timer follows the engine's clock
    io.of("/empty")
    instrumentation = instrument(io, auth=False, server_id="py-1")
    server = await serve(io.routes())
    node.connect("ann", server.url, auth={"user": "ann"}, transports=["polling"])
    node.connect("bob", server.url, auth={"user": "bob"}, transports=["websocket"])
    await node.expect("connect", "ann")
    await node.expect("connect", "bob")
    node.emit("ann", "echo", "x" * 10, ack=True, tag="e")
    await node.expect("ack", "ann", tag="e")
    node.connect("admin", server.url + "/admin", transports=["websocket"])
    await node.expect("connect", "admin")
    await probe(node, "p1")
    clock.advance(2.0)
    stats = (await node.expect("event", "admin", event="server_stats"))["args"][0]
    assert set(stats) == {
        "serverId",
        "hostname",
        "pid",
        "uptime",
        "clientsCount",
        "pollingClientsCount",
        "aggregatedEvents",
        "namespaces",
    }
    assert stats["serverId"] == "py-1" and stats["hostname"] == pysocket.gethostname() and stats["pid"] == os.getpid()
    assert isinstance(stats["uptime"], float) and stats["uptime"] > 0
    assert stats["clientsCount"] == 3 == io.engine.clients_count
    assert stats["pollingClientsCount"] == 1  # ann; bob and the UI came over WebSocket
    names = {n["name"]: n["socketsCount"] for n in stats["namespaces"]}
    assert names == {"/": 2, "/admin": 1, "/empty": 0}
    counts: dict[str, int] = {}
    for entry in stats["aggregatedEvents"]:
        assert entry["timestamp"] % 1000 == 0 and set(entry) <= {"timestamp", "type", "subType", "count"}
        counts[entry["type"]] = counts.get(entry["type"], 0) + entry["count"]
    assert counts["rawConnection"] == 3
    assert counts["packetsIn"] >= 4 and counts["packetsOut"] >= 4  # CONNECTs, the echo, its ack, the probe …
    assert counts["bytesIn"] > 10 and counts["bytesOut"] > 10
    # the next stats carry what happened since: a disconnection, with its reason
    node.send(cmd="drop", id="bob")
    await node.expect("disconnect", "bob")
    await probe(node, "p2")
    clock.advance(2.0)
    later = await node.wait_for(
        lambda r: r.get("event") == "server_stats" and r["args"][0]["clientsCount"] == 2 and r["id"] == "admin"
    )
    raw = [e for e in later["args"][0]["aggregatedEvents"] if e["type"] == "rawDisconnection"]
    assert [(e["subType"], e["count"]) for e in raw] == [("transport close", 1)]
    instrumentation.close()


async def test_operations_from_the_ui(serve: Any, node: Any) -> None:
    io, seen = app_server()
    instrument(io, auth=BASIC)
    server = await serve(io.routes())
    for name in ("ann", "bob"):
        node.connect(name, server.url, auth={"user": name})
    ann = (await node.expect("connect", "ann"))["sid"]
    bob = (await node.expect("connect", "bob"))["sid"]
    node.connect("admin", server.url + "/admin", auth=LOGIN)
    await node.expect("connect", "admin")
    await node.expect("event", "admin", event="all_sockets")
    # join: one socket (the filter is its id), then everyone
    node.emit("admin", "join", "/", "vip", ann)
    await probe(node, "j")
    assert "vip" in seen["sockets"]["ann"].rooms and "vip" not in seen["sockets"]["bob"].rooms
    node.emit("admin", "join", "/", "all")
    await probe(node, "j2")
    assert "all" in seen["sockets"]["ann"].rooms and "all" in seen["sockets"]["bob"].rooms
    # emit to a room, then to the namespace
    node.emit("admin", "emit", "/", "vip", "news", {"n": 1}, "two")
    assert (await node.expect("event", "ann", event="news"))["args"] == [{"n": 1}, "two"]
    node.emit("admin", "emit", "/", None, "everyone", 3)
    await node.expect("event", "ann", event="everyone", args=[3])
    await node.expect("event", "bob", event="everyone", args=[3])
    assert not node.events("bob", "news")
    # leave
    node.emit("admin", "leave", "/", "all", bob)
    await probe(node, "l")
    assert "all" not in seen["sockets"]["bob"].rooms and "all" in seen["sockets"]["ann"].rooms
    # disconnect one socket, as the Sockets page's button does
    node.emit("admin", "_disconnect", "/", False, bob)
    assert (await node.expect("disconnect", "bob"))["reason"] == "io server disconnect"
    assert seen["sockets"]["ann"].connected


async def test_read_only_refuses_operations(serve: Any, node: Any) -> None:
    io, seen = app_server()
    instrument(io, auth=False, read_only=True)
    server = await serve(io.routes())
    node.connect("ann", server.url, auth={"user": "ann"})
    ann = (await node.expect("connect", "ann"))["sid"]
    node.connect("admin", server.url + "/admin")
    await node.expect("connect", "admin")
    config = await node.expect("event", "admin", event="config")
    assert config["args"] == [{"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}]
    node.emit("admin", "join", "/", "vip", ann)
    node.emit("admin", "emit", "/", None, "news", 1)
    node.emit("admin", "_disconnect", "/", True, ann)
    await probe(node, "after")
    assert seen["sockets"]["ann"].rooms == {ann} and seen["sockets"]["ann"].connected
    assert not node.events("ann", "news")


async def test_production_mode_sends_stats_only(serve: Any, node: Any) -> None:
    io, _ = app_server()
    io.engine.clock = clock = VirtualClock()
    instrument(io, auth=False, mode="production")
    server = await serve(io.routes())
    node.connect("admin", server.url + "/admin")
    await node.expect("connect", "admin")
    config = await node.expect("event", "admin", event="config")
    assert config["args"] == [{"supportedFeatures": ALL_FEATURES[:-1]}]  # no ALL_EVENTS
    node.connect("ann", server.url, auth={"user": "ann"})
    await node.expect("connect", "ann")
    node.emit("ann", "join", "lobby", ack=True, tag="j")
    await node.expect("ack", "ann", tag="j")
    node.emit("ann", "echo", 1, ack=True, tag="e")
    await node.expect("ack", "ann", tag="e")
    await probe(node, "p")
    clock.advance(2.0)
    stats = (await node.expect("event", "admin", event="server_stats"))["args"][0]
    assert {n["name"]: n["socketsCount"] for n in stats["namespaces"]} == {"/": 1, "/admin": 1}
    seen_events = {r["event"] for r in node.reports if r.get("type") == "event" and r["id"] == "admin"}
    assert seen_events == {"config", "server_stats"}  # no sockets, rooms or events in production mode
    node.emit("admin", "join", "/", "vip")  # operations still work (not read-only)
    await probe(node, "p2")


async def test_new_namespaces_are_watched(serve: Any, node: Any) -> None:
    import re

    io, _ = app_server()
    instrument(io, auth=False)
    dynamic = io.of(re.compile(r"/room-\w+"))
    dynamic.on("echo", lambda socket, *args: args)
    server = await serve(io.routes())
    node.connect("admin", server.url + "/admin")
    await node.expect("connect", "admin")
    io.of("/late")  # created after instrument(): the server's new_namespace event
    node.connect("late", server.url + "/late")
    late = (await node.expect("connect", "late"))["sid"]
    event = await node.wait_for(lambda r: r.get("event") == "socket_connected" and r["args"][0]["id"] == late)
    assert event["args"][0]["nsp"] == "/late"
    node.connect("dyn", server.url + "/room-42")
    dyn = (await node.expect("connect", "dyn"))["sid"]
    event = await node.wait_for(lambda r: r.get("event") == "socket_connected" and r["args"][0]["id"] == dyn)
    assert event["args"][0]["nsp"] == "/room-42"
    node.emit("dyn", "echo", "x", ack=True, tag="e")
    await node.expect("ack", "dyn", tag="e")
    received = await node.wait_for(lambda r: r.get("event") == "event_received" and r["args"][1] == dyn)
    assert received["args"][:3] == ["/room-42", dyn, ["echo", "x"]]


async def test_upgrade_is_reported(serve: Any, node: Any) -> None:
    io, _ = app_server()
    instrument(io, auth=False)
    server = await serve(io.routes())
    node.connect("admin", server.url + "/admin", transports=["websocket"])
    await node.expect("connect", "admin")
    node.connect("ann", server.url, auth={"user": "ann"})  # polling, then the upgrade
    ann = (await node.expect("connect", "ann"))["sid"]
    await node.expect("upgrade", "ann")
    updated = await node.wait_for(lambda r: r.get("event") == "socket_updated" and r["args"][0]["id"] == ann)
    assert updated["args"] == [{"id": ann, "nsp": "/", "transport": "websocket"}]


async def test_missing_bcrypt_is_named(monkeypatch: Any) -> None:
    import builtins

    real_import = builtins.__import__

    def no_bcrypt(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "bcrypt":
            raise ModuleNotFoundError("No module named 'bcrypt'", name="bcrypt")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bcrypt)
    with pytest.raises(ImportError, match=r"tornad_io\[admin\]"):
        instrument(Server(), auth=BASIC)


# -- a cluster: two servers on one Redis, the UI connected to one of them ---------------------------------------

from .test_redis_cluster import redis_url  # noqa: E402, F401  (the fixture: a fresh Redis server for one test)


@pytest.mark.parametrize("redis_url", ["redis"], indirect=True)
async def test_cluster_through_the_adapter(redis_url: str, serve: Any, node: Any) -> None:  # noqa: F811
    import redis.asyncio as aioredis

    from tornad_io.admin import RedisStore
    from tornad_io.cluster import redis_adapter

    servers = {}
    clocks = {}
    clients: list[Any] = []
    for name in ("a", "b"):
        io = Server(adapter=redis_adapter(redis_url, requests_timeout=3.0))
        io.engine.clock = clocks[name] = VirtualClock()

        @io.on("join")
        def join(socket: Socket, room: str) -> bool:
            socket.join(room)
            return True

        clients.append(aioredis.Redis.from_url(redis_url))
        store = RedisStore(clients[-1])  # login sessions shared by the cluster
        instrument(io, auth=BASIC, server_id=f"server-{name}", store=store)
        running = await serve(io.routes())
        await io.init()
        servers[name] = (io, running)
    a, b = servers["a"][1], servers["b"][1]
    node.connect("early", b.url, transports=["websocket"])
    early = (await node.expect("connect", "early"))["sid"]
    node.connect("admin", a.url + "/admin", transports=["websocket"], auth=LOGIN)
    await node.expect("connect", "admin")
    (session_id,) = (await node.expect("event", "admin", event="session"))["args"]
    # all_sockets: the other server's socket too (fetch_sockets across the cluster), as that server described it
    listed = (await node.expect("event", "admin", event="all_sockets"))["args"][0]
    remote = next(s for s in listed if s["id"] == early)
    assert remote["nsp"] == "/" and remote["transport"] == "websocket" and len(remote["clientId"]) == 12
    # live events of the other server reach the UI through the adapter
    node.connect("late", b.url)
    late = (await node.expect("connect", "late"))["sid"]
    await node.wait_for(lambda r: r.get("event") == "socket_connected" and r["args"][0]["id"] == late)
    # and so do its stats: one server_stats per server
    for clock in clocks.values():
        clock.advance(2.0)
    ids = set()
    while ids != {"server-a", "server-b"}:
        report = await node.wait_for(
            lambda r: r.get("event") == "server_stats" and r["args"][0]["serverId"] not in ids and r["id"] == "admin"
        )
        ids.add(report["args"][0]["serverId"])
    # an operation from the UI reaches a socket of the other server
    node.emit("admin", "join", "/", "vip", early)
    joined = await node.wait_for(lambda r: r.get("event") == "room_joined" and r["args"][1:3] == ["vip", early])
    assert joined["args"][0] == "/"
    node.emit("admin", "emit", "/", "vip", "news", "for vip")
    assert (await node.expect("event", "early", event="news"))["args"] == ["for vip"]
    # the login session is in Redis: a UI that comes back through the other server needs no password
    node.connect("again", b.url + "/admin", auth={"sessionId": session_id})
    await node.expect("connect", "again")
    keys = await clients[0].keys("socket.io-admin#*")
    assert keys == [f"socket.io-admin#{session_id}".encode()]
    for io, _ in servers.values():
        await io.shutdown(1.0)
    for client in clients:
        await client.aclose()
