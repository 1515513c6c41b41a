"""examples/echo.py, the 2010 documentation's EchoHandler, with real clients of both generations.

Every message comes back as the string "[echo] " + the message (non-string
messages as their compact JSON text); nothing is sent on connect; on_open logs
the transport and the extra data, on_close logs.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import tornado.web

from examples.echo import make_app

from .conftest import wait_until
from .test_legacy_browser import LEGACY_CLIENT, Page

EXTRA = {"sec_a": "123", "sec_b": "abc", "extra": "123abc"}

# (what the client sends, what comes back)
ROUND_TRIPS: list[tuple[Any, str]] = [
    ("OMG! Ponies!", "[echo] OMG! Ponies!"),
    ("non-ASCII é ü 中文, astral 😀 and ~m~ inside", "[echo] non-ASCII é ü 中文, astral 😀 and ~m~ inside"),
    ({"json": ["object", 1, True, None], "é": "ü"}, '[echo] {"json":["object",1,true,null],"é":"ü"}'),
]


def echo_app() -> tornado.web.Application:
    """The example's application, plus a page that loads the 0.6 client (served by the test, not the example)."""
    app = make_app()
    app.add_handlers(
        r".*",
        [
            (r"/page\.html", Page),
            (r"/legacy/(socket\.io\.js)", tornado.web.StaticFileHandler, {"path": LEGACY_CLIENT}),
        ],
    )
    return app


def records(caplog: Any, start: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "echo" and r.msg.startswith(start)]


def assert_opened(caplog: Any, protocol: str) -> None:
    """on_open logged the transport and the extra data."""
    (connected,) = records(caplog, "Socket.IO client connected")
    assert connected.args[0] == protocol  # type: ignore[index]
    (extra,) = records(caplog, "Extra data for open")
    assert extra.args == EXTRA  # logging keeps a lone dict argument as the mapping itself


@pytest.mark.slow  # headless Chromium (up to 9 s)
@pytest.mark.parametrize("transport", ["websocket", "xhr-polling"])
async def test_echo_example_with_the_06_browser_client(
    serve: Any, legacy_browser: Any, caplog: Any, transport: str
) -> None:
    caplog.set_level(logging.INFO, logger="echo")
    server = await serve(echo_app())
    legacy_browser.send(
        cmd="open", id="b", url=f"{server.url}/page.html", transport=transport, resource="echoTest/123abc"
    )
    connected = await legacy_browser.expect("connect", "b", timeout=30)
    assert connected["transport"] == transport
    assert_opened(caplog, transport)
    for sent, answer in ROUND_TRIPS:
        legacy_browser.send(cmd="send", id="b", message=sent)
        await legacy_browser.wait_for(lambda r, a=answer: r.get("type") == "message" and r["message"] == a)
    # nothing but the echoes, in order: no first message on connect
    received = [r["message"] for r in legacy_browser.reports if r.get("type") == "message"]
    assert received == [answer for _, answer in ROUND_TRIPS]
    legacy_browser.send(cmd="disconnect", id="b")
    # xhr-polling tells the server nothing on disconnect: it closes once the aborted poll is gone for
    # legacy_close_timeout (8 s), so allow that plus a loaded machine.
    await wait_until(lambda: bool(records(caplog, "Closing Socket.IO client")), timeout=20)
    assert [r for r in legacy_browser.reports if r.get("type") == "error"] == []


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]])
async def test_echo_example_with_socketio_client(serve: Any, node: Any, caplog: Any, transports: list[str]) -> None:
    caplog.set_level(logging.INFO, logger="echo")
    server = await serve(make_app())
    node.connect("m", server.url, path="/echoTest/123abc/", transports=transports)
    await node.expect("connect", "m")
    assert_opened(caplog, transports[0])
    # socket.send(...) is emit("message", ...); send(a, b) reaches on_message as a list
    trips = [*ROUND_TRIPS, (["two", 2], '[echo] ["two",2]')]
    for sent, answer in trips:
        args = sent if isinstance(sent, list) else [sent]
        node.emit("m", "message", *args)
        await node.expect("event", "m", event="message", args=[answer])
    assert [e["args"] for e in node.events("m", "message")] == [[answer] for _, answer in trips]
    node.send(cmd="disconnect", id="m")
    await wait_until(lambda: bool(records(caplog, "Closing Socket.IO client")))
