"""Several nodes behind a round-robin load balancer, with no sticky sessions (tornad_io.forwarding).

The nodes are examples/cluster/server.py processes with ``--redis`` and ``--advertise``; the
balancer is a real nginx (Debian package) run from docs/deploy/nginx-cluster.conf with only its
placeholders filled in: round-robin, no ``ip_hash``. The clients are the real socket.io-client 4.x
under Node, polling-only, default (polling, then the upgrade) and websocket-only: without
forwarding, a polling client's second request lands on a node that does not know its session.
Also over the wire: a node that is gone, a client posing as a node, and the node tag parser.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis

from tornad_io import _worker
from tornad_io.forwarding import PREAMBLE, Record, parse_address, preamble, read_preamble

from .conftest import ROOT, WAIT
from .test_deployment_proxies import free_port, launch_nginx, program, render, stop, wait_listening
from .test_redis_cluster import server_binary

READY = re.compile(rb"worker (\d+) pid (\d+) ready")
RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 300}
PER_KIND = 20


# -- the pure parts ------------------------------------------------------------------------------


def test_session_ids_name_the_node_and_the_worker() -> None:
    _worker.set_node(_worker.Node("AbCd0123", "t" * 32))
    try:
        assert _worker.owner_prefix() == "AbCd0123" + "0"  # one process: worker 0
        sid = "AbCd0123" + "1" + "x" * 20
        line = f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n".encode()
        assert _worker.owner(line) == ("AbCd0123", 1)
        legacy = "Zz9Zz9Zz" + "0" + "0123456789abcdef" * 2
        assert _worker.owner(f"POST /chat/xhr-polling/{legacy}/send HTTP/1.1\r\n".encode()) == ("Zz9Zz9Zz", 0)
        assert _worker.owner(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n") == (None, None)
        short = "1" + "x" * 20  # an id made by a node that does not forward: no tag to follow
        assert _worker.owner(f"GET /socket.io/?sid={short} HTTP/1.1\r\n".encode()) == (None, None)
    finally:
        _worker.set_node(None)


def test_the_forwarding_line_needs_the_owner_token() -> None:
    line = preamble("s3cret", ("203.0.113.7", 4242)) + b"GET / HTTP/1.1\r\n"
    assert line.startswith(PREAMBLE)
    length, address = read_preamble(line, "s3cret") or (0, None)
    assert line[length:] == b"GET / HTTP/1.1\r\n" and address == ("203.0.113.7", 4242)
    assert read_preamble(line, "other") is None
    assert read_preamble(PREAMBLE + b"s3cret\r\n", "s3cret") is None  # no address: malformed
    record = Record.decode("10.0.0.5 8000 tok")
    assert record is not None and (record.host, record.port, record.token) == ("10.0.0.5", 8000, "tok")
    assert Record.decode("10.0.0.5 port tok") is None
    assert parse_address("10.0.0.5:8001") == ("10.0.0.5", 8001)
    assert parse_address("[::1]:8001") == ("::1", 8001)
    assert parse_address("node-3.internal", 8000) == ("node-3.internal", 8000)
    with pytest.raises(ValueError):
        parse_address("10.0.0.5:http")


# -- nodes as processes --------------------------------------------------------------------------


class ClusterNode:
    """examples/cluster/server.py with --advertise, as a subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: Any) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.pids: dict[int, int] = {}

    def names(self) -> set[str]:
        return {f"python:{self.port}:{pid}" for pid in self.pids.values()}

    def kill(self) -> None:
        for pid in [self.proc.pid, *self.pids.values()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except asyncio.TimeoutError:
                pass
        self.kill()
        if self.proc.returncode is None:
            await self.proc.wait()


async def start_node(redis_url: str, processes: int = 1) -> ClusterNode:
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.join(ROOT, "examples", "cluster", "server.py"),
        "--port", str(port), "--redis", redis_url, "--advertise", f"127.0.0.1:{port}",
        "--processes", str(processes),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=log,
    )  # fmt: skip
    node = ClusterNode(proc, port, log)
    assert proc.stdout is not None
    try:
        while len(node.pids) < processes:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "the node exited"
            match = READY.search(line)
            if match is not None:
                node.pids[int(match.group(1))] = int(match.group(2))
    except BaseException:
        await node.stop()
        log.seek(0)
        raise AssertionError(f"the node did not start: {log.read()[-3000:]!r}") from None
    return node


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A fresh redis-server on 127.0.0.1, for one test."""
    port = free_port()
    proc = subprocess.Popen(
        [server_binary("redis"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.Redis.from_url(url)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            await client.ping()
            break
        except Exception:
            assert time.monotonic() < deadline, "redis-server did not start"
            await asyncio.sleep(0.05)
    await client.aclose()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def workdir() -> Any:
    path = tempfile.mkdtemp(prefix="tornad_io-forward-")
    os.chmod(path, 0o755)  # nginx's workers may run as another user
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


async def start_nginx(workdir: str, nodes: list[ClusterNode]) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    values = {"__LISTEN__": f"127.0.0.1:{port}", "__LOG_DIR__": workdir}
    values.update({f"__NODE_{i + 1}__": f"127.0.0.1:{node.port}" for i, node in enumerate(nodes)})
    return await launch_nginx(workdir, render("nginx-cluster.conf", values), port), port


async def echo_nodes(node: Any, clients: list[str], round: str) -> dict[str, str]:
    """Each client's node (its name), from an echo through it."""
    for i, client in enumerate(clients):
        node.emit(client, "echo", i, ack=True, tag=f"{round}{i}")
    names = {}
    for i, client in enumerate(clients):
        ack = await node.expect("ack", client, tag=f"{round}{i}", timeout=60)
        assert ack["args"][0][1] == i
        names[client] = ack["args"][0][0]
    return names


def reconnected_after(node: Any, client: str, position: int) -> Any:
    def check(report: dict[str, Any]) -> bool:
        if report["type"] != "connect" or report["id"] != client:
            return False
        return any(r is report for r in node.reports[position + 1 :])

    return check


async def test_three_nodes_behind_round_robin_nginx(redis_url: str, node: Any, workdir: str) -> None:
    nodes = [await start_node(redis_url), await start_node(redis_url, processes=2), await start_node(redis_url)]
    nginx, port = await start_nginx(workdir, nodes)
    try:
        url = f"http://127.0.0.1:{port}"
        kinds: dict[str, dict[str, Any]] = {
            "poll": {"transports": ["polling"]},
            "default": {},
            "ws": {"transports": ["websocket"]},
        }
        clients = [f"{kind}{i}" for kind in kinds for i in range(PER_KIND)]
        for client in clients:
            node.connect(client, url, **kinds[client.rstrip("0123456789")], **RECONNECT)
        for client in clients:
            await node.expect("connect", client, timeout=60)
        names = await echo_nodes(node, clients, "a")
        every = set().union(*(n.names() for n in nodes))
        assert set(names.values()) <= every
        for kind in kinds:  # each kind of client is served by several nodes, round-robin
            assert len({names[c] for c in clients if c.startswith(kind)}) >= 2, kind

        # upgrades done: the default clients' polling requests and upgrades crossed nodes
        with open(os.path.join(workdir, "tornad_io-access.log")) as f:
            upstreams = set(re.findall(r"upstream=([\d.:]+)", f.read()))
        assert upstreams == {f"127.0.0.1:{n.port}" for n in nodes}

        node.emit("poll0", "chat", "hello all")
        for client in clients:
            report = await node.expect("event", client, event="chat", timeout=30)
            assert report["args"][0]["text"] == "hello all"
        node.emit("default0", "who", ack=True, tag="who")
        assert len((await node.expect("ack", "default0", tag="who"))["args"][0]) == len(clients)
        assert not [r for r in node.reports if r["type"] in ("disconnect", "connect_error")]

        # a node killed mid-test: its clients reconnect through nginx to the others, the rest go on
        victim = nodes[0]
        victims = [c for c in clients if names[c] in victim.names()]
        assert victims
        positions = {c: len(node.reports) for c in victims}
        victim.kill()
        for client in victims:
            await node.expect("disconnect", client, timeout=WAIT * 3)
            await node.wait_for(reconnected_after(node, client, positions[client]), timeout=WAIT * 3)
        after = await echo_nodes(node, clients, "b")
        assert not set(after.values()) & victim.names()
        node.emit("ws0", "chat", "after the loss")
        for client in clients:
            await node.wait_for(
                lambda r, c=client: (
                    r["type"] == "event"
                    and r["id"] == c
                    and r.get("event") == "chat"
                    and r["args"][0]["text"] == "after the loss"
                ),
                timeout=30,
            )
        # The other nodes' direct WebSockets went on. A request or an upgraded WebSocket that the
        # dead node was relaying to its owner died with it (a held long-poll, an upgraded
        # connection): those clients reconnected, as the echo and the broadcast above show, and
        # docs/cluster.md says so.
        survivors = [c for c in clients if c not in victims and c.startswith("ws")]
        lost = [r for r in node.reports if r["type"] == "disconnect" and r["id"] in survivors]
        assert not lost, " ".join(sorted(r["id"] + ":" + r["reason"] for r in lost))
    finally:
        await stop(nginx)
        for running in nodes:
            await running.stop()


async def start_haproxy(workdir: str, nodes: list[ClusterNode]) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    values = {"__LISTEN__": f"127.0.0.1:{port}"}
    values.update({f"__NODE_{i + 1}__": f"127.0.0.1:{node.port}" for i, node in enumerate(nodes)})
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(render("haproxy-cluster.cfg", values))
    log = os.path.join(workdir, "haproxy.log")
    with open(log, "wb") as out:  # the documented config logs to standard output
        proc = await asyncio.create_subprocess_exec(
            program("haproxy"), "-f", cfg, "-db", stdout=out, stderr=out, start_new_session=True
        )

    def describe() -> str:
        with open(log, errors="replace") as f:
            return f.read()[-2000:]

    await wait_listening(port, proc, describe)
    return proc, f"http://127.0.0.1:{port}"


async def test_polling_clients_behind_round_robin_haproxy(redis_url: str, node: Any, workdir: str) -> None:
    nodes = [await start_node(redis_url) for _ in range(3)]
    haproxy, url = await start_haproxy(workdir, nodes)
    try:
        clients = [f"p{i}" for i in range(PER_KIND)]
        for client in clients:
            node.connect(client, url, transports=["polling"])
        for client in clients:
            await node.expect("connect", client, timeout=60)
        names = await echo_nodes(node, clients, "h")
        assert len(set(names.values())) >= 2
        node.emit("p0", "chat", "through haproxy")
        for client in clients:
            await node.expect("event", client, event="chat", timeout=30)
        assert not [r for r in node.reports if r["type"] in ("disconnect", "connect_error")]
    finally:
        await stop(haproxy)
        for running in nodes:
            await running.stop()
    with open(os.path.join(workdir, "haproxy.log"), errors="replace") as f:
        served_by = set(re.findall(r"tornad_io_nodes/(node\d)", f.read()))
    assert served_by == {"node1", "node2", "node3"}  # round-robin: every node got requests


async def raw_request(port: int, data: bytes) -> bytes:
    """Send *data* on a new connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:  # closed with our bytes unread
        answer = b""
    writer.close()
    return answer


async def test_a_gone_node_is_answered_at_once_and_clients_choose_no_address(redis_url: str) -> None:
    running = await start_node(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        # a node that announced itself, then died: its address refuses
        dead_port = free_port()
        await client.set("socket.io#tornad_io#node#DeadNode", f"127.0.0.1 {dead_port} {'x' * 32}", px=60_000)
        for tag in ("DeadNode", "NoSuchNd"):  # known but gone; never announced (the client's invention)
            sid = tag + "0" + "A" * 20
            started = time.monotonic()
            answer = await raw_request(
                running.port,
                f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            )
            assert answer.startswith(b"HTTP/1.1 400 ")
            assert b'{"code":1,"message":"Session ID unknown"}' in answer
            assert time.monotonic() - started < 1.0  # the forwarder's connect timeout is 1 s: no wait at all
    finally:
        await client.aclose()
        await running.stop()


async def test_a_client_posing_as_a_node_is_refused(redis_url: str) -> None:
    running = await start_node(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = await client.keys("socket.io#tornad_io#node#*")
        assert len(keys) == 1
        record = Record.decode((await client.get(keys[0])).decode())
        assert record is not None and record.port == running.port
        handshake = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
        forged = preamble("0" * 32, ("198.51.100.1", 1)) + handshake
        assert await raw_request(running.port, forged) == b""  # closed, nothing served
        genuine = preamble(record.token, ("198.51.100.1", 1)) + handshake
        answer = await raw_request(running.port, genuine)
        assert answer.startswith(b"HTTP/1.1 200 ") and b'"sid":"' in answer
        # the node keeps serving everyone else
        assert (await raw_request(running.port, handshake)).startswith(b"HTTP/1.1 200 ")
    finally:
        await client.aclose()
        await running.stop()


async def test_the_node_cache_stays_bounded_when_clients_invent_tags() -> None:
    """Tags come from clients: looking up thousands of invented ones keeps the cache at its bound."""
    from tornad_io import forwarding

    class Directory:
        def __init__(self) -> None:
            self.lookups = 0

        async def announce(self, tag: str, record: str, ttl: float) -> None:
            return None

        async def lookup(self, tag: str) -> str | None:
            self.lookups += 1
            return "10.0.0.5 8000 tok" if tag == "RealNode" else None

        async def withdraw(self, tag: str) -> None:
            return None

    directory = Directory()
    forwarder = forwarding.Forwarder(directory, _worker.Node("SelfNode", "t"), ("127.0.0.1", 1))
    assert (await forwarder.resolve("RealNode")) is not None
    for i in range(3 * forwarding.CACHE_MAX):
        assert await forwarder.resolve(f"x{i:07d}") is None
    assert len(forwarder._cache) <= forwarding.CACHE_MAX
    assert directory.lookups == 3 * forwarding.CACHE_MAX + 1
    assert (await forwarder.resolve("RealNode")) is not None  # a live node is kept while unknown tags go
    assert directory.lookups == 3 * forwarding.CACHE_MAX + 1
