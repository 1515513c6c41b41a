"""``io.attach(app)`` mounts the server in front of the application's own routes."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
import tornado.httpclient
import tornado.web

from tornad_io import Server, Socket

from .conftest import WAIT


class CatchAll(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("page")


async def test_a_catch_all_route_does_not_shadow_socket_io(serve: Any) -> None:
    app = tornado.web.Application([(r"/.*", CatchAll)])
    io = Server()
    io.attach(app)

    @io.on("echo")
    def echo(socket: Socket, text: str) -> str:
        return text

    server = await serve(app)
    for transports in (["polling"], ["websocket"]):
        client = socketio.AsyncClient(reconnection=False)
        try:
            await client.connect(server.url, transports=transports, wait_timeout=WAIT)
            assert await client.call("echo", "through", timeout=WAIT) == "through"
        finally:
            await client.disconnect()
    page = await tornado.httpclient.AsyncHTTPClient().fetch(server.url + "/anything/else")
    assert page.body == b"page"  # the application's own routes still answer


async def test_attach_at_a_custom_path_before_a_catch_all(serve: Any) -> None:
    app = tornado.web.Application([(r"/.*", CatchAll)])
    io = Server(path="/realtime/")
    io.attach(app)
    connected: asyncio.Queue[str] = asyncio.Queue()
    io.on("connect", lambda socket: connected.put_nowait(socket.id))
    server = await serve(app)
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(server.url, socketio_path="/realtime/", transports=["websocket"], wait_timeout=WAIT)
        assert await asyncio.wait_for(connected.get(), WAIT) == client.get_sid()
    finally:
        await client.disconnect()
