"""Hostile input, slow and vanishing peers, limits, shutdown, and nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import socket as pysocket
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from tornado.iostream import IOStream
from tornado.websocket import websocket_connect

from tornad_io import Server, Socket

from .conftest import WAIT


async def fetch(url: str, method: str = "GET", body: bytes | None = None, **kw: Any) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT, **kw)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def tracking_server(**options: Any) -> tuple[Server, dict[str, Any]]:
    io = Server(**options)
    seen: dict[str, Any] = {"connected": asyncio.Queue(), "disconnected": asyncio.Queue(), "got": []}
    io.on("connect", seen["connected"].put_nowait)
    io.on("disconnect", lambda socket, reason: seen["disconnected"].put_nowait((socket.id, reason)))

    @io.on("n")
    def n(socket: Socket, value: int) -> None:
        seen["got"].append(value)

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return io, seen


# -- nothing lost ------------------------------------------------------------------


async def test_upgrade_under_traffic_server_to_client(serve: Any, node: Any) -> None:
    io, seen = tracking_server()
    count = 10_000
    server = await serve(io.routes())
    node.connect("a", server.url)  # polling first, then the upgrade
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    upgraded_during = False
    for start in range(0, count, 50):
        for i in range(start, start + 50):
            socket.emit("n", i)
        if socket.transport == "websocket" and start < count - 50:
            upgraded_during = upgraded_during or start > 0
        await asyncio.sleep(0)  # let the upgrade make progress between bursts
    await node.wait_for(lambda r: r.get("event") == "n" and r["args"] == [count - 1], timeout=60)
    received = [r["args"][0] for r in node.reports if r.get("type") == "event" and r.get("event") == "n"]
    assert received == list(range(count))  # exactly once, in order
    assert socket.transport == "websocket"
    assert any(r.get("type") == "upgrade" for r in node.reports)


async def test_upgrade_under_traffic_client_to_server(serve: Any, node: Any) -> None:
    io, seen = tracking_server()
    count = 10_000
    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    node.send(cmd="burst", id="a", event="n", count=count)  # sent while the client upgrades
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while len(seen["got"]) < count:
        assert loop.time() < deadline, f"{len(seen['got'])} of {count} arrived"
        await asyncio.sleep(0.05)
    assert seen["got"] == list(range(count))
    await node.expect("upgrade", "a")


# -- slow consumers -----------------------------------------------------------------


async def raw_websocket_that_never_reads(port: int) -> pysocket.socket:
    """A client that completes the WebSocket handshake, joins "/", then stops reading."""
    conn = await websocket_connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    await conn.read_message()
    conn.write_message("40")
    await conn.read_message()
    # Stop reading: detach Tornado's reader by pausing the underlying socket's reads.
    stream = conn.protocol.stream  # type: ignore[union-attr]
    raw: pysocket.socket = stream.socket
    raw.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 4096)  # a small window: the kernel holds little
    stream.io_loop.remove_handler(raw)
    return raw


async def test_slow_websocket_consumer_is_disconnected_and_memory_stays_bounded(serve: Any, node: Any) -> None:
    io, seen = tracking_server(max_buffered_bytes=200_000, ping_interval=60)
    server = await serve(io.routes())
    node.connect("reader", server.url, transports=["websocket"])
    await node.expect("connect", "reader")
    reader_socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    stalled = [await raw_websocket_that_never_reads(server.port) for _ in range(100)]
    stalled_ids = set()
    for _ in range(100):
        stalled_ids.add((await asyncio.wait_for(seen["connected"].get(), WAIT)).id)
    before = rss_kib()
    # the kernel absorbs about 4 MB per connection before the server's own buffer grows
    payload = "x" * 20_000
    rounds = 300
    for i in range(rounds):
        io.emit("news", i, payload)
        if i % 20 == 0:
            await asyncio.sleep(0.01)  # let sockets write
    # the reader got everything, in order
    await node.wait_for(lambda r: r.get("event") == "news" and r["args"][0] == rounds - 1, timeout=60)
    got = [r["args"][0] for r in node.reports if r.get("event") == "news"]
    assert got == list(range(rounds))
    # every stalled client was cut off for not reading
    gone = {}
    while len(gone) < 100:
        sid, reason = await asyncio.wait_for(seen["disconnected"].get(), WAIT)
        gone[sid] = reason
    assert set(gone) == stalled_ids and set(gone.values()) == {"transport error"}
    assert reader_socket.connected
    growth = rss_kib() - before
    # without the cap: 100 clients x 300 x 20 KB = 600 MB would be held by the process
    assert growth < 100_000, f"RSS grew by {growth} KiB"
    for raw in stalled:
        raw.close()


async def test_polling_client_that_never_polls_is_disconnected(serve: Any) -> None:
    io, seen = tracking_server(max_buffered_bytes=50_000, ping_interval=60)
    server = await serve(io.routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    socket = await asyncio.wait_for(seen["connected"].get(), WAIT)
    for i in range(100):
        socket.emit("big", i, "y" * 1000)
    assert await asyncio.wait_for(seen["disconnected"].get(), WAIT) == (socket.id, "transport error")
    assert (await fetch(url)).code == 400


async def test_volatile_is_dropped_not_queued(serve: Any) -> None:
    io, seen = tracking_server(ping_interval=60)
    server = await serve(io.routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    await asyncio.wait_for(seen["connected"].get(), WAIT)
    io.volatile.emit("lossy", 1)  # nobody is polling: dropped
    io.emit("kept", 2)
    body = (await fetch(url)).body.decode()
    assert body == '42["kept",2]'


# -- limits -----------------------------------------------------------------------


async def test_max_connections(serve: Any) -> None:
    io, _ = tracking_server(max_connections=2)
    server = await serve(io.routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    assert (await fetch(url)).code == 200
    assert (await fetch(url)).code == 200
    full = await fetch(url)
    assert full.code == 503 and json.loads(full.body)["message"] == "Too many connections"
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
    assert info.value.code == 503


async def test_handshake_rate_per_address(serve: Any) -> None:
    io, _ = tracking_server(handshake_rate_per_ip=5)
    server = await serve(io.routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    codes = [(await fetch(url)).code for _ in range(15)]
    assert codes[:10] == [200] * 10  # a burst of twice the rate
    assert 429 in codes[10:]


# -- hostile input ------------------------------------------------------------------


async def test_hostile_client_does_not_disturb_others(serve: Any, node: Any) -> None:
    io, seen = tracking_server(max_attachments=10)
    server = await serve(io.routes())
    node.connect("good", server.url, transports=["websocket"])
    await node.expect("connect", "good")
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    sent = 0

    async def chat() -> None:
        nonlocal sent
        node.emit("good", "echo", sent, ack=True, tag=f"c{sent}")
        assert (await node.expect("ack", "good", tag=f"c{sent}"))["args"] == [sent]
        sent += 1

    hostile: list[tuple[str, list[Any]]] = [
        ("oversize frame", ["40", "4" + "x" * 1_000_001]),
        ("too many attachments", ["40", '4511-["a"]']),
        ("binary before its packet", ["40", b"\x01\x02"]),
        ("text while attachments are due", ["40", '451-["a",{"_placeholder":true,"num":0}]', '42["b"]']),
        ("placeholder out of range", ["40", '451-["a",{"_placeholder":true,"num":7}]', b"\x00"]),
        ("invalid UTF-8 JSON escapes", ["40", '42["a","\\ud800"]']),
        ("deeply nested JSON", ["40", "42" + "[" * 5000 + "]" * 5000]),
        ("unknown engine packet", ["9"]),
    ]
    for name, messages in hostile:
        conn = await websocket_connect(ws_url)
        await conn.read_message()
        for message in messages:
            conn.write_message(message, binary=isinstance(message, bytes))
        while True:  # each one ends with the server closing the connection
            try:
                reply = await asyncio.wait_for(conn.read_message(), WAIT)
            except asyncio.TimeoutError:
                raise AssertionError(f"{name}: the server did not close the connection") from None
            if reply is None:
                break
        await chat()
    # things the reference ignores: acks for unknown ids, packets for namespaces never joined
    conn = await websocket_connect(ws_url)
    await conn.read_message()
    conn.write_message("40")
    await conn.read_message()
    conn.write_message('43999["nobody asked"]')
    conn.write_message('42/never-joined,["n",1]')
    conn.write_message('42["echo","still fine"]')
    conn.write_message('421["echo","still fine"]')
    assert await asyncio.wait_for(conn.read_message(), WAIT) == '431["still fine"]'
    await chat()
    assert seen["got"] == []  # the packet for the namespace never joined was dropped


async def test_raw_http_garbage(serve: Any, node: Any) -> None:
    io, _ = tracking_server()
    server = await serve(io.routes())
    node.connect("good", server.url)
    await node.expect("connect", "good")
    requests = [
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        b"\x00\x01\x02\x03 garbage\r\n\r\n",
        b"GET /socket.io/?EIO=4&transport=polling&sid=" + b"A" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for raw in requests:
        stream = IOStream(pysocket.socket())
        await stream.connect(("127.0.0.1", server.port))
        await stream.write(raw)
        stream.close()
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    bad_bodies = [b"\xff\xfe\xfd", b"b!!notbase64", "4\udfff".encode("utf-8", "surrogatepass"), b"\x1e\x1e"]
    for body in bad_bodies:
        response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}", "POST", body)
        assert response.code == 400
        response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
        sid = json.loads(response.body.decode()[1:])["sid"]
    node.emit("good", "echo", "alive", ack=True, tag="alive")
    assert (await node.expect("ack", "good", tag="alive"))["args"] == ["alive"]


# -- graceful shutdown --------------------------------------------------------------


async def test_graceful_shutdown(serve: Any, node: Any) -> None:
    io, seen = tracking_server(ping_interval=60)
    server = await serve(io.routes())
    node.connect("ws", server.url, transports=["websocket"])
    await node.expect("connect", "ws")
    # a polling client that is between two polls when the server stops
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    for _ in range(2):
        await asyncio.wait_for(seen["connected"].get(), WAIT)
    io.emit("last words", 1)
    stopping = asyncio.ensure_future(io.shutdown(timeout=WAIT))
    await asyncio.sleep(0)
    refused = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    assert refused.code == 503
    # the polling client's next poll gets what was emitted, then the close
    assert (await fetch(url)).body.decode() == '42["last words",1]\x1e1'
    await node.expect("event", "ws", event="last words")
    assert (await node.expect("disconnect", "ws"))["reason"] == "transport close"
    await asyncio.wait_for(stopping, WAIT)
    reasons = {(await asyncio.wait_for(seen["disconnected"].get(), WAIT))[1] for _ in range(2)}
    assert reasons == {"server shutting down"}


# -- sessions belong to their owner; slow and idle connections ---------------------------


async def test_session_ids_and_cross_use(serve: Any) -> None:
    import tornado.web

    from tornad_io.socket_io import SocketIOHandler

    class Handler(SocketIOHandler):
        pass

    server = await serve(tornado.web.Application([Handler.routes("r")]))
    ids = set()
    for _ in range(50):
        body = (await fetch(f"{server.url}/r/?EIO=4&transport=polling")).body.decode()
        sid = json.loads(body[1:])["sid"]
        assert len(sid) == 20 and all(c.isalnum() or c in "-_" for c in sid)  # 120 bits, URL-safe base64
        ids.add(sid)
    assert len(ids) == 50
    legacy_sid = (await fetch(f"{server.url}/r/xhr-polling//1")).body.decode().split("~m~")[2]
    assert len(legacy_sid) == 32  # 128 bits
    # a 0.6 session through the v4 endpoint, and a v4 session through a 0.6 transport: refused
    assert (await fetch(f"{server.url}/r/?EIO=4&transport=polling&sid={legacy_sid}")).code == 400
    assert (await fetch(f"{server.url}/r/xhr-polling/{sid.replace('-', '').replace('_', '')}/1")).code == 404


async def test_slow_headers_and_idle_connections_are_closed(serve: Any) -> None:
    io, _ = tracking_server()
    options = io.http_server_options(idle_timeout=0.3, body_timeout=0.3)
    assert options["max_body_size"] == io.options.max_http_buffer_size + 64 * 1024
    server = await serve(io.routes(), **options)
    loop = asyncio.get_running_loop()
    for partial in [b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n", b""]:
        stream = IOStream(pysocket.socket())
        await stream.connect(("127.0.0.1", server.port))
        if partial:
            await stream.write(partial)  # headers never finished (slowloris)
        started = loop.time()
        await asyncio.wait_for(stream.read_until_close(), WAIT)
        assert loop.time() - started < 5
    # a body announced but never sent
    stream = IOStream(pysocket.socket())
    await stream.connect(("127.0.0.1", server.port))
    await stream.write(
        b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"
    )
    await asyncio.wait_for(stream.read_until_close(), WAIT)


def _server_side_nodelay(client_port: int) -> int | None:
    """TCP_NODELAY of this process's socket whose peer is 127.0.0.1:*client_port* (the server's end)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = pysocket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if sock.family == pysocket.AF_INET and sock.type == pysocket.SOCK_STREAM:
                if sock.getpeername() == ("127.0.0.1", client_port):
                    return sock.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY)
        except OSError:
            pass
        finally:
            sock.close()
    return None


@pytest.mark.parametrize("path", ["/socket.io/?EIO=4&transport=websocket", "/socket.io/?EIO=3&transport=websocket"])
async def test_websocket_connections_keep_nagle_off(serve: Any, path: str) -> None:
    """After the upgrade, frames leave at once: Tornado turns Nagle back on when the 101 finishes."""
    io = Server(allow_eio3=True)
    running = await serve(io.routes(), **io.http_server_options())
    ws = await websocket_connect(f"ws://127.0.0.1:{running.port}{path}")
    try:
        assert (await asyncio.wait_for(ws.read_message(), WAIT) or "")[:1] == "0"  # the open packet
        ws.write_message("40")
        assert (await asyncio.wait_for(ws.read_message(), WAIT) or "").startswith("40")
        stream = ws.protocol.stream  # type: ignore[union-attr]
        client_port = stream.socket.getsockname()[1]
        assert _server_side_nodelay(client_port) == 1
    finally:
        ws.close()
