"""Tornado's private names (tornad_io/_tornado_compat.py): the fast paths are on, and the public fallbacks work.

The fallbacks are what an unsupported Tornado gets; ``TORNAD_IO_TORNADO_PRIVATE=0``
forces them, here in a server subprocess that real clients talk to.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import logging
import os
import re
import socket as pysocket
import sys
from typing import Any

import pytest
import tornado
import tornado.iostream
import tornado.netutil
import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

from tornad_io import HTTPServer, Server, Socket
from tornad_io import _tornado_compat as compat
from tornad_io.engineio import legacy_codec
from tornad_io.socket_io import SocketIOHandler

from .conftest import ROOT, WAIT


def probe(socket: Socket) -> dict[str, Any]:
    """What serves this socket on the server: the compat flag, the protocol and stream classes."""
    transport: Any = socket.client.session.transport
    conn = getattr(transport, "conn", None)
    return {
        "private": compat.PRIVATE_OK,
        "transport": transport.name,
        "protocol": type(conn).__name__ if conn is not None else None,
        "stream": type(conn.stream).__name__ if conn is not None else None,
    }


class LegacyEcho(SocketIOHandler):
    def on_message(self, message: Any) -> None:
        self.send(message)


def application() -> tornado.web.Application:
    io = Server()
    io.on("probe", probe)
    io.on("echo", lambda socket, *args: args)
    return tornado.web.Application([*io.routes(), LegacyEcho.routes("legacy")])


async def serve_in_subprocess() -> None:
    """The subprocess's server: prints its port, then serves until killed."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=pysocket.AF_INET)
    HTTPServer(application()).add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


# -- the fast path -------------------------------------------------------------------------


def test_the_private_paths_are_on_for_the_installed_tornado() -> None:
    if os.environ.get(compat.DISABLE_VARIABLE) == "0":
        pytest.skip(f"{compat.DISABLE_VARIABLE}=0 is set")
    # Fails loudly if a Tornado release moved a private name: update _tornado_compat.py (and the range).
    assert compat.PRIVATE_OK, compat.DISABLED_REASON
    assert compat.SUPPORTED[0] <= tuple(tornado.version_info[:2]) < compat.SUPPORTED[1]
    # Tornado's C masking is used whenever Tornado has its C extension.
    has_speedups = importlib.util.find_spec("tornado.speedups") is not None
    assert (compat.websocket_mask is not None) == (has_speedups and os.environ.get("TORNADO_EXTENSION") != "0")


def test_pyproject_states_the_range_the_compat_module_checks() -> None:
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as file:
        text = file.read()
    ((low, high),) = re.findall(r'"tornado>=([0-9.]+),<([0-9.]+)"', text)
    assert tuple(int(n) for n in low.split(".")) == compat.SUPPORTED[0]
    assert (int(high), 0) == compat.SUPPORTED[1]


# Tornado's private names the package uses (or used); tornad_io's own code names nothing this way.
TORNADO_PRIVATE = {
    "_WebSocketParams", "_compressor", "_decompressor", "_write_frame", "_read_buffer", "_read_buffer_size",
    "_receive_frame_loop", "_handle_message", "_abort", "_websocket_mask", "_total_write_index",
    "_total_write_done_index", "_finished", "_request_summary", "_cross_origin_protection", "_handle_connection",
    "_wire_bytes_in", "_wire_bytes_out", "_detach_stream", "_sockets",
}  # fmt: skip


def test_private_tornado_names_appear_only_in_the_compat_module() -> None:
    package = os.path.join(ROOT, "tornad_io")
    found = []
    for folder, _, files in os.walk(package):
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith(".py") or path == os.path.join(package, "_tornado_compat.py"):
                continue
            with open(path, encoding="utf-8") as file:
                tree = ast.parse(file.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in TORNADO_PRIVATE:
                    found.append(f"{path}:{node.lineno}: .{node.attr}")
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in TORNADO_PRIVATE:
                    found.append(f"{path}:{node.lineno}: def {node.name}")
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tornado"):
                    found += [f"{path}:{node.lineno}: import {a.name}" for a in node.names if a.name.startswith("_")]
    assert found == []


async def test_a_real_client_gets_the_socket_takeover(serve: Any, node: Any) -> None:
    server = await serve(application())
    node.connect("a", server.url, transports=["websocket"])
    await node.expect("connect", "a", transport="websocket")
    node.emit("a", "probe", ack=True, tag="probe")
    report = (await node.expect("ack", "a", tag="probe"))["args"][0]
    assert report == {
        "private": True,
        "transport": "websocket",
        "protocol": "FastWebSocketProtocol",
        "stream": "RawSocketStream",
    }
    node.emit("a", "echo", "hé", {"n": [1]}, ack=True, tag="echo")
    assert (await node.expect("ack", "a", tag="echo"))["args"] == ["hé", {"n": [1]}]


# -- the public fallbacks, one by one ------------------------------------------------------------


async def test_pending_bytes_public_fallback_is_conservative(monkeypatch: Any) -> None:
    left, right = pysocket.socketpair()
    stream = tornado.iostream.IOStream(left)
    try:
        assert compat.pending_write_bytes(stream) == 0
        chunk = b"x" * 1_000_000
        while not stream.writing():  # the peer does not read: the kernel's buffers fill up
            stream.write(chunk).add_done_callback(lambda f: f.exception())
        exact = compat.pending_write_bytes(stream)
        assert 0 < exact <= 1_000_000 * 100
        monkeypatch.setattr(compat, "PRIVATE_OK", False)
        assert compat.pending_write_bytes(stream) == compat.UNKNOWN_PENDING
    finally:
        stream.close()
        right.close()


@pytest.mark.parametrize("private", [True, False])
async def test_finish_once_both_ways(serve: Any, monkeypatch: Any, private: bool) -> None:
    monkeypatch.setattr(compat, "PRIVATE_OK", private)

    class Twice(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("once")
            assert compat.finish_once(self) is True
            assert compat.finish_once(self) is False

    server = await serve([("/", Twice)])
    response = await AsyncHTTPClient().fetch(server.url + "/", request_timeout=WAIT)
    assert response.body == b"once"


async def test_access_log_falls_back_to_tornados_line(serve: Any, monkeypatch: Any, caplog: Any) -> None:
    server = await serve(Server().routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&token=hunter2"
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        await AsyncHTTPClient().fetch(url, request_timeout=WAIT)
        monkeypatch.setattr(compat, "PRIVATE_OK", False)
        await AsyncHTTPClient().fetch(url, request_timeout=WAIT)
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert len(lines) == 2 and "hunter2" not in lines[0] and "token=hunter2" in lines[1]


def test_accept_handlers_fall_back_to_tornados(monkeypatch: Any) -> None:
    monkeypatch.setattr(compat, "PRIVATE_OK", False)
    assert compat.add_accept_handlers(HTTPServer(application()), [], lambda sock, callback: lambda: None) is False


# -- everything at once, on Tornado's public paths, with real clients --------------------------------


@pytest.fixture
async def public_path_server() -> Any:
    env = {**os.environ, compat.DISABLE_VARIABLE: "0"}
    code = "import asyncio\nfrom tests.test_tornado_compat import serve_in_subprocess\nasyncio.run(serve_in_subprocess())\n"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        if not line:
            raise AssertionError((await proc.stderr.read()).decode())
        yield f"http://127.0.0.1:{int(line)}", proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_the_public_fallback_serves_real_clients(public_path_server: Any, node: Any) -> None:
    url, proc = public_path_server
    for cid, opts in [("ws", {"transports": ["websocket"]}), ("poll", {"transports": ["polling"]}), ("up", {})]:
        node.connect(cid, url, **opts)
        await node.expect("connect", cid)
    await node.expect("upgrade", "up", transport="websocket")
    for cid in ("ws", "up"):
        node.emit(cid, "probe", ack=True, tag=f"probe-{cid}")
        report = (await node.expect("ack", cid, tag=f"probe-{cid}"))["args"][0]
        assert report == {
            "private": False,
            "transport": "websocket",
            "protocol": "WebSocketProtocol13",
            "stream": "IOStream",
        }
    for cid in ("ws", "poll", "up"):
        payload = "é" * 20_000  # 40 kB (a report line of the Node driver stays under asyncio's 64 kB)
        node.emit(cid, "echo", payload, b"\x00\x01\x02", ack=True, tag=f"echo-{cid}")
        ack = await node.expect("ack", cid, tag=f"echo-{cid}")
        assert ack["args"] == [payload, b"\x00\x01\x02"]
    # The original API's 0.6 WebSocket, on the same server.
    conn = await websocket_connect(url.replace("http", "ws") + "/legacy/websocket")
    sid = legacy_codec.decode_frames(await asyncio.wait_for(conn.read_message(), WAIT))[0]  # type: ignore[arg-type]
    assert len(sid) == 32
    conn.write_message(legacy_codec.encode_message({"k": ["ü😀"]}))
    while True:
        messages = legacy_codec.decode_payload(await asyncio.wait_for(conn.read_message(), WAIT))  # type: ignore[arg-type]
        values = [m.value for m in messages if m.beat is None]
        if values:
            assert values == [{"k": ["ü😀"]}]
            break
    conn.close()
    assert proc.returncode is None  # nothing crashed the server
    proc.kill()
    await proc.wait()
    log = (await proc.stderr.read()).decode()
    assert "private fast paths are off" in log  # the fallback says so, once
    assert "Traceback" not in log and "never retrieved" not in log, log
