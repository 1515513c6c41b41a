"""The real Socket.IO 0.6 browser client (headless Chromium) against the original API."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import tornado.web

from examples.chatroom.app import make_app as chatroom_app
from tornad_io.socket_io import SocketIOHandler

from .conftest import ROOT, WAIT

pytestmark = pytest.mark.slow  # headless Chromium (up to 16 s a test)

LEGACY_CLIENT = os.path.join(ROOT, "node_modules", "socket.io-legacy", "support", "socket.io-client")
PAGE = b"<!doctype html><html><head><meta charset='utf-8'><script src='/legacy/socket.io.js'></script></head><body></body></html>"


class Page(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(PAGE)


def echo_app() -> tuple[tornado.web.Application, dict[str, Any]]:
    """A test app, not examples/echo.py (see test_echo_example.py): its first message reports what on_open
    received, messages come back unchanged, and "bye" closes from the server."""
    seen: dict[str, Any] = {"opened": asyncio.Queue(), "closed": asyncio.Queue()}

    class Echo(SocketIOHandler):
        server_options = {"legacy_heartbeat_interval": 0.3, "legacy_heartbeat_timeout": 2.0}

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            seen["opened"].put_nowait(self)
            self.send({"opened": kwargs, "protocol": self.protocol})

        def on_message(self, message: Any) -> None:
            if message == "bye":
                self.close()
            else:
                self.send(message)

        def on_close(self) -> None:
            seen["closed"].put_nowait(self.id)

    app = tornado.web.Application(
        [
            (r"/page\.html", Page),
            (r"/legacy/(socket\.io\.js)", tornado.web.StaticFileHandler, {"path": LEGACY_CLIENT}),
            Echo.routes("echoTest", "(?P<sec_a>123)(?P<sec_b>.*)", extraSep="/"),
        ]
    )
    return app, seen


MESSAGES = [
    "plain ascii",
    "non-ASCII é ü ß 中文",
    "astral 😀 𝄞 and ~m~ inside",
    {"json": ["object", 1, True, None]},
]


@pytest.mark.parametrize(
    "transport", ["websocket", "xhr-polling", "jsonp-polling", "htmlfile", "xhr-multipart", "flashsocket"]
)
async def test_real_06_client(serve: Any, legacy_browser: Any, transport: str) -> None:
    app, seen = echo_app()
    server = await serve(app)
    legacy_browser.send(
        cmd="open", id="b", url=f"{server.url}/page.html", transport=transport, resource="echoTest/123abc"
    )
    connected = await legacy_browser.expect("connect", "b", timeout=30)
    assert connected["transport"] == transport
    handler = await asyncio.wait_for(seen["opened"].get(), WAIT)
    assert handler.protocol == transport and connected["sessionid"] == handler.socket.client.session.sid
    opened = await legacy_browser.wait_for(lambda r: r.get("type") == "message" and isinstance(r["message"], dict))
    assert opened["message"] == {
        "opened": {"extra": "123abc", "sec_a": "123", "sec_b": "abc"},
        "protocol": transport,
    }
    for message in MESSAGES:
        legacy_browser.send(cmd="send", id="b", message=message)
        await legacy_browser.wait_for(lambda r, m=message: r.get("type") == "message" and r["message"] == m)
    if transport not in ("xhr-polling", "jsonp-polling"):
        # heartbeats every 0.3 s are echoed by the client: the session outlives several of them
        session = handler.socket.client.session
        beats = session._beat
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while session._beat < beats + 3:
            assert loop.time() < deadline, "heartbeats stopped"
            await asyncio.sleep(0.1)
        assert seen["closed"].empty()
    # a close from the server is seen by the client
    legacy_browser.send(cmd="send", id="b", message="bye")
    await legacy_browser.expect("disconnect", "b", timeout=30)
    assert await asyncio.wait_for(seen["closed"].get(), WAIT) == handler.id
    errors = [r for r in legacy_browser.reports if r.get("type") == "error"]
    assert errors == []


async def test_client_disconnect_is_seen_by_the_server(serve: Any, legacy_browser: Any) -> None:
    app, seen = echo_app()
    server = await serve(app)
    legacy_browser.send(
        cmd="open", id="b", url=f"{server.url}/page.html", transport="websocket", resource="echoTest/123abc"
    )
    await legacy_browser.expect("connect", "b", timeout=30)
    handler = await asyncio.wait_for(seen["opened"].get(), WAIT)
    legacy_browser.send(cmd="disconnect", id="b")
    assert await asyncio.wait_for(seen["closed"].get(), WAIT) == handler.id


async def test_chatroom_06_and_4x_clients_see_each_other(serve: Any, legacy_browser: Any, node: Any) -> None:
    server = await serve(chatroom_app())
    legacy_browser.send(cmd="open", id="old", url=f"{server.url}/legacy.html", transport="xhr-polling", resource="chat")
    await legacy_browser.expect("connect", "old", timeout=30)
    node.connect("new", server.url, path="/chat/")
    await node.expect("connect", "new")
    node.emit("new", "message", "hello from 4.x")
    heard = await legacy_browser.wait_for(
        lambda r: r.get("type") == "message" and r["message"].get("text") == "hello from 4.x"
    )
    assert heard["message"]["from"].startswith("guest-")
    legacy_browser.send(cmd="send", id="old", message="hello from 0.6 ☃")
    await node.wait_for(lambda r: r.get("event") == "message" and r["args"][0].get("text") == "hello from 0.6 ☃")
