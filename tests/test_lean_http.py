"""The lean polling path of tornad_io.HTTPServer answers exactly as Tornado's handler path does.

Every test sends the same raw bytes to two servers built alike, one with the
lean path (``tornad_io.HTTPServer``'s default) and one with ``lean_polling=False``
(every request through the application's ``EngineIOHandler``), and compares
what comes back on the wire, with only the ``Date`` header and the session ids
(random) set aside.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import socket as pysocket
import zlib
from typing import Any, Callable

import pytest
import tornado.netutil
import tornado.web
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tornad_io import HTTPServer, Server
from tornad_io.transports import engineio

from .conftest import WAIT


class Hello(tornado.web.RequestHandler):
    """An application page beside the Engine.IO endpoint."""

    def get(self) -> None:
        self.set_header("X-App", "yes")
        self.write("hello from the app")

    def post(self) -> None:
        self.write(b"app got " + self.request.body)


class Pair:
    """The same application twice: ``lean`` (the lean path on) and ``plain`` (off)."""

    def __init__(self, lean: int, plain: int, servers: dict[str, Server]) -> None:
        self.ports = {"lean": lean, "plain": plain}
        self.servers = servers


def make_app(**options: Any) -> tuple[tornado.web.Application, Server]:
    io = Server(**options)

    @io.on("echo")
    def echo(socket: Any, data: Any) -> Any:
        return data

    app = tornado.web.Application([(r"/hello", Hello)])
    io.attach(app)
    return app, io


@pytest.fixture
async def pair() -> Any:
    started: list[HTTPServer] = []

    async def start(server_kwargs: dict[str, Any] | None = None, **options: Any) -> Pair:
        ports: dict[str, int] = {}
        servers: dict[str, Server] = {}
        for name, lean in (("lean", True), ("plain", False)):
            app, io = make_app(**options)
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=pysocket.AF_INET)
            http = HTTPServer(app, lean_polling=lean, **(server_kwargs or {}))
            assert (http._lean is not None) is lean  # the lean path is on where asked, and only there
            http.add_sockets(sockets)
            started.append(http)
            ports[name] = sockets[0].getsockname()[1]
            servers[name] = io
        return Pair(ports["lean"], ports["plain"], servers)

    yield start
    for http in started:
        http.stop()
        await http.close_all_connections()


async def exchange(port: int, parts: list[bytes], pause: float = 0.0, close: bool = True) -> bytes:
    """Send *parts* (one write each, *pause* s apart) and read until the server closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5 if not close else WAIT)
            except asyncio.TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received
    finally:
        writer.close()


_SID = re.compile(rb'(?<="sid":")[^"]+|(?<=sid\\":\\")[^"\\]+|(?<=io=)[^;\r]+|(?<=sid=)[A-Za-z0-9_-]+')
_DATE = re.compile(rb"\r\nDate: [^\r]*")
_LENGTH = re.compile(rb"Content-Length: [0-9]+")


def normal(raw: bytes) -> bytes:
    """*raw* with the Date header and session ids replaced by placeholders (a compressed body inflated)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if b"\r\nContent-Encoding: gzip" in head:
        raw = _LENGTH.sub(b"Content-Length: N", head) + sep + b"gzip:" + gzip.decompress(body)
    elif b"\r\nContent-Encoding: deflate" in head:
        raw = _LENGTH.sub(b"Content-Length: N", head) + sep + b"deflate:" + zlib.decompress(body)
    return _SID.sub(b"SID", _DATE.sub(b"\r\nDate: DATE", raw))


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        if not any(n.lower() in ("content-length", "transfer-encoding") for n in (headers or {})):
            lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body


HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


async def open_session(port: int, headers: dict[str, str] | None = None) -> str:
    raw = await exchange(port, [request("GET", HANDSHAKE, {"Connection": "close", **(headers or {})})])
    match = re.search(rb'"sid":"([^"]+)"', raw)
    assert match, raw
    return match.group(1).decode()


async def both(pair: Pair, make: Callable[[str], list[bytes]], with_session: bool = False, **kwargs: Any) -> bytes:
    """The normalized answers of both servers to the same bytes, checked equal; the lean one is returned."""
    answers = {}
    for name, port in pair.ports.items():
        sid = await open_session(port) if with_session else ""
        answers[name] = normal(await exchange(port, make(sid), **kwargs))
    assert answers["lean"] == answers["plain"]
    return answers["lean"]


def close(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"Connection": "close", **(headers or {})}


# -- the requests the lean path answers ---------------------------------------------------


async def test_handshake_and_errors_match(pair: Any) -> None:
    p = await pair()
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close())])
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-Content-Type-Options: nosniff" in answer and b"Cache-Control: no-store" in answer
    for target in (
        "/socket.io/?EIO=4&transport=polling&sid=unknown",
        "/socket.io/?EIO=3&transport=polling",
        "/socket.io/?EIO=4&transport=nope",
        "/socket.io/?EIO=4&transport=websocket",
        "/socket.io?EIO=4&transport=polling",
        "/socket.io/?EIO=4&transport=polling&t=%E2%82%AC&x=a+b&empty=&flag",
    ):
        await both(p, lambda sid, target=target: [request("GET", target, close())])
    await both(p, lambda sid: [request("POST", HANDSHAKE, close(), b"4x")])  # a handshake must be a GET
    await both(p, lambda sid: [request("POST", HANDSHAKE + "&sid=unknown", close(), b"4x")])


async def test_poll_post_and_overlap_match(pair: Any) -> None:
    p = await pair()
    answer = await both(
        p, lambda sid: [request("POST", f"{HANDSHAKE}&sid={sid}", close({"Content-Type": "text/plain"}), b"2")], True
    )
    assert answer.endswith(b"\r\n\r\nok")
    # the first poll after the handshake: the CONNECT answer is queued only after a CONNECT, so send one
    answer = await both(
        p,
        lambda sid: [
            request("POST", f"{HANDSHAKE}&sid={sid}", {}, b"40"),
            request("GET", f"{HANDSHAKE}&sid={sid}", close()),
        ],
        True,
    )
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and b'40{"sid":"SID"}' in answer
    # an undecodable payload closes the session with a 400
    await both(p, lambda sid: [request("POST", f"{HANDSHAKE}&sid={sid}", close(), b"\xff\xfe")], True)
    await both(p, lambda sid: [request("POST", f"{HANDSHAKE}&sid={sid}", close(), b"9zzz")], True)


async def test_overlapping_gets_close_the_session(pair: Any) -> None:
    p = await pair()
    for name, port in p.ports.items():
        sid = await open_session(port)
        # a first GET waits for packets; a second one at once is the client's mistake
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("GET", f"{HANDSHAKE}&sid={sid}", {}))
        await writer.drain()
        await asyncio.sleep(0.1)
        second = await exchange(port, [request("GET", f"{HANDSHAKE}&sid={sid}", close())])
        assert second.startswith(b"HTTP/1.1 400 Bad Request"), name
        first = await asyncio.wait_for(reader.read(65536), WAIT)
        assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"\r\n\r\n1"), (name, first)  # CLOSE
        writer.close()


async def test_split_across_segments_and_pipelined(pair: Any) -> None:
    p = await pair()
    whole = request("GET", HANDSHAKE, close())
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    answer = await both(p, lambda sid: pieces, pause=0.005)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    body = b'42["echo","split"]'
    post = request("POST", f"{HANDSHAKE}&sid=SIDHERE", close({"Content-Type": "text/plain;charset=UTF-8"}), body)
    answer = await both(
        p, lambda sid: [chunk.replace(b"SIDHERE", sid.encode()) for chunk in (post[:-5], post[-5:])], True, pause=0.05
    )
    assert answer.endswith(b"ok")
    # three requests in one write: a handshake, the application's page, a poll with no session
    answer = await both(
        p,
        lambda sid: [
            request("GET", HANDSHAKE, {})
            + request("GET", "/hello", {})
            + request("GET", HANDSHAKE + "&sid=nope", close())
        ],
    )
    assert answer.count(b"HTTP/1.1 ") == 3 and b"hello from the app" in answer


async def test_body_limits_match(pair: Any) -> None:
    p = await pair(max_http_buffer_size=1000)
    big = b"4" + b"x" * 1500
    answer = await both(p, lambda sid: [request("POST", f"{HANDSHAKE}&sid={sid}", close(), big)], True)
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(b"Payload Too Large")
    # beyond the server's body cap, or a Content-Length that is not a number: Tornado's 400, on both paths
    huge = {"Content-Length": str(10_000_000)}
    await both(p, lambda sid: [request("POST", f"{HANDSHAKE}&sid={sid}", huge, b"")], True, close=False)
    for bad in ("abc", "-1", "1, 2"):
        answer = await both(
            p, lambda sid, bad=bad: [request("POST", f"{HANDSHAKE}&sid={sid}", {"Content-Length": bad}, b"4x")], True
        )
        assert answer.startswith(b"HTTP/1.1 400")
    # chunked bodies are read by Tornado on both paths
    chunked = {"Transfer-Encoding": "chunked", "Connection": "close"}
    head = request("POST", f"{HANDSHAKE}&sid=SIDHERE", chunked)
    answer = await both(
        p, lambda sid: [head.replace(b"SIDHERE", sid.encode()), b"2\r\n4a\r\n1\r\nb\r\n0\r\n\r\n"], True, pause=0.02
    )
    assert answer.endswith(b"ok")


async def test_other_methods_and_paths_reach_the_application(pair: Any) -> None:
    p = await pair(cors_allowed_origins=["https://app.example"], cors_credentials=True)
    origin = {"Origin": "https://app.example"}
    for method in ("HEAD", "OPTIONS", "PUT", "DELETE"):
        await both(p, lambda sid, method=method: [request(method, HANDSHAKE, close(origin))])
    answer = await both(
        p,
        lambda sid: [
            request("OPTIONS", HANDSHAKE, close({**origin, "Access-Control-Request-Headers": "content-type"}))
        ],
    )
    assert answer.startswith(b"HTTP/1.1 204")
    answer = await both(p, lambda sid: [request("GET", "/hello", close())])
    assert b"X-App: yes" in answer and answer.endswith(b"hello from the app")
    answer = await both(p, lambda sid: [request("POST", "/hello", close(), b"data")])
    assert answer.endswith(b"app got data")
    await both(p, lambda sid: [request("GET", "/nothing", close())])


async def test_cors_cookie_and_compression_match(pair: Any) -> None:
    p = await pair(cors_allowed_origins=["https://app.example"], cors_credentials=True, cookie=True)
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Origin": "https://app.example"}))])
    assert b"Access-Control-Allow-Credentials: true" in answer and b"Set-Cookie: io=SID" in answer
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Origin": "https://evil.example"}))])
    assert answer.startswith(b"HTTP/1.1 403")
    await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Origin": "https://app.example\x01"}))])
    p = await pair(http_compression_threshold=10)
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Accept-Encoding": "gzip"}))])
    assert b"Content-Encoding: gzip" in answer
    await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Accept-Encoding": "deflate"}))])
    p = await pair()  # same-origin rule: Origin against Host
    await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Origin": "http://127.0.0.1"}))])
    await both(p, lambda sid: [request("GET", HANDSHAKE, close({"Origin": "http://other"}))])


async def test_trusted_proxy_address_and_hooks(pair: Any) -> None:
    p = await pair(trusted_proxies=["127.0.0.1"])
    seen: dict[str, list[Any]] = {"lean": [], "plain": []}
    for name, io in p.servers.items():

        def initial(headers: dict[str, Any], req: Any, name: str = name) -> None:
            headers["X-Initial"] = "1"
            headers["Set-Cookie"] = ["a=1", "b=2"]
            seen[name].append(("initial", req.method, req.path, req.remote_ip))

        def every(headers: dict[str, Any], req: Any, name: str = name) -> None:
            headers["X-Every"] = ["x", "y"]
            headers["Cache-Control"] = "private"

        def refused(refusal: Any, name: str = name) -> None:
            seen[name].append(("refused", refusal.code, refusal.request.path))

        def connected(session: Any, name: str = name) -> None:
            seen[name].append(("address", session.info.address))

        io.engine.on("initial_headers", initial)
        io.engine.on("headers", every)
        io.engine.on("connection_error", refused)
        io.engine.on("connection", connected)
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close({"X-Forwarded-For": "203.0.113.9"}))])
    assert b"X-Initial: 1" in answer and b"Set-Cookie: b=2" in answer and b"Cache-Control: private" in answer
    await both(p, lambda sid: [request("GET", HANDSHAKE + "&sid=none", close())])
    await both(p, lambda sid: [request("POST", f"{HANDSHAKE}&sid={sid}", close(), b"40")], True)
    assert seen["lean"] == seen["plain"]
    assert ("address", "203.0.113.9") in seen["lean"] and ("refused", 1, "/socket.io/") in seen["lean"]


async def test_allow_request_hook_and_jsonp_take_the_standard_path(pair: Any) -> None:
    calls: list[str] = []

    async def allow(handler: Any) -> bool | str:
        calls.append(handler.request.path)
        return handler.request.headers.get("X-Token") == "ok" or "no token"

    p = await pair(allow_request=allow, jsonp=True, cors_allowed_origins="*")
    await both(p, lambda sid: [request("GET", HANDSHAKE, close({"X-Token": "ok"}))])
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close())])
    assert answer.startswith(b"HTTP/1.1 403") and b"no token" in answer
    assert len(calls) == 4
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE + "&j=0", close({"X-Token": "ok"}))])
    assert b"___eio[0]" in answer


async def test_a_client_that_leaves_a_poll_keeps_its_packets(pair: Any) -> None:
    p = await pair()
    port = p.ports["lean"]
    sid = await open_session(port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request("GET", f"{HANDSHAKE}&sid={sid}", {}))
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()  # the poll's connection goes away before anything is sent
    await asyncio.sleep(0.1)
    raw = await exchange(port, [request("POST", f"{HANDSHAKE}&sid={sid}", close(), b"40")])
    assert raw.endswith(b"ok")
    raw = await exchange(port, [request("GET", f"{HANDSHAKE}&sid={sid}", close())])
    assert raw.startswith(b"HTTP/1.1 200 OK") and b'40{"sid":' in raw


async def test_the_lean_path_steps_aside_for_what_it_cannot_match(pair: Any) -> None:
    # A handler instance per request shows which path answered (the lean one builds none).
    made: list[str] = []
    original = engineio.EngineIOHandler.initialize

    def counting(self: Any, engine: Any) -> None:
        made.append(self.request.method)
        original(self, engine)

    engineio.EngineIOHandler.initialize = counting  # type: ignore[method-assign]
    try:
        p = await pair()
        await exchange(p.ports["lean"], [request("GET", HANDSHAKE, close())])
        assert made == []
        await exchange(p.ports["plain"], [request("GET", HANDSHAKE, close())])
        assert made == ["GET"]
    finally:
        engineio.EngineIOHandler.initialize = original  # type: ignore[method-assign]
    # Applications the lean path cannot answer exactly for: it stays off.
    for settings in ({"compress_response": True}, {"log_function": lambda handler: None}):
        app = tornado.web.Application([], **settings)
        Server().attach(app)
        assert HTTPServer(app)._lean is None
    app = tornado.web.Application([])
    Server().attach(app)
    assert HTTPServer(app, xheaders=True)._lean is None
    # A rule of the application before the Engine.IO one takes its path: Tornado's routing decides.
    app = tornado.web.Application([(r"/socket\.io/", Hello)])
    io = Server()
    app.wildcard_router.add_rules(io.routes())
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=pysocket.AF_INET)
    http = HTTPServer(app)
    http.add_sockets(sockets)
    try:
        raw = await exchange(sockets[0].getsockname()[1], [request("GET", HANDSHAKE, close())])
        assert raw.endswith(b"hello from the app")
    finally:
        http.stop()


async def test_host_and_query_checks_match(pair: Any) -> None:
    p = await pair()
    target = HANDSHAKE.encode()
    for raw in (
        b"GET " + target + b" HTTP/1.1\r\nConnection: close\r\n\r\n",  # no Host
        b"GET " + target + b" HTTP/1.0\r\n\r\n",  # HTTP/1.0 needs none
        b"GET " + target + b" HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        b"GET " + target + b" HTTP/1.1\r\nHost: a,b\r\nConnection: close\r\n\r\n",
        b"GET " + target + b" HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
        b"GET " + target + b" HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n",
    ):
        for _ in range(2):  # the second time, a Host value already seen
            await both(p, lambda sid, raw=raw: [raw])
    many = "&".join(f"k{i}=v" for i in range(1200))
    await both(p, lambda sid: [request("GET", f"{HANDSHAKE}&{many}", close())])
    await both(p, lambda sid: [request("GET", f"{HANDSHAKE}&a=%ZZ&b=%41&c&=x&&d=1&d=2", close())])


async def test_framing_the_lean_connection_leaves_to_tornado_matches(pair: Any) -> None:
    p = await pair(server_kwargs={"max_header_size": 2048})
    target = HANDSHAKE.encode()
    for raw in (
        b"GET " + target + b" HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET " + target + b" HTTP/1.1\nHost: x\nConnection: close\n\n",  # bare LF
        b"\r\nGET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # a blank line first
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\nConnection: close\r\n\r\n",
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n bad-fold\r\nConnection: close\r\n\r\n",
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /socket.io/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    ):
        await both(p, lambda sid, raw=raw: [raw], close=False)
    head = b"POST " + target + b"&sid=SIDHERE HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    await both(p, lambda sid: [head.replace(b"SIDHERE", sid.encode()), b"40"], True, pause=0.05, close=False)


async def test_idle_and_body_timeouts_close_as_tornado_does(pair: Any) -> None:
    p = await pair(server_kwargs={"idle_connection_timeout": 0.3, "body_timeout": 0.3})
    for name, port in p.ports.items():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # says nothing at all
        assert await asyncio.wait_for(reader.read(65536), WAIT) == b"", name
        writer.close()
        sid = await open_session(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("GET", HANDSHAKE, {}))  # answered, then idle
        await writer.drain()
        first = await asyncio.wait_for(reader.read(65536), WAIT)
        assert first.startswith(b"HTTP/1.1 200 OK"), name
        assert await asyncio.wait_for(reader.read(65536), WAIT) == b"", name  # closed after the idle timeout
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("POST", f"{HANDSHAKE}&sid={sid}", {"Content-Length": "10"})[: -0 or None] + b"4x")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(65536), WAIT) == b"", name  # the body never came: closed
        writer.close()


async def test_many_requests_on_one_connection_then_the_application(pair: Any) -> None:
    p = await pair()
    for name, port in p.ports.items():
        sid = await open_session(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(20):
            body = f'42["echo","{i}"]'.encode()
            writer.write(request("POST", f"{HANDSHAKE}&sid={sid}", {}, body))
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), WAIT)
            assert answer.startswith(b"HTTP/1.1 200 OK"), name
        writer.write(request("GET", "/hello", close()))
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(65536), WAIT)
        assert rest.endswith(b"hello from the app"), (name, rest)
        writer.close()


async def test_a_listener_that_breaks_the_response_gets_the_same_500(pair: Any) -> None:
    p = await pair()
    for io in p.servers.values():

        def bad(headers: dict[str, Any], req: Any) -> None:
            headers["X-Bad"] = "a\r\nb"

        io.engine.on("initial_headers", bad)
    answer = await both(p, lambda sid: [request("GET", HANDSHAKE, close())])
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error")


_HEADER_PARTS = st.sampled_from(list("aZ09-_:; \t\r\n,=\"'é\x00\x7f\x80\xff/") + ["Host", "Content-Length", "\r\n"])
_HEADER_TEXT = st.lists(_HEADER_PARTS, max_size=8).map("".join)


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_HEADER_TEXT, _HEADER_TEXT), max_size=6))
def test_fast_header_parse_is_tornados(lines: list[tuple[str, str]]) -> None:
    """Any header block: the same headers as HTTPHeaders.parse, or the same error."""
    from tornado.httputil import HTTPHeaders, HTTPInputError

    from tornad_io.transports.fast_headers import parse_headers

    for text in ("\r\n" + "".join(f"{n}:{v}\r\n" for n, v in lines), "".join(f"{n}: {v}\r\n" for n, v in lines)):
        try:
            expected = list(HTTPHeaders.parse(text).get_all())
        except HTTPInputError:
            with pytest.raises(HTTPInputError):
                parse_headers(text)
            continue
        assert list(parse_headers(text).get_all()) == expected


def test_fast_header_parse_common_blocks() -> None:
    from tornado.httputil import HTTPHeaders

    from tornad_io.transports.fast_headers import parse_headers

    block = "\r\nHost: 127.0.0.1:3000\r\nAccept: */*\r\nX-Many: a\r\nx-many: b \r\nContent-Length: 2\r\nEmpty:\r\n"
    parsed = parse_headers(block)
    assert list(parsed.get_all()) == list(HTTPHeaders.parse(block).get_all())
    assert parsed.get_list("X-Many") == ["a", "b"] and parsed["Content-Length"] == "2" and parsed["Empty"] == ""
    assert list(parse_headers("").get_all()) == []
