"""socket.io-client 2.5 in headless Chromium, and the chatroom where three generations meet.

In a browser the 2.x client has XHR2: unless told ``forceBase64``, its polling sends and takes binary
payloads (``application/octet-stream``); with it, binary travels as ``b4<base64>`` text. JSONP polling
(``forceJSONP``) is text only. The chatroom test runs the example's own pages: the 0.6 and 2.x pages in
Chromium, a 4.x client under Node, all in one room.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from examples.chatroom.app import make_app as chatroom_app
from tornad_io import Server, Socket

from .conftest import ROOT, WAIT, start_driver

pytestmark = pytest.mark.slow  # headless Chromium

V2_CLIENT = os.path.join(ROOT, "node_modules", "socket.io-client-v2", "dist")
PAGE = b"<!doctype html><html><head><meta charset='utf-8'><script src='/v2/socket.io.js'></script></head><body></body></html>"


@pytest.fixture
async def browser() -> Any:
    """Headless Chromium driven by tests/js/v2_browser.mjs."""
    if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        pytest.fail("chromium is missing: run the README's test command (it installs Debian's chromium)")
    clients = await start_driver("v2_browser.mjs", ready_timeout=60)
    yield clients
    await clients.close()


class Page(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(PAGE)


class Wire(tornado.web.OutputTransform):
    """Records each Engine.IO request's method and body type, and its response's type (Tornado's public
    output-transform hook: what went over the wire, not what the server thinks)."""

    seen: list[tuple[str, str, str]] = []

    def __init__(self, request: HTTPServerRequest) -> None:
        self.request = request

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        if self.request.path.startswith("/socket.io"):
            sent = self.request.headers.get("Content-Type", "")
            self.seen.append((self.request.method or "", sent, headers.get("Content-Type", "")))
        return status_code, headers, chunk


def app_for(io: Server) -> tornado.web.Application:
    Wire.seen = []
    app = tornado.web.Application(
        [
            (r"/page\.html", Page),
            (r"/v2/(socket\.io\.js)", tornado.web.StaticFileHandler, {"path": V2_CLIENT}),
            *io.routes(),
        ]
    )
    app.add_transform(Wire)
    return app


def echo_server(**options: Any) -> tuple[Server, asyncio.Queue[Socket]]:
    io = Server(allow_eio3=True, **options)
    connected: asyncio.Queue[Socket] = asyncio.Queue()
    io.on("connect", connected.put_nowait)

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return io, connected


async def round_trips(browser: Any, socket: Socket, tag: str) -> None:
    """Binary both ways, with acknowledgements both ways."""
    browser.send(
        cmd="emit", id="a", event="echo", args=["text é 😀", b"\x00\x01\xff", {"n": [b"\x02"]}], ack=True, tag=tag
    )
    ack = await browser.expect("ack", "a", tag=tag)
    assert ack["args"] == ["text é 😀", b"\x00\x01\xff", {"n": [b"\x02"]}]
    answer = await socket.emit_with_ack("question", {"blob": b"\x05\x06"}, "ü", timeout=WAIT)
    assert answer == {"echo": [{"blob": b"\x05\x06"}, "ü"]}


async def test_binary_polling_payloads_in_a_browser(serve: Any, browser: Any) -> None:
    io, connected = echo_server()
    server = await serve(app_for(io))
    browser.send(
        cmd="connect", id="a", page=f"{server.url}/page.html", url=server.url, opts={"transports": ["polling"]}
    )
    await browser.expect("connect", "a", timeout=30)
    socket = await asyncio.wait_for(connected.get(), WAIT)
    assert "b64" not in socket.handshake.query  # XHR2: the client takes binary
    await round_trips(browser, socket, "binary")
    posted = [sent for method, sent, _ in Wire.seen if method == "POST"]
    polled = [got for method, _, got in Wire.seen if method == "GET"]
    assert "application/octet-stream" in posted  # the client's binary payloads
    assert "application/octet-stream" in polled  # and the server's
    assert not [r for r in browser.reports if r.get("type") == "error"]


async def test_force_base64_then_upgrade_in_a_browser(serve: Any, browser: Any) -> None:
    io, connected = echo_server()
    server = await serve(app_for(io))
    browser.send(cmd="connect", id="a", page=f"{server.url}/page.html", url=server.url, opts={"forceBase64": True})
    await browser.expect("connect", "a", timeout=30)
    socket = await asyncio.wait_for(connected.get(), WAIT)
    assert socket.handshake.query.get("b64") == "1"
    await round_trips(browser, socket, "before")
    await browser.expect("upgrade", "a", transport="websocket")
    assert socket.transport == "websocket"
    await round_trips(browser, socket, "after")
    assert not [t for t in Wire.seen if "application/octet-stream" in t]  # base64 text throughout
    assert not [r for r in browser.reports if r.get("type") == "error"]


async def test_jsonp_polling_in_a_browser(serve: Any, browser: Any) -> None:
    io, connected = echo_server(jsonp=True)
    server = await serve(app_for(io))
    opts = {"transports": ["polling"], "jsonp": True, "forceJSONP": True}
    browser.send(cmd="connect", id="a", page=f"{server.url}/page.html", url=server.url, opts=opts)
    await browser.expect("connect", "a", timeout=30)
    socket = await asyncio.wait_for(connected.get(), WAIT)
    assert "j" in socket.handshake.query
    await round_trips(browser, socket, "jsonp")
    assert {got for method, _, got in Wire.seen if method == "GET"} == {"text/javascript; charset=UTF-8"}
    assert {sent for method, sent, _ in Wire.seen if method == "POST"} == {"application/x-www-form-urlencoded"}
    assert not [r for r in browser.reports if r.get("type") == "error"]


def said(report: dict[str, Any], text: str) -> bool:
    entry = report.get("entry")
    return report.get("type") == "log" and isinstance(entry, dict) and entry.get("text") == text


async def test_chatroom_three_generations_in_one_room(serve: Any, browser: Any, node: Any) -> None:
    """examples/chatroom: its 0.6 page and its 2.x page in Chromium, a 4.x client under Node."""
    server = await serve(chatroom_app())
    browser.send(cmd="page", id="old", url=f"{server.url}/legacy.html")
    browser.send(cmd="page", id="v2", url=f"{server.url}/v2.html")
    for page in ("old", "v2"):
        welcome = await browser.wait_for(
            lambda r, p=page: r.get("id") == p and r.get("type") == "log" and "welcome" in r["entry"], timeout=30
        )
        assert welcome["entry"]["welcome"].startswith("guest-")
    node.connect("new", server.url, path="/chat/")
    await node.expect("connect", "new")

    node.emit("new", "message", "hello from 4.x")
    for page in ("old", "v2"):
        heard = await browser.wait_for(lambda r, p=page: r.get("id") == p and said(r, "hello from 4.x"))
        assert heard["entry"]["from"].startswith("guest-")

    browser.send(cmd="type", id="v2", text="hello from 2.x ☃")
    await browser.wait_for(lambda r: r.get("id") == "old" and said(r, "hello from 2.x ☃"))
    await node.wait_for(lambda r: r.get("event") == "message" and r["args"][0].get("text") == "hello from 2.x ☃")

    browser.send(cmd="type", id="old", text="hello from 0.6 😀")
    await browser.wait_for(lambda r: r.get("id") == "v2" and said(r, "hello from 0.6 😀"))
    await node.wait_for(lambda r: r.get("event") == "message" and r["args"][0].get("text") == "hello from 0.6 😀")
    assert not [r for r in browser.reports if r.get("type") == "error"]
