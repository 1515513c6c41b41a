"""The public hooks, with the real socket.io-client 4.x (Node) on the wire: engine events (connection,
connection_error, initial_headers, headers, clients_count), socket.conn and its events, the disconnect
description, adapter room events, new_namespace, compress(False) under permessage-deflate, and the socket
listener API (once, listeners, remove_all_listeners, prepend_any_outgoing, listeners_any)."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import tornado.httpclient
import tornado.websocket

from tornad_io import Server, Socket
from tornad_io.engineio.server import RefusedRequest
from tornad_io.engineio.session import EnginePacket, Session
from tornad_io.exceptions import TransportError

from .conftest import WAIT, wait_until


async def fetch(url: str, **kwargs: Any) -> tornado.httpclient.HTTPResponse:
    return await tornado.httpclient.AsyncHTTPClient().fetch(url, raise_error=False, **kwargs)


async def test_connection_error_for_refused_requests(serve: Any, node: Any) -> None:
    def allow(handler: Any) -> bool | str:
        return "go away" if handler.get_query_argument("deny", None) else True

    io = Server(allow_request=allow)
    refused: list[RefusedRequest] = []
    io.engine.on("connection_error", refused.append)
    server = await serve(io.routes())
    # the real client, refused by allow_request
    node.connect("x", server.url, query={"deny": "1"})
    await node.expect("connect_error", "x")
    first = refused[0]
    assert (first.code, first.message, first.context) == (4, "go away", {"message": "go away"})
    assert first.request.path == "/socket.io/" and first.request.query_arguments["deny"] == [b"1"]
    # the reference's codes and contexts for the other refusals
    base = f"{server.url}/socket.io/"
    await fetch(base + "?EIO=4&transport=carrier-pigeon")
    await fetch(base + "?EIO=4&transport=polling&sid=nope")
    await fetch(base + "?EIO=4&transport=polling", method="POST", body="x")
    await fetch(base + "?EIO=3&transport=polling")
    await fetch(base + "?EIO=4&transport=websocket")  # a WebSocket handshake without the upgrade
    assert [(r.code, r.message, r.context) for r in refused[1:]] == [
        (0, "Transport unknown", {"transport": "carrier-pigeon"}),
        (1, "Session ID unknown", {"sid": "nope"}),
        (2, "Bad handshake method", {"method": "POST"}),
        (5, "Unsupported protocol version", {"protocol": "3"}),
        (3, "Bad request", {"name": "TRANSPORT_HANDSHAKE_ERROR"}),
    ]
    # a session that works does not fire it
    node.connect("ok", server.url)
    await node.expect("connect", "ok")
    assert len(refused) == 6


async def test_headers_events_add_response_headers(serve: Any, node: Any) -> None:
    io = Server()
    requests: list[tuple[str, str | None, bool]] = []

    @io.engine.on("initial_headers")
    def initial(headers: dict[str, Any], request: Any) -> None:
        headers["Set-Cookie"] = "tracker=abc; Path=/"

    @io.engine.on("headers")
    def every(headers: dict[str, Any], request: Any) -> None:
        headers["X-Served-By"] = "tornad_io"
        requests.append((request.method, request.headers.get("Cookie"), "sid" in request.query_arguments))

    server = await serve(io.routes())
    # the handshake response carries both; a later poll carries the second only
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    assert response.headers.get_list("Set-Cookie") == ["tracker=abc; Path=/"]
    assert response.headers["X-Served-By"] == "tornad_io"
    sid = json.loads(response.body.decode()[1:])["sid"]
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}", method="POST", body="40")
    assert response.headers["X-Served-By"] == "tornad_io" and "Set-Cookie" not in response.headers
    # so does a WebSocket handshake (the 101 response)
    conn = await tornado.websocket.websocket_connect(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    )
    assert conn.headers["X-Served-By"] == "tornad_io" and conn.headers.get_list("Set-Cookie") == ["tracker=abc; Path=/"]
    conn.close()
    # the real client keeps the cookie (withCredentials) and presents it on its next requests, the upgrade too
    requests.clear()
    node.connect("a", server.url, withCredentials=True)
    await node.expect("connect", "a")
    await node.expect("upgrade", "a")
    assert requests[0] == ("GET", None, False)  # the handshake: no cookie yet
    later = [cookie for _, cookie, has_sid in requests if has_sid]
    assert later and all(cookie == "tracker=abc" for cookie in later), requests
    assert ("GET", "tracker=abc", True) in requests  # the WebSocket upgrade request among them


async def test_conn_events_and_clients_count(serve: Any, node: Any) -> None:
    io = Server()
    sessions: list[Session] = []
    seen: dict[str, list[Any]] = {"upgrade": [], "packet": [], "packet_create": [], "drain": [], "close": []}
    io.engine.on("connection", sessions.append)
    connected: asyncio.Queue[Socket] = asyncio.Queue()

    @io.on("connect")
    def connect(socket: Socket) -> None:
        conn = socket.conn
        assert conn.transport.name == "polling" and conn.id == conn.sid and conn.ready_state == "open"
        conn.on("upgrade", lambda transport: seen["upgrade"].append(transport.name))
        conn.on("packet", seen["packet"].append)
        conn.on("packet_create", seen["packet_create"].append)
        conn.on("drain", lambda: seen["drain"].append(True))
        conn.on("close", lambda reason, description: seen["close"].append((reason, description)))
        connected.put_nowait(socket)

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(connected.get(), WAIT)
    assert sessions == [socket.conn] and io.engine.clients_count == 1
    await node.expect("upgrade", "a")
    await wait_until(lambda: seen["upgrade"] == ["websocket"])
    assert socket.conn.transport.name == "websocket" == socket.transport
    node.emit("a", "echo", "hi", ack=True, tag="e")
    await node.expect("ack", "a", tag="e")
    assert EnginePacket("message", '20["echo","hi"]') in seen["packet"]
    assert EnginePacket("message", '30["hi"]') in seen["packet_create"]
    assert seen["drain"]
    node.connect("b", server.url, transports=["websocket"])
    await node.expect("connect", "b")
    assert io.engine.clients_count == 2
    node.send(cmd="disconnect", id="a")
    await wait_until(lambda: bool(seen["close"]))
    assert seen["close"] == [("transport close", None)]
    await wait_until(lambda: io.engine.clients_count == 1)


async def test_disconnect_description(serve: Any, node: Any) -> None:
    io = Server(transports=("polling",), max_buffered_bytes=20_000)
    three: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    two: asyncio.Queue[str] = asyncio.Queue()
    connected: asyncio.Queue[Socket] = asyncio.Queue()

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.on("disconnect", two.put_nowait)  # a handler that takes the reason alone keeps working
        connected.put_nowait(socket)

    @io.on("disconnect")
    def disconnect(socket: Socket, reason: str, description: Any) -> None:
        three.put_nowait((reason, description))

    server = await serve(io.routes())
    node.connect("a", server.url, transports=["polling"])
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(connected.get(), WAIT)
    node.pause()  # a client that stops reading: what is sent to it piles up
    try:
        for _ in range(40):
            socket.emit("blob", "x" * 1000)
        reason, description = await asyncio.wait_for(three.get(), WAIT)
        assert reason == "transport error" and isinstance(description, TransportError)
        assert "max_buffered_bytes" in str(description)
        assert await asyncio.wait_for(two.get(), WAIT) == "transport error"
    finally:
        node.resume()
    # a disconnect without a description gives None to a handler that takes one
    node.connect("b", server.url, transports=["polling"])
    await node.expect("connect", "b")
    await asyncio.wait_for(connected.get(), WAIT)
    node.send(cmd="disconnect", id="b")
    assert await asyncio.wait_for(three.get(), WAIT) == ("client namespace disconnect", None)


async def test_room_events_and_new_namespace(serve: Any, node: Any) -> None:
    io = Server()
    events: list[tuple[Any, ...]] = []
    for name in ("create-room", "join-room", "leave-room", "delete-room"):
        io.sockets.adapter.on(name, lambda *args, name=name: events.append((name, *args)))
    created: list[str] = []
    io.on("new_namespace", lambda nsp: created.append(nsp.name))
    io.on("new_namespace", lambda nsp: created.append("again " + nsp.name))  # several listeners, all called
    accepted: list[str] = []
    io.sockets.add_connection_listener(lambda socket: accepted.append(socket.id))

    @io.on("join")
    def join(socket: Socket, room: str) -> bool:
        socket.join(room)
        return True

    @io.on("leave")
    def leave(socket: Socket, room: str) -> bool:
        socket.leave(room)
        return True

    server = await serve(io.routes())
    node.connect("a", server.url)
    sid = (await node.expect("connect", "a"))["sid"]
    assert accepted == [sid]
    node.emit("a", "join", "lobby", ack=True, tag="j")
    await node.expect("ack", "a", tag="j")
    node.emit("a", "leave", "lobby", ack=True, tag="l")
    await node.expect("ack", "a", tag="l")
    node.send(cmd="disconnect", id="a")
    await wait_until(lambda: ("delete-room", sid) in events)
    assert events == [
        ("create-room", sid),
        ("join-room", sid, sid),
        ("create-room", "lobby"),
        ("join-room", "lobby", sid),
        ("leave-room", "lobby", sid),
        ("delete-room", "lobby"),
        ("leave-room", sid, sid),
        ("delete-room", sid),
    ]
    io.of("/later")
    assert created == ["/later", "again /later"]


async def test_socket_listener_api(serve: Any, node: Any) -> None:
    io = Server()
    connected: asyncio.Queue[Socket] = asyncio.Queue()
    pings: list[int] = []
    order: list[str] = []

    def first_out(event: str, *args: Any) -> None:
        order.append("first")

    def second_out(event: str, *args: Any) -> None:
        order.append("second")

    def any_in(event: str, *args: Any) -> None:
        pass

    @io.on("connect")
    def connect(socket: Socket) -> None:
        socket.once("ping", pings.append)
        socket.on_any_outgoing(second_out)
        socket.prepend_any_outgoing(first_out)
        socket.on_any(any_in)
        connected.put_nowait(socket)

    @io.on("probe")
    def probe(socket: Socket) -> str:
        return "done"

    server = await serve(io.routes())
    node.connect("a", server.url)
    await node.expect("connect", "a")
    socket = await asyncio.wait_for(connected.get(), WAIT)
    assert socket.listeners("ping") == [pings.append]
    node.emit("a", "ping", 1)
    node.emit("a", "ping", 2)
    node.emit("a", "probe", ack=True, tag="p")
    await node.expect("ack", "a", tag="p")
    assert pings == [1] and socket.listeners("ping") == []  # once: the first only, then gone
    assert socket.listeners_any_outgoing() == [first_out, second_out]
    assert socket.listeners_any() == [any_in]
    socket.emit("news", 1)
    await node.expect("event", "a", event="news")
    assert order == ["first", "second"]
    socket.on("x", any_in)
    socket.once("y", any_in)
    socket.off("y", any_in)  # a once handler removed by the function it was given
    assert socket.listeners("y") == []
    socket.remove_all_listeners()
    assert socket.listeners("x") == []


# -- compress(False) under permessage-deflate: frames seen on the wire through a relay --------------------------


class FrameRelay:
    """A TCP relay between the client and the server that parses the server's WebSocket frames."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.frames: list[tuple[bool, int, bytes]] = []  # (RSV1, opcode, payload)
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, parse: bool) -> None:
            buffer = b""
            upgraded = False
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    if parse:
                        buffer += data
                        if not upgraded and b"\r\n\r\n" in buffer:
                            head, buffer = buffer.split(b"\r\n\r\n", 1)
                            upgraded = head.startswith(b"HTTP/1.1 101")
                        if upgraded:
                            buffer = self._frames(buffer)
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    def _frames(self, buffer: bytes) -> bytes:
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                (length,) = struct.unpack("!H", buffer[2:4])
                offset = 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                (length,) = struct.unpack("!Q", buffer[2:10])
                offset = 10
            if len(buffer) < offset + length:
                break
            self.frames.append((bool(first & 0x40), first & 0x0F, buffer[offset : offset + length]))
            buffer = buffer[offset + length :]
        return buffer

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_compress_false_sends_plain_frames_under_deflate(serve: Any, node: Any) -> None:
    io = Server(per_message_deflate=True)

    @io.on("go")
    def go(socket: Socket) -> None:
        socket.emit("squeezed", "a" * 200)
        socket.compress(False).emit("plain", "b" * 200)
        io.compress(False).emit("plain-broadcast", "c" * 200)
        io.emit("squeezed-broadcast", "d" * 200)
        socket.broadcast.compress(False).emit("nobody")  # leaves the only socket out: nothing sent

    server = await serve(io.routes())
    relay = FrameRelay(server.port)
    await relay.start()
    try:
        node.connect("a", f"http://127.0.0.1:{relay.port}", transports=["websocket"])
        await node.expect("connect", "a")
        node.emit("a", "go")
        for event, text in (("squeezed", "a"), ("plain", "b"), ("plain-broadcast", "c"), ("squeezed-broadcast", "d")):
            assert (await node.expect("event", "a", event=event))["args"] == [text * 200]
        texts = [(rsv1, payload) for rsv1, opcode, payload in relay.frames if opcode == 0x1]
        plain = {payload for rsv1, payload in texts if not rsv1}
        # compress(False): sent as they are, RSV1 clear; the others compressed (RSV1 set, no readable text)
        assert b'42["plain","' + b"b" * 200 + b'"]' in plain
        assert b'42["plain-broadcast","' + b"c" * 200 + b'"]' in plain
        compressed = [payload for rsv1, payload in texts if rsv1]
        assert len(compressed) >= 3  # the CONNECT answer and the two compressed events at least
        assert not any(b"a" * 200 in p or b"d" * 200 in p for p in compressed)
        assert not any(b"squeezed" in p for p in plain)
    finally:
        relay.close()
