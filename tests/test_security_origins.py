"""Attacks through origins, cookies and headers, reproduced over the wire (issue: secure by default).

Each test plays the attacker's request against a real server on 127.0.0.1 and
asserts the safe outcome: a refusal before any session exists, or headers that
keep the response from being read, sniffed, cached or forged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket as pysocket
from typing import Any
from urllib.parse import quote

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import websocket_connect

from tornad_io import Server, Socket, SocketIOServer
from tornad_io.engineio import legacy_codec
from tornad_io.socket_io import SocketIOHandler

from .conftest import WAIT


async def fetch(url: str, method: str = "GET", body: str | bytes | None = None, **kw: Any) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT, **kw)


def cookie_app(**options: Any) -> tuple[Server, list[str]]:
    """An app that trusts its session cookie: whoever connects with it is the logged-in user."""
    io = Server(**options)
    executed: list[str] = []

    @io.on("secret")
    def secret(socket: Socket) -> str:
        executed.append(socket.handshake.headers.get("cookie", ""))
        return "private data of " + socket.handshake.headers.get("cookie", "nobody")

    return io, executed


VICTIM = {"Cookie": "session=victim"}


# -- JSONP (Engine.IO v4) ----------------------------------------------------------------


async def test_jsonp_is_off_by_default(serve: Any) -> None:
    io, _ = cookie_app()
    server = await serve(io.routes())
    # what a <script src=...> on the attacker's page sends: the victim's cookie, no Origin
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&j=0", headers=VICTIM)
    assert response.code == 400
    assert json.loads(response.body) == {"code": 3, "message": "JSONP polling is disabled (server option jsonp)"}
    assert not io.engine.sessions  # no session, so no id to steal


@pytest.mark.parametrize(
    "referer", [None, "http://evil.example/page.html", "null"], ids=["no-referer", "cross-site", "null"]
)
async def test_jsonp_script_load_from_another_site_is_refused(serve: Any, referer: str | None) -> None:
    io, executed = cookie_app(jsonp=True)
    server = await serve(io.routes())
    headers = dict(VICTIM)
    if referer is not None:
        headers["Referer"] = referer
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&j=0", headers=headers)
    assert response.code == 403
    assert b"sid" not in response.body
    assert not io.engine.sessions and not executed


async def test_jsonp_from_the_sites_own_page_still_works(serve: Any) -> None:
    io, executed = cookie_app(jsonp=True)
    server = await serve(io.routes())
    page = {"Referer": f"{server.url}/chat.html", **VICTIM}
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&j=1"
    body = (await fetch(url, headers=page)).body.decode()
    assert body.startswith('___eio[1]("0{')
    sid = json.loads(json.loads(body[len("___eio[1](") : -2])[1:])["sid"]
    url += f"&sid={sid}"
    form = {"Content-Type": "application/x-www-form-urlencoded", **page}
    assert (await fetch(url, "POST", "d=" + quote("40"), headers=form)).body == b"ok"
    assert "40" in (await fetch(url, headers=page)).body.decode()
    assert (await fetch(url, "POST", "d=" + quote('421["secret"]'), headers=form)).body == b"ok"
    assert "private data of session=victim" in (await fetch(url, headers=page)).body.decode()
    # the stolen id is worthless from elsewhere: the attacker's page is no allowed Referer
    evil = {"Referer": "http://evil.example/", "Content-Type": "application/x-www-form-urlencoded"}
    stolen = await fetch(url, "POST", "d=" + quote('422["secret"]'), headers=evil)
    assert stolen.code == 403
    assert len(executed) == 1


async def test_jsonp_with_any_origin_allowed_needs_no_referer(serve: Any) -> None:
    io, _ = cookie_app(jsonp=True, cors_allowed_origins="*")
    server = await serve(io.routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&j=0")
    assert response.code == 200 and response.body.startswith(b'___eio[0]("0{')


@pytest.mark.parametrize("index", ["²", "١", "0x1", "1" * 12])
async def test_jsonp_index_is_ascii_digits_only(serve: Any, index: str) -> None:
    io, _ = cookie_app(jsonp=True, cors_allowed_origins="*")
    server = await serve(io.routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&j={quote(index)}")
    assert response.code == 400
    assert not io.engine.sessions


# -- Socket.IO 0.6 script transports ----------------------------------------------------


def legacy_handler(**options: Any) -> tuple[type[SocketIOHandler], list[Any]]:
    opened: list[Any] = []

    class Private(SocketIOHandler):
        server_options = {"legacy_poll_duration": 0.2, **options}

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            opened.append(self.protocol)

        def on_message(self, message: Any) -> None:
            self.send("private data")

    return Private, opened


@pytest.mark.parametrize("transport", ["jsonp-polling", "htmlfile"])
@pytest.mark.parametrize(
    "referer", [None, "http://evil.example/", "http://app.example.evil.example/"], ids=["none", "evil", "lookalike"]
)
async def test_legacy_script_transports_honour_legacy_origins(serve: Any, transport: str, referer: str | None) -> None:
    handler, opened = legacy_handler(legacy_origins=["app.example:80"])
    server = await serve(tornado.web.Application([handler.routes("io")]))
    headers = dict(VICTIM)
    if referer is not None:
        headers["Referer"] = referer
    response = await fetch(f"{server.url}/io/{transport}//1/0", headers=headers)
    assert response.code == 403
    assert response.body == b"forbidden: origin not allowed (legacy_origins)"
    assert not opened and not handler.io().engine.sessions


async def test_legacy_jsonp_from_an_allowed_page_works(serve: Any) -> None:
    handler, opened = legacy_handler(legacy_origins=["app.example:80"])
    server = await serve(tornado.web.Application([handler.routes("io")]))
    page = {"Referer": "http://app.example/index.html", **VICTIM}
    first = await fetch(f"{server.url}/io/jsonp-polling//1/0", headers=page)
    assert first.code == 200 and first.body.startswith(b"io.JSONP[0]._(")
    assert opened == ["jsonp-polling"]
    sid = legacy_codec.decode_frames(json.loads(first.body.decode()[len("io.JSONP[0]._(") : -2]))[0]
    # the stolen id from another page: refused
    post = await fetch(
        f"{server.url}/io/jsonp-polling/{sid}/send",
        "POST",
        "data=" + quote(legacy_codec.encode_message("give")),
        headers={"Referer": "http://evil.example/", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert post.code == 403


async def test_legacy_script_transports_with_any_origin_keep_the_reference_behaviour(serve: Any) -> None:
    handler, opened = legacy_handler()  # legacy_origins defaults to *:*
    server = await serve(tornado.web.Application([handler.routes("io")]))
    response = await fetch(f"{server.url}/io/jsonp-polling//1/0")
    assert response.code == 200 and opened == ["jsonp-polling"]


async def test_legacy_posts_to_a_websocket_session_are_refused(serve: Any) -> None:
    handler, _ = legacy_handler()
    received: list[Any] = []
    handler.on_message = lambda self, message: received.append(message)  # type: ignore[method-assign]
    server = await serve(tornado.web.Application([handler.routes("io")]))
    conn = await websocket_connect(server.url.replace("http", "ws") + "/io/websocket")
    sid = legacy_codec.decode_frames(await asyncio.wait_for(conn.read_message(), WAIT))[0]  # type: ignore[arg-type]
    post = await fetch(f"{server.url}/io/websocket/{sid}/send", "POST", "data=" + quote("~m~3~m~abc"))
    assert post.code == 404
    conn.write_message(legacy_codec.encode_message("on the socket"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not received and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert received == ["on the socket"]  # the POSTed message never arrived
    conn.close()


async def test_xhr_multipart_boundary_cannot_be_forged_and_credentials_never_meet_a_wildcard(serve: Any) -> None:
    handler, _ = legacy_handler()
    server = await serve(tornado.web.Application([handler.routes("io")]))
    head: dict[str, str] = {}
    text: list[str] = []
    got = asyncio.Event()

    def chunk(data: bytes) -> None:
        text.append(data.decode())
        if sum(t.count("private data") for t in text) >= 1:
            got.set()

    def header(line: str) -> None:
        if ":" in line:
            name, value = line.split(":", 1)
            head[name.strip().lower()] = value.strip()

    request = HTTPRequest(
        f"{server.url}/io/xhr-multipart/",
        headers={"Origin": "http://app.example", **VICTIM},
        streaming_callback=chunk,
        header_callback=header,
        request_timeout=WAIT,
    )
    task = asyncio.ensure_future(AsyncHTTPClient().fetch(request, raise_error=False))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while "~m~" not in "".join(text) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    boundary = head["content-type"].split('boundary="', 1)[1].rstrip('"')
    assert boundary.startswith("socketio") and len(boundary) == len("socketio") + 32
    assert head["access-control-allow-origin"] == "http://app.example"  # echoed, never *
    assert head["access-control-allow-credentials"] == "true"
    # an attacker's message carrying the 0.6 reference boundary makes no part of its own
    sid = legacy_codec.decode_frames("".join(text).split("\n\n", 1)[1].split("\n--", 1)[0])[0]
    forged = "x\n--socketio\nContent-Type: text/plain\n\n~m~5~m~owned"
    post = await fetch(
        f"{server.url}/io/xhr-multipart/{sid}/send",
        "POST",
        "data=" + quote(legacy_codec.encode_message(forged)),
        headers={"Origin": "http://app.example"},
    )
    assert post.headers["Access-Control-Allow-Origin"] == "http://app.example"
    await asyncio.wait_for(got.wait(), WAIT)
    body = "".join(text)
    parts = [p for p in body.split(f"\n--{boundary}\n") if p]
    assert all(p.startswith(("--" + boundary, "Content-Type: text/plain\n\n")) for p in parts)
    assert "~m~5~m~owned" not in [p.split("\n\n", 1)[-1] for p in parts]
    task.cancel()
    AsyncHTTPClient().close()


# -- the original API's modern side --------------------------------------------------------


async def test_original_api_is_same_origin_by_default(serve: Any) -> None:
    handler, _ = legacy_handler()
    server = await serve(tornado.web.Application([handler.routes("io")]))
    ws = server.url.replace("http", "ws") + "/io/?EIO=4&transport=websocket"
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(ws, headers={"Origin": "http://evil.example", **VICTIM}))
    assert refused.value.code == 403
    own = await websocket_connect(HTTPRequest(ws, headers={"Origin": server.url}))
    assert (await asyncio.wait_for(own.read_message(), WAIT) or "").startswith("0{")
    own.close()


async def test_original_api_origins_from_application_settings(serve: Any) -> None:
    handler, _ = legacy_handler()
    app = tornado.web.Application([handler.routes("io")], cors_allowed_origins=["http://partner.example"])
    server = await serve(app)
    ws = server.url.replace("http", "ws") + "/io/?EIO=4&transport=websocket"
    partner = await websocket_connect(HTTPRequest(ws, headers={"Origin": "http://partner.example"}))
    assert (await asyncio.wait_for(partner.read_message(), WAIT) or "").startswith("0{")
    partner.close()
    with pytest.raises(HTTPClientError):
        await websocket_connect(HTTPRequest(ws, headers={"Origin": "http://evil.example"}))


# -- same origin, headers, logs ----------------------------------------------------------------


async def test_same_origin_rule_checks_the_scheme(serve: Any, caplog: Any) -> None:
    server = await serve(Server().routes())
    port = server.port
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    assert (await fetch(url, headers={"Origin": f"http://127.0.0.1:{port}"})).code == 200
    with caplog.at_level(logging.WARNING, logger="tornad_io"):
        for _ in range(3):
            https = await fetch(url, headers={"Origin": f"https://127.0.0.1:{port}"})
            assert https.code == 403
    refusals = [r for r in caplog.records if "cors_allowed_origins" in r.getMessage()]
    assert len(refusals) == 1  # logged once per origin, naming the option
    assert f"'https://127.0.0.1:{port}'" in refusals[0].getMessage()


async def test_responses_are_not_sniffed_or_cached(serve: Any) -> None:
    handler, _ = legacy_handler()
    io = Server(jsonp=True, cors_allowed_origins="*")
    server = await serve(tornado.web.Application([*io.routes(), handler.routes("io")]))
    for url in (
        f"{server.url}/socket.io/?EIO=4&transport=polling",
        f"{server.url}/socket.io/?EIO=4&transport=polling&j=0",
        f"{server.url}/io/xhr-polling//1",
        f"{server.url}/io/jsonp-polling//1/0",
    ):
        response = await fetch(url)
        assert response.code == 200, url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["Cache-Control"] == "no-store", url


async def test_sticky_cookie_is_secure_over_https(serve: Any) -> None:
    io = Server(cookie=True, trusted_proxies=["127.0.0.1"])
    server = await serve(io.routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    plain = (await fetch(url)).headers["Set-Cookie"]
    assert "Secure" not in plain and "HttpOnly" in plain
    tls = (await fetch(url, headers={"X-Forwarded-Proto": "https"})).headers["Set-Cookie"]
    assert tls.endswith("Secure") and "HttpOnly" in tls


async def test_access_log_leaves_out_session_ids_and_tokens(serve: Any, caplog: Any) -> None:
    quiet = await serve(Server().routes())
    verbose = await serve(Server(access_log_query=True).routes())
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        await fetch(f"{quiet.url}/socket.io/?EIO=4&transport=polling&token=hunter2")
        await fetch(f"{verbose.url}/socket.io/?EIO=4&transport=polling&token=hunter2")
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert len(lines) == 2
    assert "hunter2" not in lines[0] and "/socket.io/" in lines[0]
    assert "token=hunter2" in lines[1]


async def test_slow_handshake_rate_still_admits_a_first_handshake(serve: Any) -> None:
    io = Server(handshake_rate_per_ip=0.2)
    server = await serve(io.routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    assert (await fetch(url)).code == 200
    assert (await fetch(url)).code == 429


async def test_flash_policy_server_listens_on_socket_io_address_only() -> None:
    probe = pysocket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    handler, _ = legacy_handler()
    app = tornado.web.Application(
        [handler.routes("io")], socket_io_port=port, socket_io_address="127.0.0.1", flash_policy_port=0
    )
    server = SocketIOServer(app, auto_start=False)
    server.start()
    try:
        assert server.flash is not None and server.flash.listening
        bound = {sock.getsockname()[0] for sock in server.flash._sockets.values()}
        assert bound == {"127.0.0.1"}
    finally:
        server.stop()
