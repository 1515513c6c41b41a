"""Several worker processes on one port (tornad_io.serve, processes=2), no external service.

The server runs as a subprocess (examples/cluster/server.py --processes 2, and
examples/chatroom/app.py --processes 2 for the 0.6 generation); each worker
reports ``worker I pid P ready`` on stdout. Clients are the real
socket.io-client 4.x (the ``node`` fixture) and raw HTTP for 0.6 xhr-polling.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket as pysocket
import sys
import tempfile
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from tornad_io._worker import OWNER_ALPHABET, owner_of
from tornad_io.engineio import legacy_codec

from .conftest import ROOT, WAIT
from .test_redis_cluster import redis_url  # noqa: F401  # the fixture: a fresh Redis and Valkey

CLIENTS = 100
RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 200}
READY = re.compile(rb"worker (\d+) pid (\d+) ready")


def free_port() -> int:
    with pysocket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """The example server as a subprocess, and the worker pids it reported."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.pids: dict[int, int] = {}

    async def next_ready(self, timeout: float = 30) -> tuple[int, int]:
        """The next ``worker I pid P ready`` line (a worker started or restarted)."""
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            assert line, "the server exited"
            match = READY.search(line)
            if match is not None:
                index, pid = int(match.group(1)), int(match.group(2))
                self.pids[index] = pid
                return index, pid

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for pid in self.pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


async def start_cluster(script: str = "cluster", processes: int = 2, extra: list[str] | None = None) -> Cluster:
    port = free_port()
    log = tempfile.TemporaryFile()  # the server's log, shown if it does not start
    if script == "cluster":
        argv = [os.path.join(ROOT, "examples", "cluster", "server.py"), "--port", str(port)]
    else:
        argv = [os.path.join(ROOT, "examples", "chatroom", "app.py"), "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        "--processes",
        str(processes),
        *(extra or []),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    cluster = Cluster(proc, port)
    if script == "cluster":
        try:
            while len(cluster.pids) < processes:
                await cluster.next_ready()
        except BaseException:
            await cluster.stop()
            log.seek(0)
            raise AssertionError(f"the workers did not start: {log.read()[-3000:]!r}") from None
    return cluster


@pytest.fixture
async def cluster() -> Any:
    running = await start_cluster()
    yield running
    await running.stop()


def test_owner_of_reads_the_request_line() -> None:
    sid = "1" + "A" * 20
    assert owner_of(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n".encode()) == 1
    assert owner_of(f"POST /socket.io/?sid={sid}&EIO=4 HTTP/1.1\r\nHost: x\r\n".encode()) == 1
    assert owner_of(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n") is None  # a handshake
    assert owner_of(b"GET /socket.io/?EIO=4&sid=" + b"x" * 20 + b" HTTP/1.1\r\n") is None  # a one-process id
    legacy = "b" + "0123456789abcdef" * 2
    assert owner_of(f"GET /chat/xhr-polling/{legacy}/1700000000000 HTTP/1.1\r\n".encode()) == OWNER_ALPHABET.index("b")
    assert owner_of(f"POST /chat/xhr-polling/{legacy}/send HTTP/1.1\r\n".encode()) == OWNER_ALPHABET.index("b")


async def connect_all(node: Any, url: str, opts: dict[str, Any], count: int = CLIENTS) -> None:
    for i in range(count):
        node.connect(f"c{i}", url, **opts)
    for i in range(count):
        await node.expect("connect", f"c{i}", timeout=60)


async def connect_on_both(node: Any, url: str, opts: dict[str, Any], at_least: int = 20) -> tuple[int, dict[str, str]]:
    """Connect *at_least* clients, then more (10 at a time, at most 100) until both workers have some:
    which worker accepts a handshake is the kernel's choice. The count and each client's worker."""
    await connect_all(node, url, opts, at_least)
    count, names = at_least, await echo_nodes(node, at_least, "first")
    while len(set(names.values())) < 2 and count < CLIENTS:
        for i in range(count, count + 10):
            node.connect(f"c{i}", url, **opts)
            await node.expect("connect", f"c{i}", timeout=60)
        count += 10
        names = await echo_nodes(node, count, f"more{count}")
    assert len(set(names.values())) == 2
    return count, names


async def echo_nodes(node: Any, count: int, round: str) -> dict[str, str]:
    """Each client's worker (its node name), from an echo through it."""
    for i in range(count):
        node.emit(f"c{i}", "echo", i, ack=True, tag=f"{round}{i}")
    names = {}
    for i in range(count):
        ack = await node.expect("ack", f"c{i}", tag=f"{round}{i}", timeout=60)
        assert ack["args"][0][1] == i
        names[f"c{i}"] = ack["args"][0][0]
    return names


@pytest.mark.parametrize(
    "transports",
    [["polling"], None, ["websocket"]],
    ids=["polling-only", "default", "websocket-only"],
)
async def test_hundred_clients_on_two_workers(cluster: Cluster, node: Any, transports: list[str] | None) -> None:
    opts: dict[str, Any] = {} if transports is None else {"transports": transports}
    await connect_all(node, cluster.url, opts)
    names = await echo_nodes(node, CLIENTS, "e")
    expected = {f"python:{cluster.port}:{pid}" for pid in cluster.pids.values()}
    assert set(names.values()) <= expected
    assert len(set(names.values())) == 2  # both workers serve clients

    # a worker's io.emit reaches every client, on both workers
    node.emit("c0", "chat", "hello all")
    for i in range(CLIENTS):
        report = await node.expect("event", f"c{i}", event="chat", timeout=30)
        assert report["args"][0]["text"] == "hello all"

    # fetch_sockets from one worker sees all of them; server-side emit with acks reaches the other worker
    node.emit("c0", "who", ack=True, tag="who")
    who = (await node.expect("ack", "c0", tag="who"))["args"][0]
    assert len(who) == CLIENTS and {s["node"] for s in who} == set(names.values())
    node.emit("c1", "nodes", ack=True, tag="nodes")
    assert (await node.expect("ack", "c1", tag="nodes"))["args"][0] == sorted(expected)
    assert not [r for r in node.reports if r["type"] in ("disconnect", "connect_error")]


async def test_broadcast_acks_rooms_and_disconnects_span_the_workers(cluster: Cluster, node: Any) -> None:
    count, _ = await connect_on_both(node, cluster.url, {"transports": ["polling"]})
    # a broadcast with acks from one worker: every client of both answers
    node.emit("c0", "ask", "ready?", ack=True, tag="ask")
    assert (await node.expect("ack", "c0", tag="ask"))["args"] == [count]
    # sockets_join on every worker, then an emit to the room
    node.emit("c1", "rally", "everyone")
    for i in range(count):
        await node.expect("event", f"c{i}", event="rallied")
    node.emit("c2", "who", ack=True, tag="who")
    assert len((await node.expect("ack", "c2", tag="who"))["args"][0]) == count
    # disconnect_sockets from one worker closes the clients of both
    node.emit("c3", "kick")
    for i in range(count):
        await node.expect("disconnect", f"c{i}", reason="io server disconnect")


async def test_a_redis_adapter_is_used_when_given(redis_url: str, node: Any) -> None:  # noqa: F811 - the fixture
    """--processes 2 --redis: each worker is a node of the Redis cluster, with a uid of its own."""
    running = await start_cluster(extra=["--redis", redis_url])
    try:
        count, by_client = await connect_on_both(node, running.url, {"transports": ["polling"]})
        names = set(by_client.values())
        node.emit("c0", "who", ack=True, tag="who")
        assert len((await node.expect("ack", "c0", tag="who"))["args"][0]) == count
        node.emit("c0", "nodes", ack=True, tag="nodes")
        assert (await node.expect("ack", "c0", tag="nodes"))["args"][0] == sorted(names)
    finally:
        await running.stop()


async def test_a_killed_worker_is_restarted_and_its_clients_reconnect(cluster: Cluster, node: Any) -> None:
    count, names = await connect_on_both(node, cluster.url, {"transports": ["polling"], **RECONNECT})
    victim_pid = int(names["c0"].rsplit(":", 1)[1])  # the worker of the first client
    victim_index = next(index for index, pid in cluster.pids.items() if pid == victim_pid)
    victims = {c for c, name in names.items() if name.endswith(f":{victim_pid}")}
    os.kill(victim_pid, signal.SIGKILL)
    index, pid = await cluster.next_ready()
    assert index == victim_index and pid != victim_pid
    for client in victims:
        gone = await node.expect("disconnect", client, timeout=WAIT)
        position = next(i for i, r in enumerate(node.reports) if r is gone)

        def reconnected(report: dict[str, Any], client: str = client, position: int = position) -> bool:
            if report["type"] != "connect" or report["id"] != client:
                return False
            return any(r is report for r in node.reports[position + 1 :])

        await node.wait_for(reconnected, timeout=WAIT)
    after = await echo_nodes(node, count, "b")
    assert f"python:{cluster.port}:{victim_pid}" not in after.values()
    node.emit("c0", "who", ack=True, tag="who")
    assert len((await node.expect("ack", "c0", tag="who"))["args"][0]) == count


async def test_sigterm_stops_every_worker(cluster: Cluster, node: Any) -> None:
    await connect_all(node, cluster.url, {"transports": ["websocket"]}, 10)
    assert cluster.proc.stdout is not None
    cluster.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(cluster.proc.wait(), 20) == 0
    rest = await asyncio.wait_for(cluster.proc.stdout.read(), 5)
    assert b"all workers stopped" in rest
    reasons = {(await node.expect("disconnect", f"c{i}"))["reason"] for i in range(10)}
    assert reasons == {"transport close"}  # what io.shutdown() gives WebSocket clients (test_hardening.py)
    for pid in cluster.pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def fetch(url: str, method: str = "GET", body: str | None = None) -> HTTPResponse:
    return await AsyncHTTPClient(force_instance=True).fetch(
        url, method=method, body=body, raise_error=False, request_timeout=WAIT
    )


async def test_legacy_xhr_polling_under_two_workers() -> None:
    chat = await start_cluster("chatroom")
    try:
        base = f"{chat.url}/chat"
        for _ in range(100):  # until both workers listen
            try:
                with pysocket.create_connection(("127.0.0.1", chat.port), timeout=1):
                    break
            except OSError:
                await asyncio.sleep(0.05)
        owners = set()
        for n in range(8):
            response = await fetch(f"{base}/xhr-polling//1700000000000")
            assert response.code == 200
            body = response.body.decode()
            sid = legacy_codec.decode_frames(body)[0]
            assert re.fullmatch(r"[01][0-9a-f]{32}", sid)  # the worker, then the 0.6 hex id
            owners.add(sid[0])
            rest = body[len(legacy_codec.frame(sid)) :]
            if not rest:
                rest = (await fetch(f"{base}/xhr-polling/{sid}/1700000000001")).body.decode()
            assert "welcome" in rest
            # each request may land on either worker: the one that does not own the session hands it over
            for k in range(3):
                text = f"hello {n}.{k}"
                data = legacy_codec.encode_message(text)
                post = await fetch(f"{base}/xhr-polling/{sid}/send", "POST", "data=" + data)
                assert (post.code, post.body) == (200, b"ok")
                for _ in range(20):
                    poll = await fetch(f"{base}/xhr-polling/{sid}/17000000001{k}")
                    assert poll.code == 200
                    if text in poll.body.decode():
                        break
                else:
                    raise AssertionError(f"{text!r} never came back")
    finally:
        await chat.stop()
