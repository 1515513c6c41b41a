"""WebSocket handshakes on the lean path of tornad_io.HTTPServer answer exactly as Tornado's handler does.

As in ``test_lean_http.py``, every test sends the same raw bytes to two servers
built alike, one with the lean path (``tornad_io.HTTPServer``'s default, which
answers WebSocket handshakes itself) and one with ``lean_polling=False`` (every
request through ``EngineIOHandler`` and Tornado's ``WebSocketHandler``), and
compares what comes back on the wire -- the ``101`` head or the refusal, and
the WebSocket frames after it -- with only the ``Date`` header and the session
ids set aside. Each test also checks which path answered on the lean server:
the lean one (no ``RequestHandler`` was made) or, for what it leaves to
Tornado, the handler.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
from typing import Any, Callable

import pytest
import tornado

from tornad_io.transports import engineio

from .conftest import WAIT
from .test_lean_http import Pair, exchange, normal, open_session, pair, request

__all__ = ["pair"]  # the fixture, shared with test_lean_http

KEY = base64.b64encode(b"0123456789abcdef").decode()
WS = "/socket.io/?EIO=4&transport=websocket"


def upgrade(target: str = WS, headers: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> bytes:
    """A WebSocket handshake request, with *headers* added or replaced and the *drop* ones left out."""
    base = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    base.update(headers or {})
    for name in drop:
        base.pop(name, None)
    return request("GET", target, base)


def frame(text: str, opcode: int = 0x1) -> bytes:
    """A masked client frame."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests that reached an ``EngineIOHandler`` (their paths), in order."""
    made: list[str] = []
    original = engineio.EngineIOHandler.initialize

    def initialize(self: Any, engine: Any) -> None:
        made.append(self.request.path)
        original(self, engine)

    monkeypatch.setattr(engineio.EngineIOHandler, "initialize", initialize)
    return made


async def both(
    pair: Pair,
    handlers: list[str],
    make: Callable[[str], list[bytes]],
    lean: bool = True,
    with_session: bool = False,
    head_only: bool = False,
    **kwargs: Any,
) -> bytes:
    """The normalized answers of both servers, checked equal; *lean*: the lean server answered without a handler."""
    answers = {}
    for name, port in pair.ports.items():
        sid = await open_session(port) if with_session else ""
        before = len(handlers)
        kwargs.setdefault("close", False)
        answers[name] = normal(await exchange(port, make(sid), **kwargs))
        if head_only:  # a deflated open packet: the session id inside cannot be set aside
            answers[name] = answers[name].partition(b"\r\n\r\n")[0]
        if name == "lean":
            assert (len(handlers) == before) is lean, handlers[before:]
    assert answers["lean"] == answers["plain"]
    return answers["lean"]


async def test_a_new_websocket_session_matches(pair: Any, handlers: list[str]) -> None:
    p = await pair()
    answer = await both(p, handlers, lambda sid: [upgrade()])
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-Websocket-Accept: " in answer and b'0{"sid":"SID"' in answer
    # the Socket.IO CONNECT and a ping sent with the request, in the same segment
    answer = await both(p, handlers, lambda sid: [upgrade() + frame("40") + frame("2")])
    assert b'40{"sid":"SID"}' in answer and answer.endswith(b"\x81\x013")
    # and after the handshake has been answered
    answer = await both(p, handlers, lambda sid: [upgrade(), frame("40"), frame('42["echo",1]')], pause=0.05)
    assert b'40{"sid":"SID"}' in answer


async def test_extension_offers_and_subprotocols(pair: Any, handlers: list[str]) -> None:
    p = await pair()
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits", "Sec-WebSocket-Protocol": "x"}
    answer = await both(p, handlers, lambda sid: [upgrade(headers=offer)])
    assert b"Sec-WebSocket-Extensions" not in answer  # compression is off: nothing negotiated
    p = await pair(per_message_deflate=True)
    answer = await both(p, handlers, lambda sid: [upgrade(headers=offer)], lean=False, head_only=True)
    assert b"Sec-Websocket-Extensions: permessage-deflate" in answer
    await both(p, handlers, lambda sid: [upgrade()])  # no offer: the lean path serves it


async def test_refusals_match(pair: Any, handlers: list[str]) -> None:
    p = await pair(cors_allowed_origins=["http://good.example"])
    lean_refusals: list[tuple[str, dict[str, str]]] = [
        (WS, {"Origin": "http://evil.example"}),
        (WS + "&sid=unknown", {}),
        ("/socket.io/?EIO=4&transport=polling", {}),
        ("/socket.io/?EIO=4&transport=nope", {}),
        ("/socket.io/?EIO=5&transport=websocket", {}),
        ("/socket.io/?transport=websocket", {}),
    ]
    for target, headers in lean_refusals:
        answer = await both(p, handlers, lambda sid, t=target, h=headers: [upgrade(t, h)])
        assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 403")), answer
        # the connection stays open for the next request, as Tornado keeps it
        answer = await both(p, handlers, lambda sid, t=target, h=headers: [upgrade(t, h) + upgrade()])
        assert b"HTTP/1.1 101" in answer
    answer = await both(p, handlers, lambda sid: [upgrade(headers={"Origin": "http://good.example"})])
    assert b"Access-Control-Allow-Origin: http://good.example\r\nVary: Origin\r\n" in answer


async def test_what_tornado_refuses_is_left_to_tornado(pair: Any, handlers: list[str]) -> None:
    p = await pair()
    tornado_cases: list[bytes] = [
        upgrade(drop=("Sec-WebSocket-Key",)),
        upgrade(headers={"Sec-WebSocket-Key": ""}),
        upgrade(headers={"Sec-WebSocket-Version": "8"}),
        upgrade(headers={"Connection": "keep-alive"}),
        upgrade(headers={"Upgrade": "h2c"}),
        upgrade(headers={"Sec-Fetch-Site": "cross-site"}),
        upgrade(WS + "&sid=unknown", {"Sec-WebSocket-Version": "8"}),  # the engine's answer comes first
        upgrade(headers={"Content-Length": "0"}),
        upgrade().replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        request("POST", WS, {"Upgrade": "websocket", "Connection": "Upgrade"}, b"x"),
    ]
    codes = []
    for raw in tornado_cases:
        answer = await both(p, handlers, lambda sid, raw=raw: [raw], lean=False)
        codes.append(int(answer.split(b" ", 2)[1]))
    cross_site = 403 if tornado.version_info >= (6, 6) else 101  # Tornado 6.6 added the Sec-Fetch-Site check
    assert codes[:7] == [400, 400, 426, 400, 400, cross_site, 400], codes


async def test_limits_and_hooks_match(pair: Any, handlers: list[str]) -> None:
    p = await pair(max_connections=1)
    held = [await asyncio.open_connection("127.0.0.1", port) for port in p.ports.values()]
    for _reader, writer in held:
        writer.write(upgrade())
    for reader, _writer in held:
        assert (await asyncio.wait_for(reader.read(65536), WAIT)).startswith(b"HTTP/1.1 101")
    answer = await both(p, handlers, lambda sid: [upgrade()])
    assert answer.startswith(b"HTTP/1.1 503")
    for _reader, writer in held:
        writer.close()
    p = await pair(handshake_rate_per_ip=0.1)  # a burst of one
    answer = await both(p, handlers, lambda sid: [upgrade()])
    assert answer.startswith(b"HTTP/1.1 101")
    answer = await both(p, handlers, lambda sid: [upgrade()])
    assert answer.startswith(b"HTTP/1.1 429"), answer

    async def allow(handler: Any) -> bool | str:
        return handler.request.headers.get("X-Token") == "ok" or "no token"

    p = await pair(allow_request=allow)
    answer = await both(p, handlers, lambda sid: [upgrade()], lean=False)
    assert answer.startswith(b"HTTP/1.1 403") and b"no token" in answer
    await both(p, handlers, lambda sid: [upgrade(headers={"X-Token": "ok"})], lean=False)


async def test_events_and_the_access_log_match(pair: Any, handlers: list[str], caplog: Any) -> None:
    p = await pair(trusted_proxies=["127.0.0.1"], cors_allowed_origins="*", cors_credentials=True)
    seen: dict[str, list[Any]] = {"lean": [], "plain": []}
    for name, io in p.servers.items():

        def initial(headers: dict[str, Any], req: Any, name: str = name) -> None:
            headers["X-Initial"] = "1"
            headers["Content-Type"] = "text/nothing"  # a 1xx response drops it, as Tornado does
            seen[name].append(("initial", req.method, req.path, req.remote_ip))

        def every(headers: dict[str, Any], req: Any, name: str = name) -> None:
            headers["X-Every"] = ["x", "y"]

        def refused(refusal: Any, name: str = name) -> None:
            seen[name].append(("refused", refusal.code, refusal.request.path))

        def connected(session: Any, name: str = name) -> None:
            seen[name].append(("address", session.info.address, session.info.url, session.transport.name))

        io.engine.on("initial_headers", initial)
        io.engine.on("headers", every)
        io.engine.on("connection_error", refused)
        io.engine.on("connection", connected)
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        answer = await both(
            p, handlers, lambda sid: [upgrade(headers={"X-Forwarded-For": "203.0.113.9", "Origin": "http://a"})]
        )
        await both(p, handlers, lambda sid: [upgrade(WS + "&sid=none")])
    assert b"X-Initial: 1" in answer and b"X-Every: y" in answer and b"text/nothing" not in answer
    assert b"Access-Control-Allow-Credentials: true" in answer
    assert seen["lean"] == seen["plain"] and len(seen["lean"]) == 3
    lines = [r.getMessage().rsplit(" ", 1)[0] for r in caplog.records if r.name == "tornado.access"]
    assert lines[0] == lines[1] == "101 GET /socket.io/ (127.0.0.1)" and lines[2] == lines[3], lines


async def test_the_upgrade_of_a_polling_session_matches(pair: Any, handlers: list[str]) -> None:
    p = await pair()

    def probe(sid: str) -> list[bytes]:
        return [upgrade(f"{WS}&sid={sid}"), frame("2probe"), frame("5"), frame("40")]

    answer = await both(p, handlers, probe, with_session=True, pause=0.05)
    assert b"\x81\x063probe" in answer and b'40{"sid":"SID"}' in answer
    # a second upgrade of the same session is refused; a polling session cannot take a WebSocket of another one
    for name, port in p.ports.items():
        sid = await open_session(port)
        first = await exchange(port, probe(sid), pause=0.05, close=False)
        second = await exchange(port, [upgrade(f"{WS}&sid={sid}")], close=False)
        assert b"3probe" in first and second.startswith(b"HTTP/1.1 400"), (name, second)


async def test_eio3_websocket_matches(pair: Any, handlers: list[str]) -> None:
    p = await pair(allow_eio3=True)
    answer = await both(p, handlers, lambda sid: [upgrade("/socket.io/?EIO=3&transport=websocket")])
    assert b'0{"sid":"SID"' in answer and b"40" in answer


async def test_lean_websocket_false_leaves_handshakes_to_tornado(handlers: list[str]) -> None:
    import socket as pysocket

    import tornado.netutil

    from tornad_io import HTTPServer

    from .test_lean_http import make_app

    app, _io = make_app()
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=pysocket.AF_INET)
    http = HTTPServer(app, lean_websocket=False)
    http.add_sockets(sockets)
    try:
        answer = await exchange(sockets[0].getsockname()[1], [upgrade()], close=False)
        assert answer.startswith(b"HTTP/1.1 101") and handlers == ["/socket.io/"]
    finally:
        http.stop()
        await http.close_all_connections()


async def test_a_client_closing_right_after_the_handshake(pair: Any, handlers: list[str]) -> None:
    p = await pair()
    for port in p.ports.values():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upgrade() + frame("", 0x8))
        head = await asyncio.wait_for(reader.read(65536), WAIT)
        assert head.startswith(b"HTTP/1.1 101")
        rest = await asyncio.wait_for(reader.read(), WAIT)  # the server answers the close and closes
        assert rest.endswith(b"\x88\x00") or b"\x88" in head + rest
        writer.close()
    assert sum(len(io.engine.sessions) for io in p.servers.values()) == 0 or await _drained(p)


async def _drained(p: Pair) -> bool:
    for _ in range(100):
        if all(not io.engine.sessions for io in p.servers.values()):
            return True
        await asyncio.sleep(0.01)
    return False
