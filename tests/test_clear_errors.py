"""Where users go wrong, the error says what to do."""

from __future__ import annotations

import asyncio
import logging
import socket as pysocket
import subprocess
import sys
from typing import Any

import pytest
import socketio

from tornad_io import Server, Socket

from .conftest import ROOT, WAIT


def import_without(module: str, statement: str) -> subprocess.CompletedProcess[str]:
    """Run *statement* in a fresh interpreter in which *module* cannot be imported."""
    code = f"import sys; sys.modules[{module!r}] = None\n{statement}"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", ["msgpack", "redis"])
@pytest.mark.parametrize(
    "statement",
    [
        "import tornad_io.redis_adapter",
        "from tornad_io.redis_adapter import redis_adapter",
        "import tornad_io.cluster",
        "from tornad_io.cluster.classic import RedisAdapter",
    ],
)
def test_the_redis_adapter_without_its_extra_says_how_to_install_it(missing: str, statement: str) -> None:
    result = import_without(missing, statement)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: the Redis adapters need the optional dependencies redis and msgpack")
    assert f"({missing} is missing)" in last and "pip install '/path/to/tornad_io[redis]'" in last


def test_the_core_needs_neither_redis_nor_msgpack() -> None:
    result = import_without("msgpack", "import sys; sys.modules['redis'] = None\nimport tornad_io; tornad_io.Server()")
    assert result.returncode == 0, result.stderr


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    probe = pysocket.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("sharded", [False, True])
async def test_unreachable_redis_fails_init_in_time_naming_the_server(sharded: bool, caplog: Any) -> None:
    from tornad_io.cluster import ClusterConnectionError, redis_adapter, sharded_redis_adapter

    port = closed_port()
    factory = sharded_redis_adapter if sharded else redis_adapter
    io = Server(adapter=factory(f"redis://127.0.0.1:{port}/0", connect_timeout=0.5))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with caplog.at_level(logging.WARNING, logger="tornad_io.redis"):
            with pytest.raises(ClusterConnectionError) as raised:
                await io.init()
        assert loop.time() - started < 3.0
        message = str(raised.value)
        assert f"Redis at redis://127.0.0.1:{port}/0 within 0.5 s" in message
        assert "last error" in message  # what redis-py said (connection refused)
        logged = [r.getMessage() for r in caplog.records if r.name == "tornad_io.redis"]
        assert logged and all(f"cannot connect to Redis at redis://127.0.0.1:{port}/0" in m for m in logged)
        assert not any("connection lost" in m for m in logged)  # it never had one
    finally:
        await io.shutdown(timeout=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda io: io.emit("news", 1, room="sports"),
            "emit() got an unexpected keyword argument 'room'; that is python-socketio's form, here select the "
            "recipients first: io.to('sports').emit('news', ...)",
        ),
        (lambda io: io.emit("news", to="abc"), "io.to('abc').emit('news', ...) (a socket id is a room)"),
        (
            lambda io: io.emit("news", skip_sid="abc"),
            "io.except_('abc').emit('news', ...), or emit from its socket with socket.broadcast.emit('news', ...)",
        ),
        (lambda io: io.emit("news", namespace="/admin"), "io.of('/admin').emit('news', ...)"),
        (lambda io: io.emit("news", data={"a": 1}), "emit('news', {'a': 1})"),
        (lambda io: io.send("hi", to="abc"), "send() got an unexpected keyword argument 'to'"),
        (lambda io: io.of("/chat").emit("news", room="r"), "io.to('r').emit('news', ...)"),
        (lambda io: io.to("a").emit("news", room="r"), "io.to('r').emit('news', ...)"),
    ],
)
def test_python_socketio_keywords_say_what_to_write(call: Any, message: str) -> None:
    io = Server()
    with pytest.raises(TypeError) as raised:
        call(io)
    assert message in str(raised.value)


def test_other_unknown_keywords_get_the_usual_message() -> None:
    with pytest.raises(TypeError) as raised:
        Server().emit("news", colour="red")  # type: ignore[arg-type]
    assert str(raised.value) == "emit() got an unexpected keyword argument 'colour'"


async def test_awaiting_a_broadcast_emit_works_and_delivers(serve: Any) -> None:
    """python-socketio's ``await sio.emit(...)``: every broadcast emit may be awaited."""
    io = Server()
    connected: asyncio.Queue[Socket] = asyncio.Queue()
    io.on("connect", lambda socket: connected.put_nowait(socket))
    server = await serve(io.routes())
    client = socketio.AsyncClient(reconnection=False)
    got: asyncio.Queue[Any] = asyncio.Queue()
    client.on("*", lambda event, *args: got.put_nowait((event, *args)))
    await client.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
    try:
        socket = await asyncio.wait_for(connected.get(), WAIT)
        socket.join("room")
        assert await io.emit("one", 1) is None
        await io.send("two")
        await io.to("room").emit("three", 3)
        await io.sockets.emit("four")
        await io.except_("nobody").emit("five")
        await socket.broadcast.emit("not for the sender")
        await io.of("/").send("six")
        received = [await asyncio.wait_for(got.get(), WAIT) for _ in range(6)]
        assert received == [("one", 1), ("message", "two"), ("three", 3), ("four",), ("five",), ("message", "six")]
    finally:
        await client.disconnect()
