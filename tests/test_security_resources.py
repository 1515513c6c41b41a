"""Attacks on memory, CPU and the log, reproduced over the wire (issue: secure by default).

The server runs in this process (or, for the file-descriptor test, in a child
process), so its memory is read from /proc and its CPU from the process clock.
Each test also checks that the attacker's traffic leaves other clients served.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket as pysocket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import quote

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tornad_io import ConnectionRefused, Server, Socket, SocketIOServer
from tornad_io.engineio import legacy_codec
from tornad_io.socket_io import SocketIOHandler
from tornad_io.websocket.frames import FrameParser

from .conftest import ROOT, WAIT, wait_until
from .test_hardening import raw_websocket_that_never_reads, rss_kib


async def fetch(url: str, method: str = "GET", body: str | bytes | None = None, **kw: Any) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT, **kw)


async def joined(port: int, nsp: str = "", path: str = "/socket.io/") -> WebSocketClientConnection:
    """A raw Engine.IO v4 WebSocket that has joined namespace *nsp* (the main one by default)."""
    conn = await websocket_connect(f"ws://127.0.0.1:{port}{path}?EIO=4&transport=websocket")
    await asyncio.wait_for(conn.read_message(), WAIT)
    conn.write_message("40" + (nsp + "," if nsp else ""))
    answer = await asyncio.wait_for(conn.read_message(), WAIT)
    assert isinstance(answer, str) and answer.startswith("40"), answer
    return conn


async def ack_roundtrip(port: int, path: str = "/socket.io/") -> Any:
    """A bystander's round trip: emit "echo" with an ack and return the answer."""
    conn = await joined(port, path=path)
    conn.write_message('4211["echo","still served"]')
    answer = await asyncio.wait_for(conn.read_message(), WAIT)
    conn.close()
    return answer


def echo_server(**options: Any) -> Server:
    io = Server(**options)

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> Any:
        return args

    return io


# -- memory held by one client -------------------------------------------------------------


def stream_request(port: int, path: str) -> pysocket.socket:
    """A 0.6 streaming GET from a client with a tiny receive window that never reads."""
    sock = pysocket.socket()
    sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


async def test_legacy_streams_cut_off_a_client_that_never_reads(serve: Any) -> None:
    closed: asyncio.Queue[str] = asyncio.Queue()

    class Feed(SocketIOHandler):
        server_options = {"max_buffered_bytes": 300_000, "legacy_heartbeat_interval": 60}

        def on_close(self) -> None:
            closed.put_nowait(self.protocol)

    server = await serve(tornado.web.Application([Feed.routes("feed")]))
    io = Feed.io()
    stalled = [stream_request(server.port, f"/feed/{t}/") for t in ("htmlfile", "xhr-multipart") * 2]
    await wait_until(lambda: len(io.sockets.sockets) == 4)
    before = rss_kib()
    payload = "z" * 20_000
    for i in range(2_500):  # 50 MB to each of 4 clients: 200 MB held without the rule
        io.emit("message", payload)
        if i % 25 == 0:
            await asyncio.sleep(0)  # let the writes go
            if closed.qsize() == 4:
                break
    gone = sorted([await asyncio.wait_for(closed.get(), WAIT) for _ in range(4)])
    assert gone == ["htmlfile", "htmlfile", "xhr-multipart", "xhr-multipart"]
    growth = rss_kib() - before
    print(f"figure: 0.6 streams, 4 non-readers x 50 MB offered: RSS +{growth} KiB")
    assert growth < 40_000, f"RSS grew by {growth} KiB"
    # the server closed each connection, freeing what waited for it: reading now ends in EOF
    for sock in stalled:
        sock.settimeout(WAIT)
        while sock.recv(1 << 20):
            pass
        sock.close()
    io.on("echo", lambda socket, *args: args)
    assert json.loads((await ack_roundtrip(server.port, "/feed/"))[4:]) == ["still served"]


async def test_binary_attachments_of_one_packet_are_capped(serve: Any) -> None:
    io = echo_server(max_http_buffer_size=1_000_000)
    server = await serve(io.routes())
    before = rss_kib()
    attackers = [await joined(server.port) for _ in range(3)]
    head = '45100-["up",' + ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(100)) + "]"
    chunk = b"\x00" * 900_000  # each under max_http_buffer_size; together far above it
    for conn in attackers:
        conn.write_message(head)
        for _ in range(100):
            try:
                await conn.write_message(chunk, binary=True)
            except Exception:  # noqa: BLE001 - the server closed the connection: what we expect
                break
    for conn in attackers:
        assert await asyncio.wait_for(conn.read_message(), WAIT) is None  # closed by the server
    growth = rss_kib() - before
    print(f"figure: attachments, 3 connections x 100 x 0.9 MB offered: RSS +{growth} KiB")
    assert growth < 30_000, f"RSS grew by {growth} KiB"  # 3 x 100 x 0.9 MB were held before
    assert json.loads((await ack_roundtrip(server.port))[4:]) == ["still served"]


async def test_dynamic_namespaces_are_freed_when_empty(serve: Any) -> None:
    io = Server()
    tenants = io.of(re.compile(r"^/tenant-[0-9a-f]+$"))

    @tenants.use
    def only_even(socket: Socket) -> None:
        if int(socket.nsp.name.rsplit("-", 1)[1], 16) % 2:
            raise ConnectionRefused("odd tenant")

    server = await serve(io.routes())
    conn = await joined(server.port)
    count = 4_000
    for start in range(0, count, 200):
        for i in range(start, start + 200):
            conn.write_message(f"40/tenant-{i:x},")
        for _ in range(200):
            answer = await asyncio.wait_for(conn.read_message(), WAIT)
            assert isinstance(answer, str) and answer[:2] in ("40", "44"), answer
            if answer.startswith("40"):
                conn.write_message("41" + answer[2:].split(",", 1)[0] + ",")
    await wait_until(lambda: not tenants.children)
    # a client that leaves while connected to many namespaces frees them too
    for i in range(0, 200, 2):
        conn.write_message(f"40/tenant-{i:x},")
    await wait_until(lambda: len(tenants.children) == 100)
    conn.close()
    await wait_until(lambda: not tenants.children)
    # and the names work again afterwards
    again = await joined(server.port, "/tenant-2")
    await wait_until(lambda: list(tenants.children) == ["/tenant-2"])
    again.close()


@pytest.mark.slow  # about 4 s: 300 connections one after another
async def test_async_on_open_then_client_leaves_runs_on_close(serve: Any) -> None:
    gate = asyncio.Event()
    started: list[int] = []
    closed: list[int] = []

    class Slow(SocketIOHandler):
        async def on_open(self, *args: Any, **kwargs: Any) -> None:
            started.append(1)
            await gate.wait()

        def on_close(self) -> None:
            closed.append(1)

    server = await serve(tornado.web.Application([Slow.routes("slow")]))
    count = 300
    for _ in range(count):
        conn = await websocket_connect(f"ws://127.0.0.1:{server.port}/slow/?EIO=4&transport=websocket")
        await asyncio.wait_for(conn.read_message(), WAIT)
        conn.write_message("40")
        await wait_until(lambda n=len(started) + 1: len(started) >= n)  # type: ignore[misc]
        conn.close()  # gone before on_open returns
    await wait_until(lambda: not Slow.io().engine.sessions)
    gate.set()
    await wait_until(lambda: len(closed) == count)
    assert not Slow._connections  # nothing kept for connections that never completed


async def test_corked_bursts_count_against_max_buffered_bytes(serve: Any) -> None:
    io = Server(max_buffered_bytes=1_000_000, ping_interval=60)
    gone: asyncio.Queue[str] = asyncio.Queue()
    io.on("disconnect", lambda socket, reason: gone.put_nowait(reason))
    server = await serve(io.routes())
    stalled = await raw_websocket_that_never_reads(server.port)
    await wait_until(lambda: len(io.sockets.sockets) == 1)
    (socket,) = io.sockets.sockets.values()
    before = rss_kib()
    payload = "c" * 100_000
    for _ in range(100):  # 10 MB in one loop iteration, against a 1 MB cap
        socket.emit("burst", payload)
    assert await asyncio.wait_for(gone.get(), WAIT) == "transport error"
    print(f"figure: corked burst of 10 MB against a 1 MB cap: RSS +{rss_kib() - before} KiB")
    assert rss_kib() - before < 20_000
    stalled.close()


async def test_socketio_server_refuses_huge_bodies_before_reading_them() -> None:
    probe = pysocket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    class Plain(SocketIOHandler):
        pass

    app = tornado.web.Application(
        [Plain.routes("plain")], socket_io_port=port, socket_io_address="127.0.0.1", enabled_protocols=["xhr-polling"]
    )
    server = SocketIOServer(app, auto_start=False)
    server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /plain/xhr-polling/0123/send HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 90000000\r\n\r\n"
        )
        await writer.drain()
        # answered (and closed) without waiting for the 90 MB body
        status = await asyncio.wait_for(reader.read(), WAIT)
        assert status == b"" or status.startswith(b"HTTP/1.1 400")
        writer.close()
    finally:
        server.stop()


# -- CPU ---------------------------------------------------------------------------------------


async def test_deep_nesting_is_decoded_without_recursion(serve: Any, caplog: Any) -> None:
    io = echo_server()
    got: list[int] = []

    @io.on("deep")
    def deep(socket: Socket, value: Any) -> None:
        depth = 0
        while isinstance(value, list) and value:
            value, depth = value[0], depth + 1
        got.append(depth)

    server = await serve(io.routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    body = '450-["deep",' + "[" * 1000 + "1" + "]" * 1000 + "]"  # 2 KB, below orjson's depth limit
    cpu = time.process_time()
    with caplog.at_level(logging.ERROR):
        for _ in range(20):
            post = await fetch(url, "POST", body.encode())
            assert (post.code, post.body) == (200, b"ok")
    cpu = time.process_time() - cpu
    assert got == [1000] * 20
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    print(f"figure: deep nesting, {cpu / 20 * 1000:.1f} ms CPU per request")
    assert cpu < 2.0, f"{cpu:.2f} s of CPU for 20 requests"
    assert json.loads((await ack_roundtrip(server.port))[4:]) == ["still served"]


async def test_an_ack_too_deep_to_encode_is_logged_and_the_connection_goes_on(serve: Any, caplog: Any) -> None:
    io = echo_server()
    server = await serve(io.routes())
    conn = await joined(server.port)
    with caplog.at_level(logging.ERROR, logger="tornad_io"):
        conn.write_message('421["echo",' + "[" * 400 + "]" * 400 + "]")  # orjson encodes 255 levels at most
        conn.write_message('422["echo","next"]')
        assert await asyncio.wait_for(conn.read_message(), WAIT) == '432["next"]'  # no answer to 1, 2 goes on
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'echo'" in errors[0] and "acknowledgement" in errors[0]
    conn.close()


def client_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81]) + (
        bytes([0x80 | n])
        if n < 126
        else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        if n < 65536
        else bytes([0x80 | 127]) + n.to_bytes(8, "big")
    )
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def test_frame_parser_feeding_is_linear() -> None:
    frame = client_frame(b"x" * 1_000_000)

    def cost(data: bytes) -> float:
        parser = FrameParser(10_000_000)
        start = time.process_time()
        out: list[tuple[int, bytes]] = []
        for i in range(0, len(data), 4):
            out += parser.feed(data[i : i + 4])
        assert out == [(1, b"x" * 1_000_000)]
        spent = time.process_time() - start
        print(f"figure: 1 MB frame fed in 4-byte reads: {spent:.3f} s CPU")
        return spent

    # 250 000 reads of 4 bytes: linear feeding takes about 0.1 s here; copying the backlog
    # on every read (the old parser) took several seconds.
    assert cost(frame) < 1.0


async def test_websocket_frame_in_tiny_segments_costs_little_cpu(serve: Any) -> None:
    io = Server(max_http_buffer_size=2_000_000)
    got: asyncio.Queue[int] = asyncio.Queue()
    io.on("big", lambda socket, text: got.put_nowait(len(text)))
    server = await serve(io.routes())
    text = "y" * 1_000_000
    frame = client_frame(('42["big","' + text + '"]').encode())
    script = (
        "import socket,sys,time\n"
        "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n"
        "s.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\n"
        "import base64,os\n"
        "key=base64.b64encode(os.urandom(16)).decode()\n"
        "s.sendall(('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n'"
        "'Connection: Upgrade\\r\\nSec-WebSocket-Key: '+key+'\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n').encode())\n"
        "buf=b''\n"
        "while b'\"maxPayload\"' not in buf: buf+=s.recv(4096)\n"
        "def frame(p):\n"
        "    m=os.urandom(4); return bytes([0x81,0x80|len(p)])+m+bytes(b^m[i%4] for i,b in enumerate(p))\n"
        "s.sendall(frame(b'40'))\n"
        "data=sys.stdin.buffer.read()\n"
        "for i in range(0,len(data),256):\n"
        "    s.send(data[i:i+256]); time.sleep(0.00005)\n"
        "s.recv(1)\n"
    )
    cpu = time.process_time()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(server.port), stdin=asyncio.subprocess.PIPE
    )
    assert child.stdin is not None
    child.stdin.write(frame)
    child.stdin.close()
    assert await asyncio.wait_for(got.get(), 60) == len(text)
    cpu = time.process_time() - cpu
    child.kill()
    await child.wait()
    # about 4 000 reads of 256 bytes; with a copy of the backlog per read this took several seconds
    print(f"figure: 1 MB frame in 256-byte segments over the wire: server CPU {cpu:.3f} s")
    assert cpu < 1.5, f"{cpu:.2f} s of server CPU"


async def test_legacy_post_with_too_many_frames_is_refused(serve: Any) -> None:
    messages: list[Any] = []

    class Sink(SocketIOHandler):
        server_options = {"legacy_poll_duration": 0.2}

        def on_message(self, message: Any) -> None:
            messages.append(message)

    server = await serve(tornado.web.Application([Sink.routes("sink")]))
    base = f"{server.url}/sink/xhr-polling"
    sid = legacy_codec.decode_frames((await fetch(f"{base}//1")).body.decode())[0]
    cpu = time.process_time()
    flood = await fetch(f"{base}/{sid}/send", "POST", "data=" + "~m~1~m~a" * 124_000)
    cpu = time.process_time() - cpu
    assert (flood.code, flood.body) == (413, b"more than 10000 frames in one payload")
    print(f"figure: 0.6 POST of 124 000 frames refused in {cpu * 1000:.1f} ms CPU")
    assert cpu < 0.5, f"{cpu:.2f} s of CPU for one POST"
    assert messages == []
    ok = await fetch(f"{base}/{sid}/send", "POST", "data=" + quote(legacy_codec.encode_message("fine")))
    assert ok.code == 200 and messages == ["fine"]


# -- the log -------------------------------------------------------------------------------------


async def test_client_chosen_names_cannot_forge_log_lines(serve: Any, caplog: Any) -> None:
    io = Server()

    def matcher(name: str, auth: dict[str, Any]) -> bool:
        raise RuntimeError("matcher failed")

    io.of(matcher)
    refusing = io.of(re.compile(r"^/r.*", re.S))

    @refusing.use
    def refuse(socket: Socket) -> None:
        raise RuntimeError("refused " + socket.nsp.name)

    @io.on_any
    def boom(socket: Socket, event: Any, *args: Any) -> None:
        raise RuntimeError("handler failed")

    server = await serve(io.routes())
    conn = await joined(server.port)
    forged = "\n2026-11-25 CRITICAL root: disk wiped \x1b[31m"
    with caplog.at_level(logging.DEBUG, logger="tornad_io"):
        conn.write_message(f"40/x{forged},")  # the matcher fails: logged with the name
        conn.write_message(f"40/r{forged},")  # refused by middleware: logged with the name
        for _ in range(2):
            await asyncio.wait_for(conn.read_message(), WAIT)
        conn.write_message(f"42{json.dumps(['ev' + forged])}")  # a catch-all handler fails
        await wait_until(lambda: any("handler" in r.getMessage() for r in caplog.records))
    messages = [r.getMessage() for r in caplog.records]
    assert any("disk wiped" in m for m in messages)  # the names were logged …
    for message in messages:  # … escaped: no line break, no terminal escape, bounded
        assert "\n" not in message and "\x1b" not in message, message
        assert len(message) < 400
    conn.close()


FD_SERVER = """
import asyncio, resource, sys
sys.path.insert(0, sys.argv[1])
import tornado.web
from tornad_io import HTTPServer, Server

async def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    io = Server()
    server = HTTPServer(tornado.web.Application(io.routes()))
    server.listen(0, address="127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    print(port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow  # about 3 s: waits for the accept back-off
async def test_running_out_of_descriptors_backs_off_and_recovers() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", FD_SERVER, ROOT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        held = []
        for _ in range(100):  # more connections than the process may have descriptors
            sock = pysocket.create_connection(("127.0.0.1", port))
            held.append(sock)
        start_cpu, start = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(2.0)  # a measurement window, not a wait for an event
        used = (cpu_seconds(proc.pid) - start_cpu) / (time.monotonic() - start)
        print(f"figure: out of descriptors: {used:.1%} CPU")
        assert used < 0.25, f"{used:.0%} CPU while out of descriptors"
        for sock in held:
            sock.close()
        # descriptors free again: the server accepts and answers
        deadline = time.monotonic() + WAIT
        while True:
            response = await fetch(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling")
            if response.code == 200 or time.monotonic() > deadline:
                break
        assert response.code == 200
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=WAIT)
    errors = [line for line in err.splitlines() if "cannot accept connections" in line]
    tracebacks = err.count("Traceback")
    assert len(errors) >= 1 and tracebacks == 0, err[-2000:]
    print(f"figure: out of descriptors: {len(err.splitlines())} log lines")
    assert len(err.splitlines()) < 50
