"""The original API and the Socket.IO 0.6 transports, on the wire.

Hand-written protocol clients (raw HTTP, raw WebSocket, raw TCP for the Flash
policy server); the real 0.6 browser client is in test_legacy_browser.py.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import logging
import re
import socket as pysocket
from typing import Any
from urllib.parse import quote

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.iostream import IOStream
from tornado.websocket import websocket_connect

from tornad_io import SocketIOServer
from tornad_io.engineio import legacy_codec
from tornad_io.exceptions import ProtocolError
from tornad_io.socket_io import SocketIOHandler
from tornad_io.websocket.flash import FlashPolicyServer

from .conftest import WAIT

FAST = {
    "legacy_heartbeat_interval": 0.2,
    "legacy_heartbeat_timeout": 0.3,
    "legacy_close_timeout": 0.4,
    "legacy_poll_duration": 0.5,
}


def make_handler(**extra_options: Any) -> tuple[type[SocketIOHandler], dict[str, Any]]:
    """A test handler, not examples/echo.py (see test_echo_example.py): its first message reports what
    on_open received, and messages come back unchanged."""
    seen: dict[str, Any] = {"opened": asyncio.Queue(), "closed": asyncio.Queue(), "messages": asyncio.Queue()}

    class Echo(SocketIOHandler):
        server_options = {**FAST, **extra_options}

        def on_open(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("sec_b") == "refuse":
                return False
            self.session["who"] = kwargs
            self.session.save()
            seen["opened"].put_nowait((self, args, kwargs))
            self.send({"opened": kwargs, "args": list(args), "protocol": self.protocol})
            return None

        def on_message(self, message: Any) -> None:
            seen["messages"].put_nowait(message)
            if message == "close me":
                self.close()
            elif message == "decimal":
                self.send({"price": decimal.Decimal("19.990")})
            else:
                self.send(message)

        def on_close(self) -> None:
            seen["closed"].put_nowait(self.id)

    return Echo, seen


async def fetch(url: str, method: str = "GET", body: str | None = None, **kw: Any) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT, **kw)


def frames(payload: str) -> list[str]:
    return legacy_codec.decode_frames(payload)


@pytest.fixture
async def echo(serve: Any) -> Any:
    handler, seen = make_handler()
    app = tornado.web.Application([handler.routes("echoTest", "(?P<sec_a>123)(?P<sec_b>.*)", extraSep="/")])
    server = await serve(app)
    return server.url + "/echoTest/123abc", seen


# -- framing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, wire",
    [
        ("hello é😀", "~m~9~m~hello é😀"),
        ({"json": "obj", "n": 1}, '~m~23~m~~j~{"json":"obj","n":1}'),
        ("6264394001477311", "~m~16~m~6264394001477311"),
        ("", "~m~0~m~"),
        ("a~m~b", "~m~5~m~a~m~b"),
        ({"price": decimal.Decimal("0.10")}, '~m~17~m~~j~{"price":0.10}'),
    ],
)
def test_legacy_frames(message: Any, wire: str) -> None:
    assert legacy_codec.encode_message(message) == wire
    decoded = legacy_codec.decode_payload(wire)
    expected = json.loads(json.dumps(message, default=str)) if not isinstance(message, str) else message
    if isinstance(message, dict) and any(isinstance(v, decimal.Decimal) for v in message.values()):
        expected = {"price": 0.1}
    assert decoded == [legacy_codec.Message(expected)]


def test_legacy_payloads() -> None:
    payload = "~m~4~m~~h~1~m~5~m~hello~m~2~m~😀"
    assert legacy_codec.decode_payload(payload) == [
        legacy_codec.Message(beat="1"),
        legacy_codec.Message("hello"),
        legacy_codec.Message("😀"),
    ]
    # a malformed frame: the frames before it are kept (tolerant), or it raises (strict)
    assert legacy_codec.decode_payload("~m~2~m~ok~m~99~m~short") == [legacy_codec.Message("ok")]
    with pytest.raises(ProtocolError):
        legacy_codec.decode_payload("~m~2~m~ok~m~99~m~short", strict=True)
    for garbage in ["x", "~m~", "~m~a~m~", "~m~1~m", "~m~3~m~ab", "~m~1~m~😀", "~m~" + "9" * 20 + "~m~"]:
        with pytest.raises(ProtocolError):
            legacy_codec.decode_frames(garbage)
    # a bad JSON frame is dropped, the rest delivered
    assert legacy_codec.decode_payload('~m~8~m~~j~{"a":~m~1~m~z') == [legacy_codec.Message("z")]
    # JSONP form posts turn \n into \r\n: tolerated
    assert legacy_codec.decode_payload("~m~11~m~line1\r\nline2~m~1~m~x", crlf_tolerant=True) == [
        legacy_codec.Message("line1\nline2"),
        legacy_codec.Message("x"),
    ]


# -- xhr-polling and jsonp-polling -------------------------------------------------------


async def open_polling(base: str, transport: str = "xhr-polling") -> str:
    return (await open_polling_with_rest(base, transport))[0]


async def open_polling_with_rest(base: str, transport: str = "xhr-polling") -> tuple[str, str]:
    suffix = "/1700000000000" + ("/0" if transport == "jsonp-polling" else "")
    response = await fetch(f"{base}/{transport}/{suffix}")
    assert response.code == 200
    body = response.body.decode()
    if transport == "jsonp-polling":
        body = json.loads(re.fullmatch(r"io\.JSONP\[0\]\._\((.*)\);", body).group(1))  # type: ignore[union-attr]
    sid = frames(body)[0]
    assert re.fullmatch(r"[0-9a-f]{32}", sid)
    return sid, body[len(legacy_codec.frame(sid)) :]


async def test_xhr_polling_session(echo: Any) -> None:
    base, seen = echo
    sid, rest = await open_polling_with_rest(base)
    _, args, kwargs = await asyncio.wait_for(seen["opened"].get(), WAIT)
    assert kwargs == {"extra": "123abc", "sec_a": "123", "sec_b": "abc"} and args == ()
    if not rest:  # what on_open sent comes with the id or on the next poll
        poll = await fetch(f"{base}/xhr-polling/{sid}/1700000000001")
        assert poll.headers["Content-Type"] == "text/plain; charset=UTF-8"
        rest = poll.body.decode()
    opened = legacy_codec.decode_payload(rest)
    assert opened[0].value["opened"] == kwargs and opened[0].value["protocol"] == "xhr-polling"
    data = legacy_codec.encode_message("hi ü😀") + legacy_codec.encode_message({"a": [1, "x"]})
    post = await fetch(f"{base}/xhr-polling/{sid}/send", "POST", "data=" + quote(data))
    assert (post.code, post.body) == (200, b"ok")
    poll = await fetch(f"{base}/xhr-polling/{sid}/1700000000002")
    assert int(poll.headers["Content-Length"]) == len(poll.body)
    assert poll.body.decode() == data  # both messages, in one payload, in order


async def test_what_a_post_drops_is_logged_by_the_transport(echo: Any, caplog: Any) -> None:
    base, seen = echo
    sid, _ = await open_polling_with_rest(base)
    data = legacy_codec.frame('~j~{"a":') + legacy_codec.encode_message("kept") + "~m~99~m~short"
    with caplog.at_level(logging.INFO, logger="tornad_io"):
        post = await fetch(f"{base}/xhr-polling/{sid}/send", "POST", "data=" + quote(data))
        assert (post.code, post.body) == (200, b"ok")
        assert await asyncio.wait_for(seen["messages"].get(), WAIT) == "kept"
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == [
        f"session {sid}: dropped the rest of the payload: frame shorter than its declared length",
        f"session {sid}: dropped a ~j~ frame that is not JSON: '~j~{{\"a\":'",
    ]


async def test_polling_hold_and_empty_reply_and_expiry(echo: Any) -> None:
    base, seen = echo
    sid, rest = await open_polling_with_rest(base)
    if not rest:
        await fetch(f"{base}/xhr-polling/{sid}/1")  # the on_open report
    held = await fetch(f"{base}/xhr-polling/{sid}/2")  # nothing to say: empty after the poll duration
    assert (held.code, held.body) == (200, b"")
    # no GET within the close timeout: the session ends and on_close runs
    await asyncio.wait_for(seen["closed"].get(), WAIT)
    assert (await fetch(f"{base}/xhr-polling/{sid}/3")).code == 404


async def test_held_poll_completes_on_message(echo: Any) -> None:
    base, seen = echo
    sid, rest = await open_polling_with_rest(base)
    if not rest:
        await fetch(f"{base}/xhr-polling/{sid}/1")
    handler, _, _ = await asyncio.wait_for(seen["opened"].get(), WAIT)
    poll = asyncio.ensure_future(fetch(f"{base}/xhr-polling/{sid}/2"))
    await asyncio.sleep(0.05)  # the poll is being held
    handler.send("pushed")
    assert (await poll).body.decode() == "~m~6~m~pushed"


async def test_second_poll_releases_the_first(echo: Any) -> None:
    base, _ = echo
    sid, rest = await open_polling_with_rest(base)
    if not rest:
        await fetch(f"{base}/xhr-polling/{sid}/1")
    first = asyncio.ensure_future(fetch(f"{base}/xhr-polling/{sid}/2"))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(fetch(f"{base}/xhr-polling/{sid}/3"))
    assert (await first).body == b""
    assert (await second).code == 200


async def test_jsonp_polling(echo: Any) -> None:
    base, seen = echo
    sid = await open_polling(base, "jsonp-polling")
    poll = await fetch(f"{base}/jsonp-polling/{sid}/1700000000001/0")
    assert poll.headers["Content-Type"] == "text/javascript; charset=UTF-8"
    # a browser form post: spaces as +, and the CRLF quirk
    message = legacy_codec.encode_message("line1\nline2 </script>")
    body = "data=" + quote(message.replace("\n", "\r\n")).replace("%20", "+")
    post = await fetch(f"{base}/jsonp-polling/{sid}/1700000000009/0", "POST", body)
    assert post.body == b"ok"
    assert await asyncio.wait_for(seen["messages"].get(), WAIT) == "line1\nline2 </script>"
    poll = await fetch(f"{base}/jsonp-polling/{sid}/1700000000002/5")
    text = poll.body.decode()
    assert text.startswith("io.JSONP[5]._(") and "</script>" not in text
    literal = re.fullmatch(r"io\.JSONP\[5\]\._\((.*)\);", text).group(1)  # type: ignore[union-attr]
    assert json.loads(literal) == message


async def test_unknown_session_and_wrong_transport(echo: Any) -> None:
    base, _ = echo
    assert (await fetch(f"{base}/xhr-polling/deadbeef/1")).code == 404
    assert (await fetch(f"{base}/xhr-polling/deadbeef/send", "POST", "data=x")).code == 404
    sid = await open_polling(base)
    assert (await fetch(f"{base}/jsonp-polling/{sid}/1/0")).code == 404  # the session is xhr-polling's
    assert (await fetch(f"{base}/xhr-polling/{sid}/send", "POST", "nodata=1")).code == 400


async def test_on_open_can_refuse(serve: Any) -> None:
    handler, seen = make_handler()
    app = tornado.web.Application([handler.routes("r", "(?P<sec_b>.*)", extraSep="/")])
    server = await serve(app)
    assert (await fetch(f"{server.url}/r/refuse/xhr-polling//1")).code == 403
    assert (await fetch(f"{server.url}/r/fine/xhr-polling//1")).code == 200


# -- streaming transports ----------------------------------------------------------


class Stream:
    """A never-ending HTTP response, read as text with a cursor."""

    def __init__(self, url: str) -> None:
        self.text = ""
        self.pos = 0
        self._more = asyncio.Event()
        self.task = asyncio.ensure_future(
            AsyncHTTPClient().fetch(
                HTTPRequest(url, streaming_callback=self._chunk, request_timeout=60), raise_error=False
            )
        )

    def _chunk(self, chunk: bytes) -> None:
        self.text += chunk.decode()
        self._more.set()

    async def take(self, pattern: str) -> re.Match[str]:
        """The next match of *pattern* after the cursor (waiting for more text if needed)."""
        regex = re.compile(pattern, re.S)
        while True:
            found = regex.search(self.text, self.pos)
            if found:
                self.pos = found.end()
                return found
            self._more.clear()
            await asyncio.wait_for(self._more.wait(), WAIT)


SCRIPT = r'<script>parent\.s\._\(("[^"]*"), document\);</script>'


async def test_htmlfile(echo: Any) -> None:
    base, seen = echo
    stream = Stream(f"{base}/htmlfile//1700000000000")
    await stream.take("^<html><body>" + " " * 244)
    sid = frames(json.loads((await stream.take(SCRIPT)).group(1)))[0]
    handler, _, _ = await asyncio.wait_for(seen["opened"].get(), WAIT)
    handler.send("</script><b>é😀")
    while True:
        payload = json.loads((await stream.take(SCRIPT)).group(1))
        if "</script><b>é😀" in payload:
            break
    assert "\\u003c/script\\u003e\\u003cb\\u003e" in stream.text  # escaped: cannot end the script element
    # heartbeats arrive, are echoed through POSTs, and the session survives several intervals
    for _ in range(3):
        beat = (await stream.take(r"~h~(\d+)")).group(1)
        post = await fetch(f"{base}/htmlfile/{sid}/send", "POST", "data=" + quote(legacy_codec.heartbeat(int(beat))))
        assert post.code == 200
    assert seen["closed"].empty()
    stream.task.cancel()
    AsyncHTTPClient().close()  # drops the streaming connection
    assert await asyncio.wait_for(seen["closed"].get(), WAIT) == handler.id


async def test_xhr_multipart_and_heartbeat_timeout(echo: Any) -> None:
    base, seen = echo
    stream = Stream(f"{base}/xhr-multipart/")
    # a random boundary per response (no payload can forge a part), announced first
    boundary = (await stream.take(r"^--(socketio[0-9a-f]{32})\n")).group(1)
    sid = frames((await stream.take(rf"Content-Type: text/plain\n\n(.*?)\n--{boundary}\n")).group(1))[0]
    post = await fetch(
        f"{base}/xhr-multipart/{sid}/send", "POST", "data=" + quote(legacy_codec.encode_message("ping me"))
    )
    assert post.code == 200
    assert await asyncio.wait_for(seen["messages"].get(), WAIT) == "ping me"
    # nobody echoes the heartbeat: the session ends and the response is finished
    await asyncio.wait_for(seen["closed"].get(), WAIT)
    await asyncio.wait_for(stream.task, WAIT)


# -- websocket and flashsocket ---------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "flashsocket"])
async def test_websocket_transports(echo: Any, transport: str) -> None:
    base, seen = echo
    conn = await websocket_connect(base.replace("http", "ws") + f"/{transport}")
    first = await asyncio.wait_for(conn.read_message(), WAIT)
    sid = frames(first)[0]
    handler, _, kwargs = await asyncio.wait_for(seen["opened"].get(), WAIT)
    assert kwargs["sec_b"] == "abc" and handler.protocol == transport and len(sid) == 32
    report = legacy_codec.decode_payload(await asyncio.wait_for(conn.read_message(), WAIT))
    assert report[0].value["protocol"] == transport
    conn.write_message(legacy_codec.encode_message("a~m~b ü😀") + legacy_codec.encode_message({"k": [1]}))
    got: list[Any] = []
    while len(got) < 2:
        message = await asyncio.wait_for(conn.read_message(), WAIT)
        for item in legacy_codec.decode_payload(message):
            if item.beat is not None:
                conn.write_message(legacy_codec.heartbeat(int(item.beat)))
            else:
                got.append(item.value)
    assert got == ["a~m~b ü😀", {"k": [1]}]
    # several heartbeats answered: still open
    beats = 0
    while beats < 3:
        for item in legacy_codec.decode_payload(await asyncio.wait_for(conn.read_message(), WAIT)):
            if item.beat is not None:
                beats += 1
                conn.write_message(legacy_codec.heartbeat(int(item.beat)))
    conn.write_message(legacy_codec.encode_message("close me"))
    while await asyncio.wait_for(conn.read_message(), WAIT) is not None:
        pass
    assert await asyncio.wait_for(seen["closed"].get(), WAIT) == handler.id


async def test_websocket_heartbeat_timeout_and_framing_error(echo: Any) -> None:
    base, seen = echo
    conn = await websocket_connect(base.replace("http", "ws") + "/websocket")
    await asyncio.wait_for(conn.read_message(), WAIT)
    while await asyncio.wait_for(conn.read_message(), WAIT) is not None:
        pass  # heartbeats are not echoed: the server closes the connection
    await asyncio.wait_for(seen["closed"].get(), WAIT)
    conn = await websocket_connect(base.replace("http", "ws") + "/websocket")
    await asyncio.wait_for(conn.read_message(), WAIT)
    conn.write_message("not a frame")
    while await asyncio.wait_for(conn.read_message(), WAIT) is not None:
        pass


async def test_origins(serve: Any) -> None:
    handler, _ = make_handler(legacy_origins=["app.example:80"])
    server = await serve(tornado.web.Application([handler.routes("o")]))
    base = server.url + "/o"
    ok = await fetch(f"{base}/xhr-polling//1", headers={"Origin": "http://app.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "http://app.example"
    sid = frames(ok.body.decode())[0]
    denied = await fetch(f"{base}/xhr-polling/{sid}/send", "POST", "data=x", headers={"Origin": "http://evil.example"})
    assert (denied.code, denied.body) == (401, b"unauthorized")
    # refused before any session exists (the 0.6 reference opened one, then answered alert(...))
    jsonp = await fetch(f"{base}/jsonp-polling//1/0", headers={"Origin": "http://evil.example:8080"})
    assert (jsonp.code, jsonp.body) == (403, b"forbidden: origin not allowed (legacy_origins)")
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError):
        await websocket_connect(
            HTTPRequest(base.replace("http", "ws") + "/websocket", headers={"Origin": "http://evil.example"})
        )


# -- one handler, two generations ----------------------------------------------------


async def test_modern_client_through_the_same_route(echo: Any, node: Any) -> None:
    base, seen = echo
    node.connect("m", base.rsplit("/echoTest", 1)[0], path="/echoTest/123abc/")
    await node.expect("connect", "m")
    opened = await node.expect("event", "m", event="message")
    assert opened["args"][0]["opened"] == {"extra": "123abc", "sec_a": "123", "sec_b": "abc"}
    node.emit("m", "message", {"from": "modern"})
    assert await asyncio.wait_for(seen["messages"].get(), WAIT) == {"from": "modern"}
    await node.expect("event", "m", event="message", args=[{"from": "modern"}])
    node.emit("m", "message", "decimal")
    assert (await node.expect("event", "m", event="message", args=[{"price": 19.99}]))["args"]


async def test_broadcast_reaches_both_generations(echo: Any, node: Any) -> None:
    base, seen = echo
    node.connect("m", base.rsplit("/echoTest", 1)[0], path="/echoTest/123abc/", transports=["websocket"])
    await node.expect("connect", "m")
    conn = await websocket_connect(base.replace("http", "ws") + "/websocket")
    await asyncio.wait_for(conn.read_message(), WAIT)
    for _ in range(2):
        handler, _, _ = await asyncio.wait_for(seen["opened"].get(), WAIT)
    io = type(handler).io()  # the modern Server behind the handler class
    io.emit("message", {"to": "everyone"})
    io.emit("news", 1)
    await node.expect("event", "m", event="message", args=[{"to": "everyone"}])
    await node.expect("event", "m", event="news", args=[1])
    got: list[Any] = []
    while len(got) < 2:
        for item in legacy_codec.decode_payload(await asyncio.wait_for(conn.read_message(), WAIT)):
            if item.beat is not None:
                conn.write_message(legacy_codec.heartbeat(int(item.beat)))
            elif item.value != {} and "opened" not in (item.value if isinstance(item.value, dict) else {}):
                got.append(item.value)
    assert got == [{"to": "everyone"}, {"event": "news", "args": [1]}]


# -- Flash policy server and SocketIOServer ----------------------------------------------


async def policy_exchange(port: int, data: bytes) -> bytes:
    stream = IOStream(pysocket.socket())
    await stream.connect(("127.0.0.1", port))
    if data:
        await stream.write(data)
    return await asyncio.wait_for(stream.read_until_close(), WAIT)


async def test_flash_policy_server(tmp_path: Any) -> None:
    server = FlashPolicyServer(port=0, address="127.0.0.1", timeout=0.5)
    try:
        assert server.listening
        reply = await policy_exchange(server.port, b"<policy-file-request/>\0")
        assert reply.endswith(b"</cross-domain-policy>\n\0")
        assert b'<allow-access-from domain="*" to-ports="*"/>' in reply
        assert await policy_exchange(server.port, b"GET / HTTP/1.1\r\n\r\n") == b""
        assert await policy_exchange(server.port, b"x" * 100_000) == b""
        assert await policy_exchange(server.port, b"") == b""  # silent client: closed after the timeout
        assert await policy_exchange(server.port, b"<policy-file-request/>") != b""  # no NUL: still answered
    finally:
        server.stop()
    custom = tmp_path / "policy.xml"
    custom.write_text(
        '<cross-domain-policy><allow-access-from domain="a.example" to-ports="80"/></cross-domain-policy>'
    )
    server = FlashPolicyServer(port=0, address="127.0.0.1", policy_file=str(custom))
    try:
        assert b"a.example" in await policy_exchange(server.port, b"<policy-file-request/>\0")
    finally:
        server.stop()


def test_flash_policy_port_without_privileges(caplog: Any) -> None:
    import os

    if os.geteuid() == 0:
        # root may bind 843: take a port that is already in use to see the clear failure
        busy = pysocket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
    else:
        busy, port = None, 843
    try:
        server = FlashPolicyServer(port=port, address="127.0.0.1")
        assert not server.listening
        assert any("flash policy server" in r.getMessage() for r in caplog.records)
    finally:
        if busy is not None:
            busy.close()


async def test_socketio_server_reads_settings() -> None:
    handler, _ = make_handler()
    probe = pysocket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    app = tornado.web.Application(
        [handler.routes("s")],
        socket_io_port=port,
        flash_policy_port=0,
        enabled_protocols=["xhr-polling", "flashsocket"],
    )
    server = SocketIOServer(app)  # inside a running loop: starts listening and returns
    try:
        assert server.flash is not None and server.flash.listening
        assert (await fetch(f"http://127.0.0.1:{port}/s/xhr-polling//1")).code == 200
        assert (await fetch(f"http://127.0.0.1:{port}/s/jsonp-polling//1/0")).code == 404  # not enabled
    finally:
        server.stop()


async def test_flash_policy_server_fuzzed() -> None:
    """Random requests: a policy only for a policy request, silence and a close for anything else."""
    import random

    from tornad_io.websocket.flash import REQUEST

    rng = random.Random(20261124)
    server = FlashPolicyServer(port=0, address="127.0.0.1", timeout=0.3)
    try:
        for n in range(40):
            size = rng.choice([0, 1, 5, 22, 23, 24, 100, 5000])
            data = bytes(rng.randrange(256) for _ in range(size))
            if n % 5 == 0:
                data = REQUEST + data[:5]  # a policy request followed by junk
            reply = await policy_exchange(server.port, data)
            if data.startswith(REQUEST):
                assert reply.endswith(b"</cross-domain-policy>\n\0"), data
            else:
                assert reply == b"", data
        assert (await policy_exchange(server.port, REQUEST + b"\0")).endswith(b"\0")  # still serving
    finally:
        server.stop()


async def test_unnamed_extra_groups_reach_on_open_as_args(serve: Any) -> None:
    handler, seen = make_handler()
    app = tornado.web.Application([handler.routes("room", r"(\d+)-(?P<name>\w+)", extraSep="/")])
    server = await serve(app)
    assert (await fetch(f"{server.url}/room/42-alice/xhr-polling//1")).code == 200
    _, args, kwargs = await asyncio.wait_for(seen["opened"].get(), WAIT)
    assert args == ("42",) and kwargs == {"extra": "42-alice", "name": "alice"}
