"""The Redis Streams adapter (@socket.io/redis-streams-adapter 0.3.1's format) on a real Redis and Valkey.

Mixed clusters: two Node socket.io 4.8 servers with @socket.io/redis-streams-adapter 0.3.1 and two of ours,
with connection state recovery on, and socket.io-client on every server. A client whose connection drops on
one server recovers on another (through a TCP forwarder that the test points at the next server). The
entries and keys a Python server writes are compared byte for byte with the ones captured from Node
(/work/research-csr/SPEC.md §12), and Node's are read back.
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
from tornad_io.cluster import ClusterTimeout, RemoteSocket, redis_streams_adapter

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


async def node_server(url: str) -> tuple[NodeClients, int]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", "streams_node.mjs"),
        url,
        str(port),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    driver = NodeClients(proc)
    await driver.expect("ready", timeout=30)
    return driver, port


class Forwarder:
    """A TCP forwarder on 127.0.0.1 that the test points at one server, then at another.

    :meth:`cut` closes every forwarded connection at once (a network cut: both ends see
    the connection end); the client's next connection goes to the current target.
    """

    def __init__(self, target: int) -> None:
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
            f"c-{name}", f"http://127.0.0.1:{port}", transports=["websocket"], acks={"question": f"answer from c-{name}"}
        )
        sids[name] = (await node.expect("connect", f"c-{name}"))["sid"]
    await wait_until(lambda: len(seen_a["connections"]) == 1 and len(seen_b["connections"]) == 1)
    assert await pa.sockets.adapter.server_count() == 4
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
    await node.wait_for(lambda r: r.get("event") == "red-all" and r["id"] == "c-nb")
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
