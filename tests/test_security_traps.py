"""Traps for application code (issue: secure by default), with the real clients.

Authentication written the python-socketio way, in the ``connect`` handler,
must refuse; an ``async`` request hook must be awaited; a handler's bad return
value must cost that one answer, not the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import socketio
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.websocket import websocket_connect

from tornad_io import ConnectionRefused, Server, Socket

from .conftest import WAIT, wait_until


async def fetch(url: str, method: str = "GET", body: str | bytes | None = None, **kw: Any) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT, **kw)


def guarded_server(style: str) -> tuple[Server, dict[str, Any]]:
    """Authentication in the connect handler, in each way python-socketio users write it."""
    io = Server()
    seen: dict[str, Any] = {"handled": [], "disconnected": []}

    def decide(socket: Socket) -> Any:
        token = socket.handshake.auth.get("token")
        seen["handled"].append(token)
        socket.join("members")
        socket.emit("welcome", "hello " + str(token))  # sent only if the connection is accepted
        if token == "good":
            return None
        if style == "return-false":
            return False
        raise ConnectionRefused("not authorized", {"hint": "send a good token"})

    if style == "async-raise":

        async def connect(socket: Socket) -> Any:
            await asyncio.sleep(0)
            return decide(socket)

        io.on("connect", connect)
    else:
        io.on("connect", decide)
    io.on("disconnect", lambda socket, reason: seen["disconnected"].append(reason))
    return io, seen


@pytest.mark.parametrize("style", ["raise", "return-false", "async-raise"])
async def test_connect_handler_refuses_python_socketio_client(serve: Any, style: str) -> None:
    io, seen = guarded_server(style)
    server = await serve(io.routes())
    intruder = socketio.AsyncClient(reconnection=False)
    welcomed: list[Any] = []
    errors: list[Any] = []
    intruder.on("welcome", welcomed.append)
    intruder.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await intruder.connect(server.url, auth={"token": "bad"}, wait_timeout=WAIT)
    if style == "return-false":
        assert errors == [{"message": "Connection refused"}]
    else:
        assert errors == [{"message": "not authorized", "data": {"hint": "send a good token"}}]
    assert seen["handled"] == ["bad"]
    assert not io.sockets.sockets and not io.sockets.adapter.rooms.get("members")
    assert seen["disconnected"] == []  # never connected, so no disconnect
    member = socketio.AsyncClient(reconnection=False)
    got: asyncio.Queue[Any] = asyncio.Queue()
    member.on("welcome", got.put_nowait)
    await member.connect(server.url, auth={"token": "good"}, wait_timeout=WAIT)
    assert await asyncio.wait_for(got.get(), WAIT) == "hello good"  # emitted in the handler, after CONNECT
    assert welcomed == []
    await member.disconnect()


async def test_connect_handler_refusal_data_reaches_the_node_client(serve: Any, node: Any) -> None:
    io, _ = guarded_server("raise")
    server = await serve(io.routes())
    node.connect("bad", server.url, auth={"token": "bad"})
    error = await node.expect("connect_error", "bad")
    assert error["message"] == "not authorized" and error["data"] == {"hint": "send a good token"}
    node.connect("good", server.url, auth={"token": "good"})
    await node.expect("connect", "good")
    welcome = await node.expect("event", "good", event="welcome")
    assert welcome["args"] == ["hello good"]
    assert not node.events("bad", "welcome")


@pytest.mark.parametrize("verdict", [True, False, "banned address"])
async def test_async_allow_request_is_awaited(serve: Any, verdict: Any) -> None:
    asked: list[str] = []

    async def allow(handler: Any) -> Any:
        await asyncio.sleep(0)
        asked.append(handler.request.remote_ip)
        return verdict

    server = await serve(Server(allow_request=allow).routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    assert asked == ["127.0.0.1"]
    if verdict is True:
        assert response.code == 200 and response.body.startswith(b"0{")
    else:
        assert response.code == 403
        assert json.loads(response.body)["message"] == ("Forbidden" if verdict is False else verdict)


def unencodable_server() -> Server:
    io = Server()

    @io.on("bad")
    def bad(socket: Socket) -> object:
        return object()

    @io.on("good")
    def good(socket: Socket) -> str:
        return "fine"

    return io


async def test_unencodable_return_value_over_websocket(serve: Any, caplog: Any) -> None:
    io = unencodable_server()
    server = await serve(io.routes())
    conn = await websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket")
    await asyncio.wait_for(conn.read_message(), WAIT)
    conn.write_message("40")
    await asyncio.wait_for(conn.read_message(), WAIT)
    (socket,) = io.sockets.sockets.values()
    with caplog.at_level(logging.ERROR, logger="tornad_io"):
        conn.write_message('421["bad"]')
        conn.write_message('422["good"]')
        assert await asyncio.wait_for(conn.read_message(), WAIT) == '432["fine"]'
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and socket.id in errors[0] and "'bad'" in errors[0]
    assert socket.connected
    conn.close()


async def test_unencodable_return_value_over_polling(serve: Any) -> None:
    io = unencodable_server()
    server = await serve(io.routes())
    sid = json.loads((await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")).body.decode()[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    post = await fetch(url, "POST", b'421["bad"]\x1e422["good"]')
    assert (post.code, post.body) == (200, b"ok")  # was a 500
    assert (await fetch(url)).body == b'432["fine"]'


async def test_leave_takes_what_join_takes(serve: Any) -> None:
    io = Server()
    joined: asyncio.Queue[Socket] = asyncio.Queue()
    io.on("connect", joined.put_nowait)
    server = await serve(io.routes())
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(server.url, wait_timeout=WAIT)
    socket = await asyncio.wait_for(joined.get(), WAIT)
    socket.join(["a", "b", "c", "d"])
    socket.leave(["a", "b"])
    socket.leave(room for room in ("c",))
    socket.leave("zzz")  # not a member: nothing happens
    assert socket.rooms == {socket.id, "d"}
    await client.disconnect()
    await wait_until(lambda: not io.sockets.sockets)
