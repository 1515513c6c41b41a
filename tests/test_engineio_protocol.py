"""Engine.IO v4 and Socket.IO v5 on the wire: raw HTTP and raw WebSocket.

These cover the same ground as the official protocol test suites
(socketio/engine.io-protocol and socketio/socket.io-protocol), plus CORS,
JSONP, compression, limits, cookies and proxies.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

from examples.conformance_server import make_app
from tornad_io import Server, Socket

from .conftest import WAIT


async def fetch(url: str, method: str = "GET", body: str | bytes | None = None, **kwargs: Any) -> HTTPResponse:
    client = AsyncHTTPClient()
    if method == "POST" and body is None:
        body = b""
    return await client.fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT, **kwargs)


async def handshake(base: str, path: str = "socket.io") -> str:
    response = await fetch(f"{base}/{path}/?EIO=4&transport=polling")
    assert response.code == 200
    return str(json.loads(response.body.decode()[1:])["sid"])


async def ws(url: str) -> WebSocketClientConnection:
    return await asyncio.wait_for(websocket_connect(url), WAIT)


async def recv(conn: WebSocketClientConnection, skip_pings: bool = False) -> Any:
    while True:
        message = await asyncio.wait_for(conn.read_message(), WAIT)
        if skip_pings and message == "2":
            continue
        return message


@pytest.fixture
async def conformance(serve: Any) -> Any:
    server = await serve(make_app())
    return server.url


# -- handshake -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["engine.io", "socket.io"])
async def test_polling_handshake(conformance: str, path: str) -> None:
    response = await fetch(f"{conformance}/{path}/?EIO=4&transport=polling")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    body = response.body.decode()
    assert body[0] == "0"
    value = json.loads(body[1:])
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert value["upgrades"] == ["websocket"]
    assert (value["pingInterval"], value["pingTimeout"], value["maxPayload"]) == (300, 200, 1000000)
    assert len(value["sid"]) >= 20


@pytest.mark.parametrize(
    "query, method, status, code, message",
    [
        ("transport=polling", "GET", 400, 5, "Unsupported protocol version"),
        ("EIO=abc&transport=polling", "GET", 400, 5, "Unsupported protocol version"),
        ("EIO=3&transport=polling", "GET", 400, 5, "Unsupported protocol version"),
        ("EIO=4", "GET", 400, 0, "Transport unknown"),
        ("EIO=4&transport=abc", "GET", 400, 0, "Transport unknown"),
        ("EIO=4&transport=polling", "POST", 400, 2, "Bad handshake method"),
        ("EIO=4&transport=polling", "PUT", 400, 2, "Bad handshake method"),
        ("EIO=4&transport=polling&sid=nope", "GET", 400, 1, "Session ID unknown"),
        ("EIO=4&transport=websocket", "GET", 400, 3, "Bad request"),
    ],
)
async def test_refused_requests(
    conformance: str, query: str, method: str, status: int, code: int, message: str
) -> None:
    response = await fetch(f"{conformance}/socket.io/?{query}", method, body=b"" if method in ("POST", "PUT") else None)
    assert response.code == status
    assert json.loads(response.body) == {"code": code, "message": message}


@pytest.mark.parametrize(
    "query", ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc"]
)
async def test_refused_websockets(conformance: str, query: str) -> None:
    url = conformance.replace("http", "ws") + f"/engine.io/?{query}"
    with pytest.raises(HTTPClientError) as info:
        await ws(url)
    assert info.value.code == 400


async def test_websocket_handshake(conformance: str) -> None:
    conn = await ws(conformance.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket")
    value = json.loads((await recv(conn))[1:])
    assert value["upgrades"] == [] and value["pingInterval"] == 300
    conn.close()


# -- messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA==", "4é€𝄞😀 and more"],
)
async def test_polling_echo(conformance: str, body: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    push = await fetch(url, "POST", body.encode())
    assert (push.code, push.body) == (200, b"ok")
    poll = await fetch(url)
    assert poll.code == 200 and poll.body.decode() == body


async def test_websocket_echo_text_and_binary(conformance: str) -> None:
    conn = await ws(conformance.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket")
    await recv(conn)
    conn.write_message("4hello ☃")
    assert await recv(conn, skip_pings=True) == "4hello ☃"
    conn.write_message(b"\x01\x02\x03\x04", binary=True)
    assert await recv(conn, skip_pings=True) == b"\x01\x02\x03\x04"
    conn.close()


async def test_invalid_packet_closes_polling_session(conformance: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    assert (await fetch(url, "POST", b"abc")).code == 400
    assert (await fetch(url)).code == 400


async def test_invalid_packet_closes_websocket(conformance: str) -> None:
    conn = await ws(conformance.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket")
    await recv(conn)
    conn.write_message("abc")
    assert await recv(conn, skip_pings=True) is None  # closed


async def test_duplicate_poll_closes_session(conformance: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    first = asyncio.ensure_future(fetch(url))
    await asyncio.sleep(0.05)  # let the first poll be parked on the server before the second
    second = await fetch(url + "&t=burst")
    assert second.code == 400
    first_response = await first
    assert (first_response.code, first_response.body) == (200, b"1")
    assert (await fetch(url)).code == 400


async def test_oversize_post_is_refused(conformance: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    response = await fetch(url, "POST", b"4" + b"x" * 1_000_001)
    assert response.code == 413
    assert (await fetch(url)).code == 400


async def test_oversize_websocket_message_closes(conformance: str) -> None:
    conn = await ws(conformance.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket")
    await recv(conn)
    conn.write_message("4" + "x" * 1_000_001)
    assert await recv(conn, skip_pings=True) is None
    assert conn.close_code == 1009


# -- heartbeat and close ------------------------------------------------------------


async def test_polling_ping_pong_then_timeout(conformance: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    for _ in range(3):
        poll = await fetch(url)
        assert poll.body == b"2"
        assert (await fetch(url, "POST", b"3")).code == 200
    # no pong this time: the session is gone after pingInterval + pingTimeout
    assert (await fetch(url)).body == b"2"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (await fetch(url)).code != 400:
        assert loop.time() < deadline


async def test_websocket_ping_pong_then_timeout(conformance: str) -> None:
    conn = await ws(conformance.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket")
    await recv(conn)
    for _ in range(3):
        assert await recv(conn) == "2"
        conn.write_message("3")
    assert await recv(conn) == "2"
    assert await recv(conn) is None  # no pong: closed by the server


async def test_client_close_packet(conformance: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    poll = asyncio.ensure_future(fetch(url))
    await asyncio.sleep(0.05)
    assert (await fetch(url, "POST", b"1")).code == 200
    assert (await poll).body == b"6"
    assert (await fetch(url)).code == 400
    conn = await ws(conformance.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket")
    await recv(conn)
    conn.write_message("1")
    assert await recv(conn) is None


# -- upgrade ---------------------------------------------------------------------


async def test_upgrade(conformance: str) -> None:
    sid = await handshake(conformance, "engine.io")
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}"
    conn = await ws(conformance.replace("http", "ws") + f"/engine.io/?EIO=4&transport=websocket&sid={sid}")
    conn.write_message("2probe")
    assert await recv(conn) == "3probe"
    assert (await fetch(url)).body == b"6"  # the last poll is released with a noop
    conn.write_message("5")
    conn.write_message("4hello")
    assert await recv(conn, skip_pings=True) == "4hello"
    assert (await fetch(url)).code == 400  # polling is over for this session
    second = await ws(conformance.replace("http", "ws") + f"/engine.io/?EIO=4&transport=websocket&sid={sid}")
    assert await recv(second) is None  # a second WebSocket for the session is closed
    conn.write_message("4still")
    assert await recv(conn, skip_pings=True) == "4still"


async def test_upgrade_timeout_keeps_polling(serve: Any) -> None:
    io = Server(upgrade_timeout=0.2, ping_interval=5)
    server = await serve(io.routes())
    sid = await handshake(server.url)
    conn = await ws(server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}")
    assert await recv(conn) is None  # never probed: closed after upgradeTimeout
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert (await fetch(url, "POST", b"40")).code == 200
    assert (await fetch(url)).body.startswith(b"40{")


async def test_messages_queued_during_upgrade_arrive_once_in_order(serve: Any) -> None:
    io = Server(ping_interval=5)
    got: asyncio.Queue[Socket] = asyncio.Queue()
    io.on("connect", got.put_nowait)
    server = await serve(io.routes())
    sid = await handshake(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    assert (await fetch(url)).body.startswith(b"40{")
    socket = await asyncio.wait_for(got.get(), WAIT)
    conn = await ws(server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}")
    conn.write_message("2probe")
    assert await recv(conn) == "3probe"
    for n in range(200):
        socket.emit("n", n)
    received = []
    body = (await fetch(url)).body.decode()
    received += [p for p in body.split("\x1e") if p != "6"]
    conn.write_message("5")
    for n in range(200, 400):
        socket.emit("n", n)
    while len(received) < 400:
        received.append(await recv(conn, skip_pings=True))
    assert received == [f'42["n",{n}]' for n in range(400)]


# -- Socket.IO on the wire ------------------------------------------------------------


async def sio_socket(base: str) -> WebSocketClientConnection:
    conn = await ws(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
    await recv(conn)
    return conn


@pytest.mark.parametrize(
    "sent, reply, auth",
    [
        ("40", "40", '42["auth",{}]'),
        ('40{"token":"123"}', "40", '42["auth",{"token":"123"}]'),
        ("40/custom,", "40/custom,", '42/custom,["auth",{}]'),
        ('40/custom,{"token":"abc"}', "40/custom,", '42/custom,["auth",{"token":"abc"}]'),
    ],
)
async def test_sio_connect(conformance: str, sent: str, reply: str, auth: str) -> None:
    conn = await sio_socket(conformance)
    conn.write_message(sent)
    message = await recv(conn)
    assert message.startswith(reply)
    assert set(json.loads(message[len(reply) :])) == {"sid"}
    assert await recv(conn) == auth


async def test_sio_unknown_namespace_and_bad_handshake(conformance: str) -> None:
    conn = await sio_socket(conformance)
    conn.write_message("40/random")
    assert await recv(conn) == '44/random,{"message":"Invalid namespace"}'
    conn = await sio_socket(conformance)
    conn.write_message("4abc")
    assert await recv(conn, skip_pings=True) is None


async def test_sio_connect_timeout(conformance: str) -> None:
    conn = await sio_socket(conformance)
    assert await recv(conn, skip_pings=True) is None  # no CONNECT within 1 s: closed


async def connected_sio(base: str) -> WebSocketClientConnection:
    conn = await sio_socket(base)
    conn.write_message("40")
    await recv(conn)
    await recv(conn)
    return conn


async def test_sio_disconnect_and_namespaces(conformance: str) -> None:
    conn = await connected_sio(conformance)
    conn.write_message("40/custom")
    assert (await recv(conn, skip_pings=True)).startswith("40/custom,")
    assert await recv(conn, skip_pings=True) == '42/custom,["auth",{}]'
    conn.write_message("41/custom")
    conn.write_message('42["message","to main"]')
    assert await recv(conn, skip_pings=True) == '42["message-back","to main"]'
    conn.write_message("41")
    assert await recv(conn) == "2"  # the engine connection stays open


@pytest.mark.parametrize(
    "sent, expected",
    [
        (['42["message",1,"2",{"3":[true]}]'], ['42["message-back",1,"2",{"3":[true]}]']),
        (['42456["message-with-ack",1,"2",{"3":[false]}]'], ['43456[1,"2",{"3":[false]}]']),
        (
            [
                '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                b"\x01\x02\x03",
                b"\x04\x05\x06",
            ],
            [
                '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                b"\x01\x02\x03",
                b"\x04\x05\x06",
            ],
        ),
        (
            [
                '452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                b"\x01\x02\x03",
                b"\x04\x05\x06",
            ],
            [
                '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                b"\x01\x02\x03",
                b"\x04\x05\x06",
            ],
        ),
    ],
)
async def test_sio_messages(conformance: str, sent: list[Any], expected: list[Any]) -> None:
    conn = await connected_sio(conformance)
    for message in sent:
        conn.write_message(message, binary=isinstance(message, bytes))
    assert [await recv(conn, skip_pings=True) for _ in expected] == expected


@pytest.mark.parametrize("bad", ["4abc", "42{}", '42abc["message-with-ack",1]'])
async def test_sio_invalid_packets_close(conformance: str, bad: str) -> None:
    conn = await connected_sio(conformance)
    conn.write_message(bad)
    assert await recv(conn, skip_pings=True) is None


# -- HTTP details --------------------------------------------------------------------


async def test_jsonp_polling(conformance: str) -> None:
    # the conformance server enables jsonp and allows any origin
    response = await fetch(f"{conformance}/engine.io/?EIO=4&transport=polling&j=3")
    assert response.headers["Content-Type"] == "text/javascript; charset=UTF-8"
    body = response.body.decode()
    assert body.startswith('___eio[3]("0{') and body.endswith('");')
    sid = json.loads(json.loads(body[len("___eio[3](") : -2])[1:])["sid"]
    url = f"{conformance}/engine.io/?EIO=4&transport=polling&sid={sid}&j=3"
    # the client escapes newlines as \\n and sends a form field d
    post = await fetch(
        url,
        "POST",
        "d=" + quote("4line1\\nline2 \u2028"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert post.body == b"ok"
    poll = (await fetch(url)).body.decode()
    assert poll == '___eio[3]("4line1\\nline2 \\u2028");'


async def test_polling_compression(serve: Any) -> None:
    io = Server(ping_interval=5)
    got: asyncio.Queue[Socket] = asyncio.Queue()
    io.on("connect", got.put_nowait)
    server = await serve(io.routes())
    sid = await handshake(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    socket = await asyncio.wait_for(got.get(), WAIT)
    socket.emit("big", "x" * 5000)
    response = await fetch(url, headers={"Accept-Encoding": "gzip"}, decompress_response=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.body).decode() == '42["big","' + "x" * 5000 + '"]'
    socket.emit("small", 1)
    response = await fetch(url, headers={"Accept-Encoding": "gzip"}, decompress_response=False)
    assert "Content-Encoding" not in response.headers


async def test_cors_default_is_same_origin(serve: Any) -> None:
    server = await serve(Server().routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    assert (await fetch(url, headers={"Origin": "http://evil.example"})).code == 403
    ok = await fetch(url, headers={"Origin": server.url})
    assert ok.code == 200
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    from tornado.httpclient import HTTPRequest

    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(ws_url, headers={"Origin": "http://evil.example"}))
    assert info.value.code == 403
    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Origin": server.url}))
    assert (await recv(conn)).startswith("0{")


async def test_cors_allow_list_and_credentials(serve: Any) -> None:
    server = await serve(Server(cors_allowed_origins=["http://app.example"], cors_credentials=True).routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    ok = await fetch(url, headers={"Origin": "http://app.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert (await fetch(url, headers={"Origin": "http://other.example"})).code == 403
    preflight = await fetch(
        url,
        "OPTIONS",
        headers={"Origin": "http://app.example", "Access-Control-Request-Headers": "content-type"},
        allow_nonstandard_methods=True,
    )
    assert preflight.code == 204
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    wildcard = await serve(Server(cors_allowed_origins="*").routes())
    any_origin = await fetch(
        f"{wildcard.url}/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://x.example"}
    )
    assert any_origin.headers["Access-Control-Allow-Origin"] == "*"


async def test_sticky_cookie(serve: Any) -> None:
    server = await serve(Server(cookie=True).routes())
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(response.body.decode()[1:])["sid"]
    assert response.headers["Set-Cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    plain = await serve(Server().routes())
    assert "Set-Cookie" not in (await fetch(f"{plain.url}/socket.io/?EIO=4&transport=polling")).headers


@pytest.mark.parametrize(
    "trusted, forwarded, expected",
    [
        ((), "203.0.113.9", "127.0.0.1"),  # not trusted: the peer address
        (("127.0.0.1",), "203.0.113.9", "203.0.113.9"),
        (("127.0.0.0/8", "10.0.0.0/8"), "203.0.113.9, 10.1.2.3", "203.0.113.9"),
    ],
)
async def test_client_address_and_trusted_proxies(
    serve: Any, trusted: tuple[str, ...], forwarded: str, expected: str
) -> None:
    io = Server(trusted_proxies=trusted)
    got: asyncio.Queue[Socket] = asyncio.Queue()
    io.on("connect", got.put_nowait)
    server = await serve(io.routes())
    headers = {"X-Forwarded-For": forwarded}
    response = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling", headers=headers)
    sid = json.loads(response.body.decode()[1:])["sid"]
    await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}", "POST", b"40", headers=headers)
    socket = await asyncio.wait_for(got.get(), WAIT)
    assert socket.handshake.address == expected


async def test_custom_path_and_attach(serve: Any) -> None:
    import tornado.web

    class Home(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("home")

    app = tornado.web.Application([(r"/", Home)])
    Server(path="/realtime/").attach(app)
    server = await serve(app)
    assert (await fetch(server.url + "/")).body == b"home"
    assert (await fetch(f"{server.url}/realtime/?EIO=4&transport=polling")).body.startswith(b"0{")
    assert (await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")).code == 404


async def test_one_bad_client_does_not_disturb_others(serve: Any, node: Any) -> None:
    io = Server()
    io.on("echo", lambda socket, x: x)
    server = await serve(io.routes())
    node.connect("good", server.url, transports=["websocket"])
    await node.expect("connect", "good")
    for garbage in ["abc", "4" + "\x00" * 10, "40/x,{", "452-[", "9", "4" + "é" * 100]:
        conn = await sio_socket(server.url)
        conn.write_message(garbage)
        await recv(conn, skip_pings=True)
        sid = await handshake(server.url)
        await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}", "POST", garbage.encode())
        node.emit("good", "echo", garbage, ack=True, tag=garbage)
        assert (await node.expect("ack", "good", tag=garbage))["args"] == [garbage]


async def test_permessage_deflate_is_opt_in(serve: Any) -> None:
    plain = await serve(Server().routes())
    conn = await websocket_connect(
        plain.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", compression_options={}
    )
    assert "Sec-WebSocket-Extensions" not in conn.headers  # off by default, as in the reference
    assert (await recv(conn)).startswith("0{")
    conn.close()
    deflating = await serve(Server(per_message_deflate=True).routes())
    conn = await websocket_connect(
        deflating.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", compression_options={}
    )
    assert "permessage-deflate" in conn.headers["Sec-WebSocket-Extensions"]
    assert (await recv(conn)).startswith("0{")
    conn.write_message("40")
    assert (await recv(conn)).startswith("40{")
    conn.close()


async def test_conformance_server_serves_the_real_clients(conformance: str, node: Any) -> None:
    import socketio

    node.connect("js", conformance, auth={"token": "t"})
    await node.expect("connect", "js")
    assert (await node.expect("event", "js", event="auth"))["args"] == [{"token": "t"}]
    node.emit("js", "message", 1, "two", {"3": [True]})
    assert (await node.expect("event", "js", event="message-back"))["args"] == [1, "two", {"3": [True]}]
    node.emit("js", "message-with-ack", "a", 2, ack=True, tag="ack")
    assert (await node.expect("ack", "js", tag="ack"))["args"] == ["a", 2]
    py = socketio.AsyncClient(reconnection=False)
    backs: asyncio.Queue[Any] = asyncio.Queue()
    py.on("message-back", lambda *args: backs.put_nowait(args), namespace="/")
    await py.connect(conformance, namespaces=["/", "/custom"])
    try:
        await py.emit("message", ["x", b"\x01"])
        assert await asyncio.wait_for(backs.get(), WAIT) == (["x", b"\x01"],)
        assert await py.call("message-with-ack", "y", timeout=WAIT) == "y"
    finally:
        await py.disconnect()
