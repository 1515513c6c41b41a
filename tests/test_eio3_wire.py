"""Engine.IO v3 and Socket.IO protocol v4 on the wire: raw HTTP and raw WebSocket (``allow_eio3``).

The ground of the official v3 test suite (``socketio/engine.io-protocol``, branch ``v3``, ``test-suite/``),
plus the Socket.IO layer a 2.x client sees: the implicit main namespace, CONNECT with a query, ERROR packets.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError

from examples.conformance_server import make_app
from tornad_io import ConnectionRefused, Server, Socket
from tornad_io.engineio.clock import VirtualClock

from .conftest import wait_until
from .test_engineio_protocol import fetch, recv, ws


@pytest.fixture
async def v3(serve: Any) -> str:
    """The conformance server with ``--allow-eio3``: an echo engine at /engine.io/, Socket.IO at /socket.io/."""
    server = await serve(make_app(allow_eio3=True))
    return str(server.url)


def split(payload: str) -> list[str]:
    """A v3 text payload's packets (test helper: lengths are checked against UTF-16 units)."""
    packets = []
    while payload:
        length, _, rest = payload.partition(":")
        units = 0
        taken = 0
        while units < int(length):
            units += 2 if ord(rest[taken]) > 0xFFFF else 1
            taken += 1
        assert units == int(length)
        packets.append(rest[:taken])
        payload = rest[taken:]
    return packets


async def open_polling(base: str, path: str = "engine.io", query: str = "&b64=1") -> tuple[str, str]:
    """A v3 polling session; returns its sid and the URL of its requests."""
    response = await fetch(f"{base}/{path}/?EIO=3&transport=polling{query}")
    assert response.code == 200, response.body
    handshake = split(response.body.decode())[0]
    sid = json.loads(handshake[1:])["sid"]
    return sid, f"{base}/{path}/?EIO=3&transport=polling&sid={sid}"


# -- the option --------------------------------------------------------------------------


async def test_eio3_is_refused_unless_allowed(serve: Any) -> None:
    off = await serve(Server().routes())
    response = await fetch(f"{off.url}/socket.io/?EIO=3&transport=polling")
    assert response.code == 400
    assert json.loads(response.body) == {"code": 5, "message": "Unsupported protocol version"}
    with pytest.raises(HTTPClientError) as info:
        await ws(off.url.replace("http", "ws") + "/socket.io/?EIO=3&transport=websocket")
    assert info.value.code == 400
    on = await serve(Server(allow_eio3=True).routes())
    assert (await fetch(f"{on.url}/socket.io/?EIO=3&transport=polling")).code == 200
    assert (await fetch(f"{on.url}/socket.io/?EIO=4&transport=polling")).code == 200
    for version in ("", "abc", "2", "5"):  # only "3" and "4" name a generation
        response = await fetch(f"{on.url}/socket.io/?EIO={version}&transport=polling")
        assert json.loads(response.body)["message"] == "Unsupported protocol version"


async def test_a_session_answers_only_its_own_protocol_version(v3: str) -> None:
    _, url = await open_polling(v3)
    v4 = await fetch(f"{v3}/engine.io/?EIO=4&transport=polling")
    sid4 = json.loads(v4.body.decode()[1:])["sid"]
    wrong = await fetch(url.replace("EIO=3", "EIO=4"))  # a v3 session asked for with EIO=4
    assert (wrong.code, json.loads(wrong.body)) == (400, {"code": 3, "message": "Bad request"})
    wrong = await fetch(f"{v3}/engine.io/?EIO=3&transport=polling&sid={sid4}")
    assert (wrong.code, json.loads(wrong.body)) == (400, {"code": 3, "message": "Bad request"})
    sid = url.rsplit("=", 1)[1]
    with pytest.raises(HTTPClientError):
        await ws(v3.replace("http", "ws") + f"/engine.io/?EIO=4&transport=websocket&sid={sid}")


# -- handshake -------------------------------------------------------------------------------


async def test_polling_handshake(v3: str) -> None:
    response = await fetch(f"{v3}/engine.io/?EIO=3&transport=polling")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    body = response.body.decode()
    length, _, packet = body.partition(":")
    assert int(length) == len(packet) and packet[0] == "0"
    value = json.loads(packet[1:])
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout"}  # v3's four fields
    assert value["upgrades"] == ["websocket"]
    assert (value["pingInterval"], value["pingTimeout"]) == (300, 200)


async def test_socketio_joins_the_main_namespace_on_the_handshake(v3: str) -> None:
    response = await fetch(f"{v3}/socket.io/?EIO=3&transport=polling&b64=1")
    handshake, connect, *rest = split(response.body.decode())
    assert handshake[0] == "0" and connect == "40"  # sent by the server, unasked
    sid = json.loads(handshake[1:])["sid"]
    url = f"{v3}/socket.io/?EIO=3&transport=polling&sid={sid}"
    packets = rest or split((await fetch(url)).body.decode())
    assert packets == ['42["auth",{}]']  # the connect handler ran for "/"


async def test_websocket_handshake(v3: str) -> None:
    conn = await ws(v3.replace("http", "ws") + "/socket.io/?EIO=3&transport=websocket")
    value = json.loads((await recv(conn))[1:])
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout"} and value["upgrades"] == []
    assert await recv(conn) == "40"
    assert await recv(conn) == '42["auth",{}]'
    conn.close()


# -- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "6:4hello",
        "6:4test16:4test26:4test3",
        "6:4hello10:b4AQIDBA==",
        "2:4€",
        "6:4é😀𝄞",  # astral characters count two units each
    ],
)
async def test_polling_echo(v3: str, body: str) -> None:
    _, url = await open_polling(v3)
    push = await fetch(url, "POST", body.encode())
    assert (push.code, push.body) == (200, b"ok")
    poll = await fetch(url)
    assert poll.code == 200 and poll.body.decode() == body


async def test_binary_payloads_for_a_client_with_xhr2(v3: str) -> None:
    _, url = await open_polling(v3, query="")  # no b64: the client takes binary
    assert (await fetch(url, "POST", b"6:4hello10:b4AQIDBA==")).code == 200
    poll = await fetch(url)
    assert poll.headers["Content-Type"] == "application/octet-stream"
    assert poll.body == bytes([0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4])
    # and a binary payload POSTed as socket.io-client 2.x in a browser sends it: UTF-8 text, binary with its type
    body = bytes([0, 4, 255, 0x34, 0xE2, 0x82, 0xAC, 1, 3, 255, 4, 0xFE, 0xFF])
    push = await fetch(url, "POST", body, headers={"Content-Type": "application/octet-stream"})
    assert (push.code, push.body) == (200, b"ok")
    assert (await fetch(url)).body == body
    # text alone stays a text payload
    assert (await fetch(url, "POST", b"2:4a")).code == 200
    poll = await fetch(url)
    assert (poll.headers["Content-Type"], poll.body) == ("text/plain; charset=UTF-8", b"2:4a")


async def test_binary_post_bodies_are_not_engine_io_v4(v3: str) -> None:
    """Only v3 has binary payloads: a v4 session refuses one and closes, as the reference does."""
    response = await fetch(f"{v3}/engine.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    url = f"{v3}/engine.io/?EIO=4&transport=polling&sid={sid}"
    push = await fetch(url, "POST", bytes([0, 2, 255, 52, 97]), headers={"Content-Type": "application/octet-stream"})
    assert push.code == 400
    assert (await fetch(url)).code == 400


async def test_websocket_binary_frames_carry_their_type(v3: str) -> None:
    conn = await ws(v3.replace("http", "ws") + "/engine.io/?EIO=3&transport=websocket")
    await recv(conn)
    conn.write_message("4hello ☃")
    assert await recv(conn) == "4hello ☃"
    conn.write_message(b"\x04\x01\x02\x03\x04", binary=True)
    assert await recv(conn) == b"\x04\x01\x02\x03\x04"
    conn.close()
    # a client that asked for base64 (forceBase64) gets binary as text, and may send it so
    conn = await ws(v3.replace("http", "ws") + "/engine.io/?EIO=3&transport=websocket&b64=1")
    await recv(conn)
    conn.write_message(b"\x04\x01\x02", binary=True)
    assert await recv(conn) == "b4AQI="
    conn.write_message("b4AQI=")
    assert await recv(conn) == "b4AQI="
    conn.close()


@pytest.mark.parametrize("body", [b"abc", b"6:4hello1", b"2:4\xf0\x9f", b"1:3"])
async def test_invalid_payloads_close_the_session(v3: str, body: bytes) -> None:
    # the last is a PONG from the client: a heartbeat in the wrong direction, refused as the reference does
    _, url = await open_polling(v3)
    response = await fetch(url, "POST", body)
    if body != b"1:3":
        assert response.code == 400
    assert (await fetch(url)).code == 400


async def test_invalid_websocket_packet_closes(v3: str) -> None:
    conn = await ws(v3.replace("http", "ws") + "/engine.io/?EIO=3&transport=websocket")
    await recv(conn)
    conn.write_message("abc")
    assert await recv(conn) is None


# -- heartbeat: the client pings ----------------------------------------------------------------


def virtual_server(**options: Any) -> tuple[Server, VirtualClock, asyncio.Queue[tuple[str, str]]]:
    io = Server(allow_eio3=True, **options)
    clock = VirtualClock()
    io.engine.clock = clock
    gone: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    io.on("disconnect", lambda socket, reason: gone.put_nowait((socket.id, reason)))
    return io, clock, gone


async def test_polling_heartbeat_and_timeout_on_a_virtual_clock(serve: Any) -> None:
    io, clock, gone = virtual_server(ping_interval=25, ping_timeout=20)
    server = await serve(io.routes())
    _, url = await open_polling(server.url, "socket.io")
    (socket,) = io.sockets.sockets.values()
    for _ in range(3):
        poll = asyncio.ensure_future(fetch(url))
        clock.advance(44.9)  # a whole pingInterval + pingTimeout, less a little: the server never pings
        assert (await fetch(url, "POST", b"1:2")).code == 200
        assert (await poll).body == b"1:3"  # the PING is answered, and the wait starts again
    poll = asyncio.ensure_future(fetch(url))
    await wait_until(lambda: socket.client.session.transport.polling)  # type: ignore[attr-defined]
    clock.advance(44.9)
    assert gone.empty()
    clock.advance(0.2)  # no PING within pingInterval + pingTimeout: closed
    assert await asyncio.wait_for(gone.get(), 10) == (socket.id, "ping timeout")
    assert (await poll).body == b"1:1"
    assert (await fetch(url)).code == 400


async def test_websocket_heartbeat_and_timeout_on_a_virtual_clock(serve: Any) -> None:
    io, clock, gone = virtual_server(ping_interval=25, ping_timeout=20)
    server = await serve(io.routes())
    conn = await ws(server.url.replace("http", "ws") + "/socket.io/?EIO=3&transport=websocket")
    assert (await recv(conn))[0] == "0" and await recv(conn) == "40"
    for _ in range(3):
        clock.advance(44.9)
        conn.write_message("2")
        assert await recv(conn) == "3"
    clock.advance(45.1)
    assert (await asyncio.wait_for(gone.get(), 10))[1] == "ping timeout"
    assert await recv(conn) is None


async def test_probe_ping_is_answered_with_its_data(v3: str) -> None:
    _, url = await open_polling(v3)
    assert (await fetch(url, "POST", b"6:2hello")).code == 200
    assert (await fetch(url)).body == b"6:3hello"


# -- close and upgrade ----------------------------------------------------------------------------


async def test_client_close_packet(v3: str) -> None:
    _, url = await open_polling(v3)
    poll = asyncio.ensure_future(fetch(url))
    await asyncio.sleep(0.05)
    assert (await fetch(url, "POST", b"1:1")).code == 200
    assert (await poll).body == b"1:6"
    assert (await fetch(url)).code == 400
    conn = await ws(v3.replace("http", "ws") + "/engine.io/?EIO=3&transport=websocket")
    await recv(conn)
    conn.write_message("1")
    assert await recv(conn) is None


async def test_upgrade(v3: str) -> None:
    sid, url = await open_polling(v3)
    conn = await ws(v3.replace("http", "ws") + f"/engine.io/?EIO=3&transport=websocket&sid={sid}")
    conn.write_message("2probe")
    assert await recv(conn) == "3probe"
    assert (await fetch(url)).body == b"1:6"  # the last poll is released with a noop
    conn.write_message("5")
    conn.write_message("4hello")
    assert await recv(conn) == "4hello"
    assert (await fetch(url)).code == 400  # polling is over for this session
    second = await ws(v3.replace("http", "ws") + f"/engine.io/?EIO=3&transport=websocket&sid={sid}")
    assert await recv(second) is None
    conn.write_message(b"\x04\x01", binary=True)
    assert await recv(conn) == "b4AQ=="  # the session asked for base64 at its handshake (b64=1)


async def test_server_close_over_polling(serve: Any) -> None:
    io = Server(allow_eio3=True)
    server = await serve(io.routes())
    _, url = await open_polling(server.url, "socket.io")
    (socket,) = io.sockets.sockets.values()
    socket.emit("bye", b"\x01")
    socket.disconnect(close=True)
    packets = split((await fetch(url)).body.decode())
    assert packets == ['451-["bye",{"_placeholder":true,"num":0}]', "b4AQ==", "41", "1"]
    assert (await fetch(url)).code == 400


# -- JSONP ------------------------------------------------------------------------------------------


async def test_jsonp_polling(v3: str, serve: Any) -> None:
    response = await fetch(f"{v3}/engine.io/?EIO=3&transport=polling&j=0")
    assert response.headers["Content-Type"] == "text/javascript; charset=UTF-8"
    body = response.body.decode()
    assert body.startswith('___eio[0]("') and body.endswith('");')
    (handshake,) = split(json.loads(body[len("___eio[0](") : -2]))
    sid = json.loads(handshake[1:])["sid"]
    url = f"{v3}/engine.io/?EIO=3&transport=polling&sid={sid}&j=0"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    post = await fetch(url, "POST", "d=" + quote("12:4line1\\nline210:b4AQIDBA=="), headers=form)
    assert post.body == b"ok"
    poll = (await fetch(url)).body.decode()
    assert poll == '___eio[0]("12:4line1\\nline210:b4AQIDBA==");'  # binary as base64: JSONP is text
    off = await serve(Server(allow_eio3=True).routes())  # jsonp is off by default, for v3 as for v4
    assert (await fetch(f"{off.url}/socket.io/?EIO=3&transport=polling&j=0")).code == 400


@pytest.mark.parametrize("referer", [None, "http://evil.example/page.html", "null"])
async def test_jsonp_keeps_the_referer_rule(serve: Any, referer: str | None) -> None:
    """A v3 JSONP script load, like a v4 one, must come from an allowed page (its Referer)."""
    io = Server(allow_eio3=True, jsonp=True)
    server = await serve(io.routes())
    headers = {"Cookie": "session=victim"}
    if referer is not None:
        headers["Referer"] = referer
    response = await fetch(f"{server.url}/socket.io/?EIO=3&transport=polling&j=0", headers=headers)
    assert response.code == 403 and not io.engine.sessions
    page = {"Referer": f"{server.url}/chat.html"}
    body = (await fetch(f"{server.url}/socket.io/?EIO=3&transport=polling&j=0", headers=page)).body.decode()
    assert body.startswith('___eio[0]("')
    handshake, connect = split(json.loads(body[len("___eio[0](") : -2]))
    assert connect == "40"
    url = f"{server.url}/socket.io/?EIO=3&transport=polling&j=0&sid={json.loads(handshake[1:])['sid']}"
    evil = {"Referer": "http://evil.example/", "Content-Type": "application/x-www-form-urlencoded"}
    assert (await fetch(url, "POST", "d=" + quote('6:42["x"]'), headers=evil)).code == 403


# -- Socket.IO protocol v4 ---------------------------------------------------------------------------


async def socketio_ws(base: str) -> Any:
    conn = await ws(base.replace("http", "ws") + "/socket.io/?EIO=3&transport=websocket")
    assert (await recv(conn))[0] == "0"
    assert await recv(conn) == "40"
    return conn


async def test_namespaces_with_query_refusals_and_errors(serve: Any) -> None:
    io = Server(allow_eio3=True)
    seen: asyncio.Queue[Socket] = asyncio.Queue()

    @io.of("/custom").on("connect")
    def custom(socket: Socket) -> None:
        seen.put_nowait(socket)

    @io.of("/private").use
    def private(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "ok":
            raise ConnectionRefused("Not authorized")

    @io.of("/data").use
    def with_data(socket: Socket) -> None:
        raise ConnectionRefused("refused", data={"why": "closed"})

    server = await serve(io.routes())
    conn = await socketio_ws(server.url)
    conn.write_message("40/custom?token=abc&x=1,")  # the query rides in the namespace string
    assert await recv(conn) == "40/custom,"
    socket = await asyncio.wait_for(seen.get(), 10)
    assert socket.handshake.auth == {"token": "abc", "x": "1"} and socket.nsp.name == "/custom"
    conn.write_message("40/nope,")
    assert await recv(conn) == '44/nope,"Invalid namespace"'
    conn.write_message("40/private?token=bad,")
    assert await recv(conn) == '44/private,"Not authorized"'  # an ERROR packet: the message, a string
    conn.write_message("40/private?token=ok,")
    assert await recv(conn) == "40/private,"
    conn.write_message("40/data,")
    assert await recv(conn) == '44/data,{"why":"closed"}'  # with data, the data, as the reference sends
    # events, acks and disconnect in a namespace
    socket.emit("hi", 1)
    assert await recv(conn) == '42/custom,["hi",1]'
    conn.write_message("41/custom,")
    await wait_until(lambda: not socket.connected)
    conn.close()


async def test_refused_main_namespace(serve: Any) -> None:
    io = Server(allow_eio3=True, connect_timeout=0.3)

    @io.use
    def refuse(socket: Socket) -> None:
        raise ConnectionRefused("go away")

    server = await serve(io.routes())
    conn = await ws(server.url.replace("http", "ws") + "/socket.io/?EIO=3&transport=websocket")
    assert (await recv(conn))[0] == "0"
    assert await recv(conn) == '44"go away"'
    assert await recv(conn) is None  # no namespace joined: closed after connectTimeout, as the reference does


async def test_binary_attachments_both_ways(serve: Any) -> None:
    io = Server(allow_eio3=True)

    @io.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    server = await serve(io.routes())
    conn = await socketio_ws(server.url)
    conn.write_message('451-5["echo",{"_placeholder":true,"num":0},"x"]')
    conn.write_message(b"\x04\xde\xad", binary=True)
    assert await recv(conn) == '461-5[{"_placeholder":true,"num":0},"x"]'
    assert await recv(conn) == b"\x04\xde\xad"
    conn.close()
