"""The Redis Streams adapter (@socket.io/redis-streams-adapter 0.3.1's format) on a real Redis and Valkey.

Mixed clusters: two Node socket.io 4.8 servers with @socket.io/redis-streams-adapter 0.3.1 and two of ours,
with connection state recovery on, and socket.io-client on every server. A client whose connection drops on
one server recovers on another (through a TCP forwarder that the test points at the next server). The
entries and keys a Python server writes are compared byte for byte with the ones captured from Node
(socket.io 4.8.1 and @socket.io/redis-streams-adapter 0.3.1 on Redis 7.0, read with XRANGE, GET and
MONITOR), and Node's are read back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis

from tornad_io import Server, Socket
from tornad_io.cluster import RemoteSocket, redis_streams_adapter
from tornad_io.cluster.stream_format import decode_entry, encode_entry, hash_code, stream_for

from .conftest import NODE, ROOT, WAIT, NodeClients, wait_until
from .test_redis_cluster import free_port, server_binary

RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 100}


# -- servers ------------------------------------------------------------------------------


class RedisProcess:
    """redis-server (or valkey-server) on 127.0.0.1 and a fixed port, with persistence off."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = [server_binary(self.kind), "--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen([*command, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = aioredis.Redis.from_url(self.url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        try:
            while True:
                try:
                    await client.ping()
                    return
                except Exception:
                    assert loop.time() < deadline, "the server did not start"
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(params=["redis", "valkey"])
async def redis_server(request: Any) -> Any:
    """A fresh Redis (or Valkey) for one test."""
    server = RedisProcess(request.param)
    await server.start()
    yield server
    server.stop()


@pytest.fixture
async def raw(redis_server: RedisProcess) -> Any:
    """A plain redis-py client on the test's Redis (to look at what the servers wrote)."""
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def python_node(url: str, name: str, **recovery: Any) -> tuple[Server, dict[str, Any]]:
    io = Server(
        adapter=redis_streams_adapter(url, requests_timeout=3.0),
        connection_state_recovery=recovery or True,
        ping_interval=60,
    )
    seen: dict[str, Any] = {"sse": asyncio.Queue(), "connections": [], "sockets": {}}

    @io.on("connect")
    def connect(socket: Socket) -> None:
        if not socket.recovered:
            socket.data["node"] = name
        seen["connections"].append({"id": socket.id, "recovered": socket.recovered, "rooms": set(socket.rooms)})
        seen["sockets"][socket.id] = socket

    @io.on("join")
    def join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @io.on_server_side_emit("ping")
    def ping(*args: Any) -> str:
        seen["sse"].put_nowait(args)
        return f"pong from {name}"

    return io, seen


async def node_server(url: str, stream_count: int = 1, pubsub: str = "") -> tuple[NodeClients, int]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", "streams_node.mjs"),
        url,
        str(port),
        str(stream_count),
        pubsub,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    driver = NodeClients(proc)
    await driver.expect("ready", timeout=30)
    return driver, port


async def until_node_reads(node: Any, io: Server, *clients: str) -> None:
    """Wait until Node servers read the stream: their read loops start at "$" some time after the
    server says it is ready (the reference's race), and miss what is added before."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    for client in clients:
        while True:
            io.emit("warm-up")
            try:
                await node.expect("event", client, event="warm-up", timeout=0.2)
                break
            except asyncio.TimeoutError:
                assert loop.time() < deadline, f"{client}'s server does not read the stream"


class Forwarder:
    """A TCP forwarder on 127.0.0.1 that the test points at one server, then at another.

    :meth:`cut` closes every forwarded connection at once (a network cut: both ends see
    the connection end); the client's next connection goes to the current target.
    """

    def __init__(self, target: int | None) -> None:
        #: The port connections go to; None refuses them (the client keeps retrying).
        self.target = target
        self.port = 0
        self.url = ""
        self._server: asyncio.base_events.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._links -= {writer, up_writer}

    def cut(self) -> None:
        for writer in list(self._links):
            transport = writer.transport
            transport.abort()
        self._links.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def cluster(redis_server: RedisProcess, serve: Any, node: Any) -> Any:
    """Python servers pa, pb and Node servers na, nb on one Redis; a client on each (ids c-pa …)."""
    url = redis_server.url
    pa, seen_a = python_node(url, "py:a")
    pb, seen_b = python_node(url, "py:b")
    server_a = await serve(pa.routes())
    server_b = await serve(pb.routes())
    await pa.init()
    await pb.init()
    na, port_na = await node_server(url)
    nb, port_nb = await node_server(url)
    ports = {"pa": server_a.port, "pb": server_b.port, "na": port_na, "nb": port_nb}
    sids = {}
    for name, port in ports.items():
        node.connect(
            f"c-{name}",
            f"http://127.0.0.1:{port}",
            transports=["websocket"],
            acks={"question": f"answer from c-{name}"},
        )
        sids[name] = (await node.expect("connect", f"c-{name}"))["sid"]
    await wait_until(lambda: len(seen_a["connections"]) == 1 and len(seen_b["connections"]) == 1)
    assert await pa.sockets.adapter.server_count() == 4
    await until_node_reads(node, pa, "c-na", "c-nb")
    yield {
        "pa": pa,
        "pb": pb,
        "na": na,
        "nb": nb,
        "sids": sids,
        "ports": ports,
        "seen": {"pa": seen_a, "pb": seen_b},
        "node": node,
        "url": url,
    }
    for driver in (na, nb):
        await driver.close()
    await pa.shutdown(timeout=1)
    await pb.shutdown(timeout=1)


def received(node: Any, event: str) -> list[str]:
    return sorted(r["id"] for r in node.reports if r.get("type") == "event" and r.get("event") == event)


def args_of(node: Any, client: str, event: str) -> list[list[Any]]:
    return [r["args"] for r in node.events(client, event)]


async def join(node: Any, client: str, room: str) -> None:
    node.emit(client, "join", room, ack=True, tag=f"{client}-{room}")
    await node.expect("ack", client, tag=f"{client}-{room}")


def is_offset(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    ms, _, seq = value.partition("-")
    return ms.isdigit() and seq.isdigit()


# -- a mixed cluster ------------------------------------------------------------------------


async def test_broadcasts_across_python_and_node(cluster: Any) -> None:
    node, pa, na = cluster["node"], cluster["pa"], cluster["na"]
    everyone = ["c-na", "c-nb", "c-pa", "c-pb"]
    pa.emit("from-python", 1, {"bin": b"\x00\x01"})
    na.send(cmd="emit", event="from-node", args=[2, {"$bin": base64.b64encode(b"\x02").decode()}])
    for client in everyone:
        event = await node.expect("event", client, event="from-python")
        assert event["args"][:2] == [1, {"bin": b"\x00\x01"}]  # binary survives the trip
        assert is_offset(event["args"][2])  # the stream entry's id, on every server
        event = await node.expect("event", client, event="from-node")
        assert event["args"][:2] == [2, b"\x02"] and is_offset(event["args"][2])
    offsets = {r["args"][2] for r in node.reports if r.get("event") == "from-python"}
    assert len(offsets) == 1  # the same offset everywhere
    await join(node, "c-pa", "red")
    await join(node, "c-na", "red")
    await join(node, "c-nb", "red")
    await join(node, "c-nb", "blue")
    pa.to("red").except_("blue").emit("red-not-blue")
    na.send(cmd="emit", to=["red"], event="red-all")
    pa.volatile.emit("vol", 1)
    na.send(cmd="emit", volatile=True, event="vol-node", args=[1])
    pa.local.emit("local-py")
    na.send(cmd="emit", local=True, event="local-node")
    pa.emit("marker")
    for client in everyone:
        await node.expect("event", client, event="marker")
    # Node's emit reaches the stream when the Node process handles the command, which may be after
    # the marker: wait for it at every member of the room.
    for member in ("c-na", "c-nb", "c-pa"):
        await node.wait_for(lambda r, m=member: r.get("event") == "red-all" and r["id"] == m)
    assert received(node, "red-not-blue") == ["c-na", "c-pa"]
    assert received(node, "red-all") == ["c-na", "c-nb", "c-pa"]
    # volatile crosses the cluster (a Node server may drop it for a busy client, as volatile allows)
    await node.expect("event", "c-pb", event="vol")
    await node.expect("event", "c-pa", event="vol-node")
    await node.expect("event", "c-na", event="local-node")
    # volatile: no offset (the reference's rule), on Python and Node servers alike
    assert all(r["args"] == [1] for r in node.reports if r.get("event") in ("vol", "vol-node"))
    assert received(node, "local-py") == ["c-pa"] and received(node, "local-node") == ["c-na"]
    assert all(r["args"] == [] for r in node.reports if r.get("event") in ("local-py", "local-node"))


async def test_fetch_sockets_both_ways(cluster: Any) -> None:
    pa, na, sids, node = cluster["pa"], cluster["na"], cluster["sids"], cluster["node"]
    sockets = await pa.fetch_sockets()
    by_id = {s.id: s for s in sockets}
    assert set(by_id) == set(sids.values())
    remote = by_id[sids["na"]]
    assert isinstance(remote, RemoteSocket) and remote.data["node"].startswith("node:")
    assert sids["na"] in remote.rooms and remote.handshake.query.get("EIO") == "4"
    assert isinstance(by_id[sids["pb"]], RemoteSocket) and by_id[sids["pb"]].data == {"node": "py:b"}
    na.send(cmd="fetch", tag="f1")
    fetched = await na.expect("fetched", tag="f1")
    datas = {s["id"]: s["data"] for s in fetched["sockets"]}
    assert set(datas) == set(sids.values())
    assert datas[sids["pa"]] == {"node": "py:a"} and datas[sids["pb"]] == {"node": "py:b"}
    # remote proxies drive sockets on other servers: emit (through the stream, with an offset), join, leave
    remote.emit("direct", "to a node client")
    got = await node.expect("event", "c-na", event="direct")
    assert got["args"][0] == "to a node client" and is_offset(got["args"][1])
    by_id[sids["pb"]].join("violet")
    remote.join(["violet"])
    await wait_until(lambda: "violet" in cluster["pb"].sockets.adapter.rooms)
    na.send(cmd="rooms", sid=sids["na"], tag="r1")
    while "violet" not in (await na.expect("rooms", tag="r1"))["rooms"]:
        na.reports.clear()
        na.send(cmd="rooms", sid=sids["na"], tag="r1")
    violet = await pa.in_("violet").fetch_sockets()
    assert {s.id for s in violet} == {sids["na"], sids["pb"]}
    remote.leave("violet")
    by_id[sids["pb"]].leave("violet")
    await wait_until(lambda: "violet" not in cluster["pb"].sockets.adapter.rooms)


async def test_server_side_emit_with_acks_both_ways(cluster: Any) -> None:
    pa, na, nb, seen = cluster["pa"], cluster["na"], cluster["nb"], cluster["seen"]
    responses = await pa.server_side_emit_with_ack("ping", "from py", b"\x07")
    assert len(responses) == 3
    assert "pong from py:b" in responses and sum(r.startswith("pong from node:") for r in responses) == 2
    assert await asyncio.wait_for(seen["pb"]["sse"].get(), WAIT) == ("from py", b"\x07")
    sse = await na.wait_for(lambda r: r.get("type") == "sse")
    assert sse["args"] == ["from py", b"\x07"]  # binary arrived as binary (a Buffer in Node)
    na.send(cmd="ssemit", event="ping", args=["from node"], ack=True, tag="s1")
    acked = await na.expect("ssacked", tag="s1")
    assert acked["error"] is None and "pong from py:a" in acked["responses"] and "pong from py:b" in acked["responses"]
    pa.server_side_emit("ping", "no ack")
    sse = await nb.wait_for(lambda r: r.get("type") == "sse" and r["args"] == ["no ack"])
    assert sse["event"] == "ping"


async def test_broadcast_acks_across_nodes(cluster: Any) -> None:
    pa, na = cluster["pa"], cluster["na"]
    everyone = ["answer from c-na", "answer from c-nb", "answer from c-pa", "answer from c-pb"]
    responses = await pa.timeout(5).emit_with_ack("question")
    assert sorted(responses) == everyone
    na.send(cmd="emitack", event="question", timeout=5000, tag="q")
    acked = await na.expect("acked", tag="q")
    assert acked["error"] is None and sorted(acked["responses"]) == everyone
    # an ack broadcast carries no offset, on any server
    assert all(len(r["args"]) == 0 for r in cluster["node"].reports if r.get("event") == "question")


async def test_remote_join_leave_disconnect(cluster: Any) -> None:
    node, pa, pb, na, sids = cluster["node"], cluster["pa"], cluster["pb"], cluster["na"], cluster["sids"]
    pa.in_(sids["na"]).sockets_join("green")  # a Node server's client, joined from Python
    na.send(cmd="join", to=[sids["pb"]], rooms=["green"])  # a Python server's client, joined from Node
    await wait_until(lambda: "green" in pb.sockets.adapter.rooms)
    # the join went into the stream before this broadcast: every server applies it first
    pa.to("green").emit("green")
    await node.expect("event", "c-na", event="green")
    await node.expect("event", "c-pb", event="green")
    pa.in_("green").sockets_leave("green")
    await wait_until(lambda: "green" not in pb.sockets.adapter.rooms)
    pa.to("green").emit("green-again")
    pa.emit("marker")
    for client in ("c-na", "c-pb"):
        await node.expect("event", client, event="marker")
    assert received(node, "green-again") == []
    pa.in_(sids["nb"]).disconnect_sockets(close=True)
    assert (await node.expect("disconnect", "c-nb"))["reason"] in ("io server disconnect", "transport close")
    na.send(cmd="disconnect", to=[sids["pb"]], close=False)
    assert (await node.expect("disconnect", "c-pb"))["reason"] == "io server disconnect"


# -- connection state recovery across servers ----------------------------------------------------


async def session_keys(raw: Any) -> list[bytes]:
    return sorted(await raw.keys("sio:session:*"))


@pytest.mark.parametrize("route", ["pa-na", "na-pa", "pa-pb"])
async def test_a_client_recovers_on_another_server(cluster: Any, raw: Any, route: str) -> None:
    """Cut off on one server, back on another (Python → Node, Node → Python, Python → Python): same id,
    rooms and data, ``recovered``, and the events it missed in order, once, with their offsets."""
    node, ports = cluster["node"], cluster["ports"]
    pa, pb, na, nb = cluster["pa"], cluster["pb"], cluster["na"], cluster["nb"]
    first, then = route.split("-")
    forwarder = Forwarder(ports[first])
    await forwarder.start()
    try:
        node.connect("r", forwarder.url, transports=["websocket"], **RECONNECT)
        connected = await node.expect("connect", "r")
        sid = connected["sid"]
        assert connected["recovered"] is False
        await join(node, "r", "news")
        origin_data = {"node": "py:a"} if first == "pa" else {"node": f"node:{ports['na']}"}
        # live traffic, with offsets: a room broadcast from another server, and a socket's own emit
        base = await raw.xlen("socket.io")
        pb.to("news").emit("news", 1)
        await node.wait_for(lambda r: r.get("event") == "news" and r["id"] == "r")
        if first == "pa":
            cluster["seen"]["pa"]["sockets"][sid].emit("own", 1)
        else:
            na.send(cmd="direct", sid=sid, event="own", args=[1])
        own = await node.expect("event", "r", event="own")
        assert is_offset(own["args"][-1])
        # the network cut; the client cannot come back until the forwarder points at the next server
        forwarder.target = None
        forwarder.cut()
        assert (await node.expect("disconnect", "r"))["reason"] == "transport close"
        await wait_until_async(lambda: session_keys(raw), lambda keys: len(keys) == 1)
        # while it is away
        pa.to("news").emit("news", 2)
        na.send(cmd="emit", event="all", args=[1])
        nb.send(cmd="emit", to=["elsewhere"], event="news", args=[-1])  # not its room
        pb.volatile.emit("lossy", 1)  # volatile: not replayed
        na.send(cmd="emit", event="bin", args=[{"$bin": base64.b64encode(b"\t\x08").decode()}])
        pb.except_("news").emit("excluded", 1)  # its room is excluded
        nb.send(cmd="emit", to=[sid], event="to-sid", args=[1])
        pa.local.emit("local-only", 1)  # local: never in the stream
        # every one of them is in the stream (news 1, own, and the 8 above) before the last one
        await wait_until_async(lambda: raw.xlen("socket.io"), lambda n: n == base + 9)
        pa.to("news").emit("news", 3)
        await wait_until_async(lambda: raw.xlen("socket.io"), lambda n: n == base + 10)
        forwarder.target = ports[then]
        back = await node.wait_for(lambda r: r.get("type") == "connect" and r["id"] == "r" and r is not connected)
        assert back["recovered"] is True and back["sid"] == sid
        await node.wait_for(lambda r: r.get("event") == "news" and r["id"] == "r" and r["args"][0] == 3)
        news = args_of(node, "r", "news")
        assert [a[0] for a in news] == [1, 2, 3]  # once each, in order
        offsets = [a[1] for a in news]
        assert all(is_offset(o) for o in offsets)
        assert [tuple(map(int, o.split("-"))) for o in offsets] == sorted(
            tuple(map(int, o.split("-"))) for o in offsets
        )
        assert [a[:-1] for a in args_of(node, "r", "all")] == [[1]]
        assert [a[:-1] for a in args_of(node, "r", "bin")] == [[b"\t\x08"]]
        assert [a[:-1] for a in args_of(node, "r", "to-sid")] == [[1]]
        assert args_of(node, "r", "excluded") == []
        # volatile: a Python server does not replay it; the reference (a Node server) does, with an offset
        assert [a[:-1] for a in args_of(node, "r", "lossy")] == ([] if then.startswith("p") else [[1]])
        assert args_of(node, "r", "local-only") == [] and [a[:-1] for a in args_of(node, "r", "own")] == [[1]]
        # the new server has the socket back: same id, rooms, data
        if then in ("pa", "pb"):
            seen = cluster["seen"][then]
            await wait_until(lambda: any(c["id"] == sid for c in seen["connections"]))
            restored = next(c for c in seen["connections"] if c["id"] == sid)
            assert restored["recovered"] is True and restored["rooms"] == {sid, "news"}
            assert seen["sockets"][sid].data == origin_data
        else:
            report = await na.wait_for(lambda r: r.get("type") == "connection" and r["id"] == sid)
            assert report["recovered"] is True and sorted(report["rooms"]) == sorted([sid, "news"])
            assert report["data"] == origin_data
        assert await session_keys(raw) == []  # taken by the restore
        # and it is an ordinary socket of the cluster again
        nb.send(cmd="emit", to=["news"], event="after", args=["y"])
        after = await node.expect("event", "r", event="after")
        assert after["args"][0] == "y" and is_offset(after["args"][1])
    finally:
        await forwarder.close()


async def wait_until_async(probe: Any, check: Any, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check(await probe()):
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- the wire, byte for byte (captured from a run of two Node servers, uids caa2… and b8b9…) -------------------

UID_A, UID_B = "caa2f633e8dfff55", "b8b91fb361904f4d"
NODE_SID, NODE_PID = "6N8YJYpJV484VUAfAAAA", "uHbnVieXJbh8GFF9AAAB"
# The data field of the stream entries (type 3 unless said), in the order the trace wrote them
NO_OPTS = '"opts":{"rooms":[],"except":[],"flags":{}}'
ENTRY_VECTORS = [
    ("3", '{"packet":{"type":2,"data":["text","hello"]},' + NO_OPTS + "}"),
    ("3", "gqZwYWNrZXSCpHR5cGUCpGRhdGGTo2JpbsQDAQIDpHRhaWykb3B0c4Olcm9vbXOQpmV4Y2VwdJClZmxhZ3OA"),
    ("3", '{"packet":{"type":2,"data":["roomev",{"a":1}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}'),
    (
        "3",
        '{"packet":{"type":2,"data":["direct",42]},"opts":{"rooms":["6N8YJYpJV484VUAfAAAA"],"except":[],"flags":{}}}',
    ),
    ("3", '{"packet":{"type":2,"data":["vol",1]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true}}}'),
    ("3", '{"packet":{"type":2,"data":["exc",1]},"opts":{"rooms":[],"except":["room1"],"flags":{}}}'),
    ("4", '{"opts":{"rooms":["6N8YJYpJV484VUAfAAAA"],"except":[],"flags":{}},"rooms":["room2","room3"]}'),
    ("5", '{"opts":{"rooms":["6N8YJYpJV484VUAfAAAA"],"except":[],"flags":{}},"rooms":["room3"]}'),
    ("6", '{"opts":{"rooms":["nobody-here"],"except":[],"flags":{}},"close":true}'),
    ("3", "gqZwYWNrZXSCpHR5cGUCpGRhdGGSqW1pc3NlZGJpbsQCCQikb3B0c4Olcm9vbXOQpmV4Y2VwdJClZmxhZ3OA"),
]
XADD_VECTOR = (
    '"XADD" "socket.io" "MAXLEN" "~" "10000" "*" "uid" "caa2f633e8dfff55" "nsp" "/" "type" "3" "data" '
    '"{\\"packet\\":{\\"type\\":2,\\"data\\":[\\"text\\",\\"hello\\"]},\\"opts\\":{\\"rooms\\":[],\\"except\\":[],'
    '\\"flags\\":{}}}"'
)
# The session value (msgpack, before base64)
SESSION_VECTOR = bytes.fromhex(
    "84a3736964b4364e38594a59704a563438345655416641414141a3706964b47548626e566965584a6268384746463941414142"
    "a5726f6f6d7393b4364e38594a59704a563438345655416641414141a5726f6f6d31a5726f6f6d32a46461746182a475736572"
    "a5616c696365a16e01"
)
# PUB/SUB payloads (channel, msgpack)
PUBSUB_VECTORS = {
    "broadcast-ack-from-a": (
        "socket.io#/#",
        "84a47479706503a46461746183a67061636b657482a47479706502a46461746192a77769746861636ba27131a97265717565"
        "73744964b062373233653966313065373235633335a46f70747383a5726f6f6d7390a665786365707490a5666c61677381a7"
        "74696d656f7574cd03e8a3756964b063616132663633336538646666663535a36e7370a12f",
    ),
    "client-count-from-b": (
        "socket.io#/#caa2f633e8dfff55#",
        "84a4747970650ba46461746182a9726571756573744964b062373233653966313065373235633335ab636c69656e74436f75"
        "6e7400a3756964b062386239316662333631393034663464a36e7370a12f",
    ),
    "broadcast-ack-from-b": (
        "socket.io#/#",
        "84a47479706503a46461746183a67061636b657482a47479706502a46461746192a861636b46726f6d42a27132a972657175"
        "6573744964b032306666326561333166363065653036a46f70747383a5726f6f6d7390a665786365707490a5666c61677381"
        "a774696d656f7574cd07d0a3756964b062386239316662333631393034663464a36e7370a12f",
    ),
    "client-count-from-a": (
        "socket.io#/#b8b91fb361904f4d#",
        "84a4747970650ba46461746182a9726571756573744964b032306666326561333166363065653036ab636c69656e74436f75"
        "6e7401a3756964b063616132663633336538646666663535a36e7370a12f",
    ),
    "broadcast-ack-answer-from-a": (
        "socket.io#/#b8b91fb361904f4d#",
        "84a4747970650ca46461746182a9726571756573744964b032306666326561333166363065653036a67061636b6574ab616e"
        "737765722d422d7132a3756964b063616132663633336538646666663535a36e7370a12f",
    ),
    "fetch-from-b": (
        "socket.io#/#",
        "84a47479706507a46461746182a46f70747383a5726f6f6d7390a665786365707490a5666c61677380a97265717565737449"
        "64b034663839633264366338643864323334a3756964b062386239316662333631393034663464a36e7370a12f",
    ),
    "server-side-emit-binary-from-b": (
        "socket.io#/#",
        "84a47479706509a46461746181a67061636b657493ad68656c6c6f2d7365727665727301c40107a3756964b062386239316662"
        "333631393034663464a36e7370a12f",
    ),
    "server-side-emit-ack-from-b": (
        "socket.io#/#",
        "84a47479706509a46461746182a9726571756573744964b062373337633263396265373033393862a67061636b657491ac7069"
        "6e672d73657276657273a3756964b062386239316662333631393034663464a36e7370a12f",
    ),
    "server-side-emit-answer-from-a": (
        "socket.io#/#b8b91fb361904f4d#",
        "84a4747970650aa46461746182a9726571756573744964b062373337633263396265373033393862a67061636b6574ab706f6e"
        "672d66726f6d2d41a3756964b063616132663633336538646666663535a36e7370a12f",
    ),
}
FETCH_RESPONSE_PREFIX = "84a47479706508a46461746182a9726571756573744964b0" + b"4f89c2d6c8d8d234".hex()


class Monitor:
    """``MONITOR`` on a raw connection: every command Redis runs, as Redis prints it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer.write(b"MONITOR\r\n")
        assert (await reader.readline()).startswith(b"+OK")

        async def read() -> None:
            while line := await reader.readline():
                self.lines.append(line.decode(errors="replace").rstrip("\r\n"))

        self._task = asyncio.ensure_future(read())

    def commands(self, name: str) -> list[str]:
        """The commands called *name*, each as its quoted arguments (``"XADD" "socket.io" …``)."""
        found = []
        for line in self.lines:
            _, _, command = line.partition("] ")
            if command.startswith(f'"{name}"'):
                found.append(command)
        return found

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


async def test_what_a_python_server_writes_is_nodes_format_byte_for_byte(
    redis_server: RedisProcess, raw: Any, serve: Any, node: Any, monkeypatch: Any
) -> None:
    """Stream entries, the XADD command, the session key and every PUB/SUB payload, against Node's."""
    ids: list[str] = [UID_A, UID_B]
    monkeypatch.setattr("tornad_io.cluster.envelope.hex_id", lambda: ids.pop(0))
    io_a = Server(adapter=redis_streams_adapter(redis_server.url), connection_state_recovery=True)
    io_b = Server(adapter=redis_streams_adapter(redis_server.url), connection_state_recovery=True)
    assert (io_a.sockets.adapter.uid, io_b.sockets.adapter.uid) == (UID_A, UID_B)
    sockets: dict[str, Socket] = {}

    @io_a.on("connect")
    def connect(socket: Socket) -> None:
        socket.data.update(user="alice", n=1)
        socket.join("room1")
        sockets["a"] = socket

    @io_a.on_server_side_emit("ping-servers")
    def ping() -> str:
        return "pong-from-A"

    server_a = await serve(io_a.routes())
    await io_a.init()
    await io_b.init()
    captured: dict[str, list[bytes]] = {}
    listener = raw.pubsub()
    await listener.psubscribe("socket.io#/#*")  # pattern subscribers are not counted as servers

    async def capture() -> None:
        async for message in listener.listen():
            if message["type"] == "pmessage":
                captured.setdefault(message["channel"].decode(), []).append(message["data"])

    capturing = asyncio.ensure_future(capture())
    monitor = Monitor(redis_server.port)
    await monitor.start()
    try:
        node.connect("c", server_a.url, transports=["websocket"], acks={"ackFromB": "answer-B-q2"})
        sid = (await node.expect("connect", "c"))["sid"]
        socket = sockets["a"]
        # the stream entries, in the captured run's order
        io_a.emit("text", "hello")
        io_a.emit("bin", b"\x01\x02\x03", "tail")
        io_a.to("room1").emit("roomev", {"a": 1})
        socket.emit("direct", 42)
        io_a.volatile.emit("vol", 1)
        io_a.except_("room1").emit("exc", 1)
        await wait_until_async(lambda: raw.xlen("socket.io"), lambda n: n == 6)
        io_b.in_(sid).sockets_join(["room2", "room3"])
        await wait_until(lambda: {"room2", "room3"} <= socket.rooms)
        io_b.in_(sid).sockets_leave("room3")
        await wait_until(lambda: "room3" not in socket.rooms)
        io_b.in_("nobody-here").disconnect_sockets(close=True)
        io_a.emit("missedbin", b"\x09\x08")
        await wait_until_async(lambda: raw.xlen("socket.io"), lambda n: n == 10)
        entries = await raw.xrange("socket.io")
        written = [
            (f[b"uid"].decode(), f[b"nsp"].decode(), f[b"type"].decode(), f[b"data"].decode()) for _, f in entries
        ]
        assert [list(f) for _, f in entries] == [[b"uid", b"nsp", b"type", b"data"]] * 10  # Node's field order
        expected = [
            (UID_B if kind in "456" else UID_A, "/", kind, data.replace(NODE_SID, sid)) for kind, data in ENTRY_VECTORS
        ]
        assert written == expected
        await wait_until(lambda: len(monitor.commands("XADD")) >= 10)
        assert monitor.commands("XADD")[0] == XADD_VECTOR
        # what the client got: the entries' ids as offsets (none on the volatile one)
        await node.expect("event", "c", event="missedbin")
        offsets = [e[0].decode() for e in entries]
        assert [r["args"][-1] for r in node.events("c", "text")] == [offsets[0]]
        assert node.events("c", "bin")[0]["args"] == [b"\x01\x02\x03", "tail", offsets[1]]
        assert node.events("c", "direct")[0]["args"] == [42, offsets[3]]
        assert node.events("c", "vol")[0]["args"] == [1] and node.events("c", "exc") == []
        # the PUB/SUB payloads
        ids.append("b723e9f10e725c35")
        assert await io_a.timeout(1).emit_with_ack("withack", "q1") == [{"echo": ["q1"]}]
        ids.append("20ff2ea31f60ee06")
        assert await io_b.timeout(2).emit_with_ack("ackFromB", "q2") == ["answer-B-q2"]
        ids.append("4f89c2d6c8d8d234")
        assert [s.id for s in await io_b.fetch_sockets()] == [sid]
        io_b.server_side_emit("hello-servers", 1, b"\x07")
        ids.append("b737c2c9be70398b")
        assert await io_b.server_side_emit_with_ack("ping-servers") == ["pong-from-A"]
        for name, (channel, payload) in PUBSUB_VECTORS.items():
            await wait_until(lambda: bytes.fromhex(payload) in captured.get(channel, []))  # noqa: B023
            assert bytes.fromhex(payload) in captured[channel], name
        fetched = captured["socket.io#/#b8b91fb361904f4d#"]
        answer = next(p for p in fetched if p.hex().startswith(FETCH_RESPONSE_PREFIX))
        sockets_part = "a7736f636b6574739184a26964b4" + sid.encode().hex() + "a968616e647368616b6589"
        assert sockets_part in answer.hex()  # [{id, handshake: {9 fields, Node's order}, rooms, data}]
        assert msgpack.unpackb(answer)["data"]["sockets"][0]["data"] == {"user": "alice", "n": 1}
        # the session key, when the connection drops
        pid = socket.pid
        assert pid is not None
        node.send(cmd="drop", id="c")
        await wait_until_async(lambda: raw.keys("sio:session:*"), lambda keys: keys == [f"sio:session:{pid}".encode()])
        value = await raw.get(f"sio:session:{pid}")
        expected_session = SESSION_VECTOR.replace(NODE_SID.encode(), sid.encode()).replace(
            NODE_PID.encode(), pid.encode()
        )
        assert base64.b64decode(value) == expected_session and value == base64.b64encode(expected_session)
        assert 115_000 < await raw.pttl(f"sio:session:{pid}") <= 120_000
        sets = monitor.commands("SET")
        assert sets and sets[-1].endswith('"PX" "120000"') and sets[-1].startswith(f'"SET" "sio:session:{pid}" "')
    finally:
        capturing.cancel()
        await listener.aclose()
        await monitor.close()
        await io_a.shutdown(timeout=1)
        await io_b.shutdown(timeout=1)


async def test_entries_written_by_node_are_read(redis_server: RedisProcess, raw: Any, serve: Any, node: Any) -> None:
    """The captured entries, added as Node wrote them, reach a Python server's client: JSON and base64
    msgpack (binary), rooms and except, remote joins and leaves, each event with its entry id."""
    io, seen = python_node(redis_server.url, "py:a")
    server = await serve(io.routes())
    await io.init()
    try:
        node.connect("c", server.url, transports=["websocket"])
        sid = (await node.expect("connect", "c"))["sid"]
        await join(node, "c", "room1")
        written = []
        for kind, data in ENTRY_VECTORS + [("3", '{"packet":{"type":2,"data":["fromB","x"]},' + NO_OPTS + "}")]:
            fields = {"uid": UID_B, "nsp": "/", "type": kind, "data": data.replace(NODE_SID, sid)}
            written.append((await raw.xadd("socket.io", fields)).decode())
        await node.expect("event", "c", event="fromB")
        got = [(r["event"], r["args"]) for r in node.reports if r.get("type") == "event" and r["id"] == "c"]
        assert got == [
            ("text", ["hello", written[0]]),
            ("bin", [b"\x01\x02\x03", "tail", written[1]]),
            ("roomev", [{"a": 1}, written[2]]),
            ("direct", [42, written[3]]),
            ("vol", [1]),  # volatile: no offset
            ("missedbin", [b"\t\x08", written[9]]),  # "exc" excluded room1
            ("fromB", ["x", written[10]]),
        ]
        socket = seen["sockets"][sid]
        assert socket.rooms == {sid, "room1", "room2"}  # joined room2 and room3, left room3
    finally:
        await io.shutdown(timeout=1)


async def test_broadcasts_keep_their_order(redis_server: RedisProcess, raw: Any, serve: Any, node: Any) -> None:
    """Successive broadcasts, socket emits and local emits reach clients in the order of the calls,
    on this server and the others, with offsets that grow in that order."""
    pa, seen = python_node(redis_server.url, "py:a")
    pb, _ = python_node(redis_server.url, "py:b")
    server_a, server_b = await serve(pa.routes()), await serve(pb.routes())
    await pa.init()
    await pb.init()
    try:
        node.connect("a", server_a.url, transports=["websocket"])
        node.connect("b", server_b.url, transports=["websocket"])
        sid = (await node.expect("connect", "a"))["sid"]
        await node.expect("connect", "b")
        socket = seen["sockets"][sid]
        for i in range(200):
            if i % 10 == 3:
                socket.emit("seq", i)  # to this client only, through the stream
            elif i % 10 == 7:
                pa.local.emit("seq", i)  # not in the stream, still in its place
            else:
                pa.emit("seq", i)
        await node.wait_for(lambda r: r.get("event") == "seq" and r["id"] == "a" and r["args"][0] == 199)
        await node.wait_for(lambda r: r.get("event") == "seq" and r["id"] == "b" and r["args"][0] == 199)
        here = args_of(node, "a", "seq")
        assert [a[0] for a in here] == list(range(200))
        offsets = [tuple(map(int, a[1].split("-"))) for a in here if len(a) == 2]
        assert len(offsets) == 180 and offsets == sorted(offsets) and len(set(offsets)) == 180
        there = args_of(node, "b", "seq")
        assert [a[0] for a in there] == [i for i in range(200) if i % 10 not in (3, 7)]
        assert [a[1] for a in there] == [a[1] for a in here if a[0] % 10 not in (3, 7)]  # the same offsets
        assert await raw.xlen("socket.io") == 180
    finally:
        await pa.shutdown(timeout=1)
        await pb.shutdown(timeout=1)


# -- where the reference is wrong, and this adapter is not ---------------------------------------


async def test_packets_seen_live_without_offset_are_not_replayed(
    redis_server: RedisProcess, raw: Any, serve: Any, node: Any
) -> None:
    """The reference replays volatile packets and packets sent with an ack id (the client got
    them live, without an offset), the latter without their ack id. Here neither is replayed, whoever
    wrote them."""
    pa, seen = python_node(redis_server.url, "py:a")
    server = await serve(pa.routes())
    await pa.init()
    forwarder = Forwarder(server.port)
    await forwarder.start()
    try:
        node.connect("c", forwarder.url, transports=["websocket"], acks={"withack": "ok"}, **RECONNECT)
        first = await node.expect("connect", "c")
        sid = first["sid"]
        socket = seen["sockets"][sid]
        pa.emit("a", 1)
        pa.volatile.emit("v", 2)
        answered: list[Any] = []
        socket.emit("withack", 3, callback=lambda *args: answered.append(args))
        pa.local.emit("l", 4)
        await wait_until(lambda: answered == [("ok",)])
        await node.expect("event", "c", event="l")
        forwarder.target = None
        forwarder.cut()
        await node.expect("disconnect", "c")
        await wait_until_async(lambda: raw.keys("sio:session:*"), lambda keys: len(keys) == 1)
        # while away: a volatile broadcast and an emit with an ack id, as a Node server writes them
        for data in (
            '{"packet":{"type":2,"data":["missedvol",5]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true}}}',
            '{"packet":{"type":2,"data":["withAckOnOld",10],"id":3},'
            '"opts":{"rooms":["' + sid + '"],"except":[],"flags":{"timeout":300}}}',
            '{"packet":{"type":2,"data":["missed",6]},' + NO_OPTS + "}",
        ):
            await raw.xadd("socket.io", {"uid": UID_B, "nsp": "/", "type": "3", "data": data})
        forwarder.target = server.port
        back = await node.wait_for(lambda r: r.get("type") == "connect" and r["id"] == "c" and r is not first)
        assert back["recovered"] is True and back["sid"] == sid
        await node.expect("event", "c", event="missed")
        events = [r["event"] for r in node.reports if r.get("type") == "event" and r["id"] == "c"]
        assert events == ["a", "v", "withack", "l", "missed"]  # once each; nothing of the above replayed
    finally:
        await forwarder.close()
        await pa.shutdown(timeout=1)


async def test_a_failed_restore_leaves_the_session(redis_server: RedisProcess, raw: Any, serve: Any, node: Any) -> None:
    """The reference deletes the session key even when the restore then fails (an offset trimmed
    away, or unknown). Here it stays, and a later attempt with a good offset still recovers; a
    malformed offset costs no Redis command; and two servers restoring one session at once cannot
    both have it."""
    pa, seen_a = python_node(redis_server.url, "py:a")
    pb, seen_b = python_node(redis_server.url, "py:b")
    server_a, server_b = await serve(pa.routes()), await serve(pb.routes())
    await pa.init()
    await pb.init()
    monitor = Monitor(redis_server.port)
    await monitor.start()
    try:
        node.connect("c", server_a.url, transports=["websocket"])
        sid = (await node.expect("connect", "c"))["sid"]
        pid = seen_a["sockets"][sid].pid
        pa.emit("e", 1)
        offset = (await node.expect("event", "c", event="e"))["args"][1]
        node.send(cmd="drop", id="c")  # no reconnection: the session waits in Redis
        key = f"sio:session:{pid}".encode()
        await wait_until_async(lambda: raw.keys("sio:session:*"), lambda keys: keys == [key])
        # an offset that is not (or no longer) in the stream: a fresh session, the key stays
        node.connect("bad", server_b.url, transports=["websocket"], auth={"pid": pid, "offset": "1-0"})
        bad = await node.expect("connect", "bad")
        assert bad["sid"] != sid and await raw.exists(key) == 1
        # a malformed one: not even a Redis command
        xranges = len(monitor.commands("XRANGE"))
        node.connect("junk", server_b.url, transports=["websocket"], auth={"pid": pid, "offset": "abc"})
        assert (await node.expect("connect", "junk"))["sid"] != sid
        assert len(monitor.commands("XRANGE")) == xranges and await raw.exists(key) == 1
        # two servers asked for it at once: one restores it, the other starts afresh
        auth = {"pid": pid, "offset": offset}
        node.connect("x", server_a.url, transports=["websocket"], auth=auth)
        node.connect("y", server_b.url, transports=["websocket"], auth=auth)
        x, y = await node.expect("connect", "x"), await node.expect("connect", "y")
        assert sorted([x["sid"] == sid, y["sid"] == sid]) == [False, True]
        winner = seen_a if x["sid"] == sid else seen_b
        assert winner["sockets"][sid].recovered and winner["sockets"][sid].data == {"node": "py:a"}
        assert await raw.exists(key) == 0
    finally:
        await monitor.close()
        await pa.shutdown(timeout=1)
        await pb.shutdown(timeout=1)


# -- a Redis restart ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "valkey"])
async def test_a_redis_restart_costs_no_entry_and_repeats_none(kind: str, serve: Any, node: Any, caplog: Any) -> None:
    """Redis stops and comes back on the same port, empty (no persistence). Each server logs one line
    when the connection is lost and one when it is back, and reads the new stream from where it was:
    what is emitted once Redis is back arrives, in order, once (also what is emitted before the
    server's reader has reconnected)."""
    caplog.set_level(logging.INFO, logger="tornad_io.redis")
    redis_server = RedisProcess(kind)
    await redis_server.start()
    pa, _ = python_node(redis_server.url, "py:a")
    pb, _ = python_node(redis_server.url, "py:b")
    try:
        server_a = await serve(pa.routes())
        await serve(pb.routes())
        await pa.init()
        await pb.init()
        node.connect("a", server_a.url, transports=["websocket"])
        await node.expect("connect", "a")
        for i in range(3):
            pb.emit("n", i)
        await node.wait_for(lambda r: r.get("event") == "n" and r["args"][0] == 2)

        def lines(text: str) -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if r.name == "tornad_io.redis" and r.levelno >= logging.WARNING and text in r.getMessage()
            ]

        redis_server.stop()
        await wait_until(lambda: len(lines("lost")) == 2)  # one per server
        await redis_server.start()
        for i in range(3, 6):  # at once: the readers may still be waiting to reconnect
            pb.emit("n", i)
        await wait_until(lambda: len(lines("is back")) == 2, timeout=20)
        for i in range(6, 10):
            pb.emit("n", i)
        await node.wait_for(lambda r: r.get("event") == "n" and r["args"][0] == 9)
        seen = args_of(node, "a", "n")
        assert [a[0] for a in seen] == list(range(10))  # no gap, no duplicate, in order
        offsets = [tuple(map(int, a[1].split("-"))) for a in seen]
        assert offsets == sorted(offsets) and len(set(offsets)) == 10
        assert len(lines("lost")) == 2 and len(lines("is back")) == 2
        back = lines("is back")[0].getMessage()
        assert redis_server.url.rsplit("/", 1)[0] in back and "reading on after socket.io " in back
        warnings = [r for r in caplog.records if r.name == "tornad_io.redis" and r.levelno >= logging.WARNING]
        assert len(warnings) == 4, [r.getMessage() for r in warnings]  # nothing else was worth a warning
    finally:
        await pa.shutdown(timeout=1)
        await pb.shutdown(timeout=1)
        redis_server.stop()


# -- several streams ---------------------------------------------------------------------------

NAMES = ["/", "/chat", "/admin", "/some-longer-namespace-name", "/ünïcødé", "/emoji-😀", "/" + "x" * 300]


def test_stream_names_are_nodes() -> None:
    """A namespace's stream with stream_count > 1 is the one Node computes (its hashCode, JavaScript's %)."""
    script = (
        "const { hashCode } = require('@socket.io/redis-streams-adapter/dist/util');"
        "const names = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(names.map((n) => [hashCode(n), 'socket.io-' + (hashCode(n) % 4)])));"
    )
    result = subprocess.run(
        [NODE, "-e", script, json.dumps(NAMES)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    expected = json.loads(result.stdout)
    assert [[hash_code(n), stream_for(n, "socket.io", 4)] for n in NAMES] == expected
    assert stream_for("/some-longer-namespace-name", "socket.io", 4) == "socket.io--1"  # the spec's example
    assert stream_for("/chat", "socket.io", 1) == "socket.io"


def test_only_plaintext_writes_binary_as_nodes_json_of_a_buffer() -> None:
    """With only_plaintext (Node's onlyPlaintext) binary is written the way JSON.stringify writes a Buffer."""
    data = {"packet": {"type": 2, "data": ["bin", b"\x01\x02"]}, "opts": {"rooms": [], "except": [], "flags": {}}}
    fields = encode_entry(UID_A, "/", 3, data, only_plaintext=True)
    assert fields["data"] == (
        '{"packet":{"type":2,"data":["bin",{"type":"Buffer","data":[1,2]}]},"opts":{"rooms":[],"except":[],"flags":{}}}'
    )
    assert decode_entry(encode_entry(UID_A, "/", 3, data)) == {"type": 3, "uid": UID_A, "nsp": "/", "data": data}


async def test_several_streams(redis_server: RedisProcess, raw: Any, serve: Any, node: Any) -> None:
    """stream_count=4 next to a Node server with streamCount 4: "/" is on socket.io-3 for both. A namespace
    whose hash is negative goes to socket.io--1, which Node's servers never read; Python servers read it."""
    url = redis_server.url
    io = Server(adapter=redis_streams_adapter(url, stream_count=4), connection_state_recovery=True)
    other = Server(adapter=redis_streams_adapter(url, stream_count=4), connection_state_recovery=True)
    odd = "/some-longer-namespace-name"
    io.of(odd)
    other.of(odd)
    server, other_server = await serve(io.routes()), await serve(other.routes())
    await io.init()
    await other.init()
    na, port = await node_server(url, stream_count=4)
    try:
        node.connect("py", server.url, transports=["websocket"])
        node.connect("js", f"http://127.0.0.1:{port}", transports=["websocket"])
        node.connect("odd", other_server.url + odd, transports=["websocket"])
        for client in ("py", "js", "odd"):
            await node.expect("connect", client)
        await until_node_reads(node, io, "js")
        warm = await raw.xlen("socket.io-3")
        io.emit("from-py", 1)
        na.send(cmd="emit", event="from-js", args=[2])
        io.of(odd).emit("odd", 3)
        for client in ("py", "js"):
            assert is_offset((await node.expect("event", client, event="from-py"))["args"][1])
            assert is_offset((await node.expect("event", client, event="from-js"))["args"][1])
        odd_event = await node.expect("event", "odd", event="odd")
        assert odd_event["args"][0] == 3 and is_offset(odd_event["args"][1])
        assert await raw.xlen("socket.io-3") == warm + 2 and await raw.xlen("socket.io--1") == 1
        assert await raw.exists("socket.io") == 0
    finally:
        await na.close()
        await io.shutdown(timeout=1)
        await other.shutdown(timeout=1)


async def test_without_recovery_it_is_a_plain_cluster_adapter(
    redis_server: RedisProcess, raw: Any, serve: Any, node: Any
) -> None:
    """With connection_state_recovery off the servers still share broadcasts through the stream, but
    their clients get no offsets and no pid (Node's servers with recovery on still give theirs)."""
    io = Server(adapter=redis_streams_adapter(redis_server.url))
    seen: list[Socket] = []
    io.on("connect", seen.append)
    server = await serve(io.routes())
    await io.init()
    na, port = await node_server(redis_server.url)
    try:
        node.connect("py", server.url, transports=["websocket"])
        node.connect("js", f"http://127.0.0.1:{port}", transports=["websocket"])
        await node.expect("connect", "py")
        await node.expect("connect", "js")
        await wait_until(lambda: len(seen) == 1)
        assert seen[0].pid is None
        await until_node_reads(node, io, "js")
        node.reports.clear()
        start = await raw.xlen("socket.io")
        io.emit("e", 1)
        seen[0].emit("own", 2)
        assert (await node.expect("event", "py", event="e"))["args"] == [1]
        assert (await node.expect("event", "py", event="own"))["args"] == [2]
        js = await node.expect("event", "js", event="e")
        assert js["args"][0] == 1 and is_offset(js["args"][1])
        assert await raw.xlen("socket.io") == start + 1  # a socket's own emit is not written without recovery
    finally:
        await na.close()
        await io.shutdown(timeout=1)


async def test_init_fails_clearly_without_redis(caplog: Any) -> None:
    """Nothing listens: ``await io.init()`` gives up after connect_timeout naming the address, and the log
    says once that it cannot connect."""
    from tornad_io.cluster import ClusterConnectionError

    caplog.set_level(logging.INFO, logger="tornad_io.redis")
    port = free_port()
    io = Server(adapter=redis_streams_adapter(f"redis://127.0.0.1:{port}/0", connect_timeout=1.0))
    try:
        with pytest.raises(ClusterConnectionError, match=f"127.0.0.1:{port}"):
            await io.init()
        messages = [r.getMessage() for r in caplog.records if r.name == "tornad_io.redis" and r.levelno >= 30]
        assert len(messages) == 1 and "cannot connect to Redis at" in messages[0]
    finally:
        await io.shutdown(timeout=1)


async def test_sharded_pubsub_next_to_node(redis_server: RedisProcess, serve: Any, node: Any) -> None:
    """use_sharded_pubsub (Node's useShardedPubSub): requests and answers over SPUBLISH/SSUBSCRIBE,
    servers counted with PUBSUB SHARDNUMSUB."""
    io = Server(
        adapter=redis_streams_adapter(redis_server.url, use_sharded_pubsub=True), connection_state_recovery=True
    )

    @io.on_server_side_emit("ping")
    def ping(*args: Any) -> str:
        return "pong from py"

    server = await serve(io.routes())
    await io.init()
    na, port = await node_server(redis_server.url, pubsub="sharded")
    try:
        node.connect("py", server.url, transports=["websocket"], acks={"question": "py"})
        node.connect("js", f"http://127.0.0.1:{port}", transports=["websocket"], acks={"question": "js"})
        sids = {(await node.expect("connect", c))["sid"] for c in ("py", "js")}
        assert await io.sockets.adapter.server_count() == 2
        assert {s.id for s in await io.fetch_sockets()} == sids
        assert await io.server_side_emit_with_ack("ping") == ["pong from node:" + str(port)]
        assert sorted(await io.timeout(5).emit_with_ack("question")) == ["js", "py"]
        na.send(cmd="ssemit", event="ping", ack=True, tag="s")
        assert (await na.expect("ssacked", tag="s"))["responses"] == ["pong from py"]
        na.send(cmd="emitack", event="question", timeout=5000, tag="q")
        assert sorted((await na.expect("acked", tag="q"))["responses"]) == ["js", "py"]
    finally:
        await na.close()
        await io.shutdown(timeout=1)
