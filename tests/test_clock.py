"""Timed rules on a virtual clock: heartbeats, timeouts and rate limits without waiting.

The engine's clock (``io.engine.clock``) is replaced by a VirtualClock; each
test moves time by hand and checks, over the wire, what a client sees.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.websocket import websocket_connect

from tornad_io import Server
from tornad_io.engineio import legacy_codec
from tornad_io.engineio.clock import VirtualClock
from tornad_io.socket_io import SocketIOHandler

from .conftest import WAIT, wait_until


async def fetch(url: str, method: str = "GET", body: str | bytes | None = None) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, request_timeout=WAIT)


def virtual_server(**options: Any) -> tuple[Server, VirtualClock, asyncio.Queue[tuple[str, str]]]:
    io = Server(**options)
    clock = VirtualClock()
    io.engine.clock = clock
    gone: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    io.on("disconnect", lambda socket, reason: gone.put_nowait((socket.id, reason)))
    return io, clock, gone


async def polling_session(base: str) -> str:
    response = await fetch(f"{base}/socket.io/?EIO=4&transport=polling")
    return str(json.loads(response.body.decode()[1:])["sid"])


async def test_heartbeat_and_ping_timeout_over_polling(serve: Any) -> None:
    io, clock, gone = virtual_server(ping_interval=25, ping_timeout=20)
    server = await serve(io.routes())
    sid = await polling_session(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    assert (await fetch(url)).body.decode().startswith("40")
    for _ in range(3):  # three intervals of 25 virtual seconds, each ping answered
        poll = asyncio.ensure_future(fetch(url))
        await wait_until(lambda: clock.pending > 0)
        clock.advance(24.9)
        assert not poll.done()
        clock.advance(0.1)
        assert (await poll).body == b"2"
        await fetch(url, "POST", b"3")
    (socket_id,) = io.sockets.sockets
    clock.advance(25)  # a ping nobody answers …
    assert (await fetch(url)).body == b"2"
    clock.advance(19.9)
    assert gone.empty()
    clock.advance(0.1)  # … closes the session once ping_timeout has passed
    assert await asyncio.wait_for(gone.get(), WAIT) == (socket_id, "ping timeout")


async def test_connect_timeout(serve: Any) -> None:
    io, clock, _ = virtual_server(connect_timeout=45, ping_interval=100)
    server = await serve(io.routes())
    sid = await polling_session(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    clock.advance(44.9)
    assert sid in io.engine.sessions
    clock.advance(0.1)  # never joined a namespace: closed (the client gets CLOSE on its poll)
    assert (await fetch(url)).body == b"1"
    assert sid not in io.engine.sessions


async def test_upgrade_timeout(serve: Any) -> None:
    io, clock, _ = virtual_server(upgrade_timeout=10)
    server = await serve(io.routes())
    sid = await polling_session(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    await fetch(url, "POST", b"40")
    await fetch(url)
    probe = await websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&sid={sid}")
    probe.write_message("2probe")
    assert await asyncio.wait_for(probe.read_message(), WAIT) == "3probe"
    clock.advance(10)  # the client never sends UPGRADE
    assert await asyncio.wait_for(probe.read_message(), WAIT) is None  # the probe is closed
    poll = await fetch(url, "POST", b'42["still polling"]')
    assert poll.code == 200  # the session goes on over polling
    assert io.sockets.sockets


async def test_legacy_heartbeats(serve: Any) -> None:
    closed: asyncio.Queue[str] = asyncio.Queue()

    class Beat(SocketIOHandler):
        server_options = {"legacy_heartbeat_interval": 10, "legacy_heartbeat_timeout": 8}

        def on_close(self) -> None:
            closed.put_nowait(self.protocol)

    clock = VirtualClock()
    Beat.io().engine.clock = clock
    server = await serve(tornado.web.Application([Beat.routes("beat")]))
    conn = await websocket_connect(f"ws://127.0.0.1:{server.port}/beat/websocket")
    await asyncio.wait_for(conn.read_message(), WAIT)  # the session id
    for beat in (1, 2, 3):
        clock.advance(10)
        message = await asyncio.wait_for(conn.read_message(), WAIT)
        assert message == legacy_codec.heartbeat(beat)
        conn.write_message(message)  # echoed: the timeout is cancelled, the next heartbeat scheduled
        await wait_until(lambda: clock.due() == [clock.now + 10])
    clock.advance(10)
    assert await asyncio.wait_for(conn.read_message(), WAIT) == legacy_codec.heartbeat(4)
    clock.advance(8)  # not echoed within legacy_heartbeat_timeout
    assert await asyncio.wait_for(closed.get(), WAIT) == "websocket"


async def test_handshake_rate_limit_refills_with_time(serve: Any) -> None:
    io, clock, _ = virtual_server(handshake_rate_per_ip=1)
    server = await serve(io.routes())
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    assert [(await fetch(url)).code for _ in range(3)] == [200, 200, 429]  # a burst of two
    clock.advance(1)
    assert (await fetch(url)).code == 200
    assert (await fetch(url)).code == 429


async def test_loop_clock_shares_deadline_slots_for_long_timers() -> None:
    """Timers a second or more ahead run in order, at most one slot late, one loop timer per slot.

    They are 1.5 s ahead, not just 1 s, so that none falls under the one-second bound while a busy
    machine takes its time scheduling the 2 000 of them.
    """
    from tornad_io.engineio import clock as clocks

    loop = asyncio.get_running_loop()
    loop_clock = clocks.LoopClock()
    start = loop.time()
    ran: list[tuple[int, float]] = []
    done = asyncio.Event()
    failures: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    count = 2000
    scheduled_before = len(loop._scheduled)  # type: ignore[attr-defined]  # asyncio's own heap, to count timers

    def fire(i: int) -> None:
        ran.append((i, loop.time()))
        if i == count - 1:
            done.set()

    def boom() -> None:
        raise RuntimeError("a failing timer")

    timers = [loop_clock.call_at(start + 1.5 + i * 0.0001, fire, i) for i in range(count)]  # 0.2 s of deadlines
    loop_clock.call_at(start + 1.55, boom)
    for timer in timers[1 : count - 1 : 2]:
        timer.cancel()  # a cancel is a flag
    added = len(loop._scheduled) - scheduled_before  # type: ignore[attr-defined]
    assert added <= 0.2 / clocks.SLOT + 2  # one loop timer per 10 ms slot, not one per timer
    short = loop_clock.call_later(0.01, lambda: None)  # a short timer is the loop's own handle
    assert isinstance(short, asyncio.TimerHandle)
    await asyncio.wait_for(done.wait(), WAIT)
    loop.set_exception_handler(None)
    assert [i for i, _ in ran] == [i for i in range(count) if i % 2 == 0 or i == count - 1]
    for i, at in ran:
        due = start + 1.5 + i * 0.0001
        assert due <= at + 1e-6  # never early (loop time)
        assert at - due < clocks.SLOT + 0.2  # late by a slot, plus what a busy machine adds
    assert len(failures) == 1 and isinstance(failures[0]["exception"], RuntimeError)
