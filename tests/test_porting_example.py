"""The porting example, both ways: python-socketio's AsyncClient cannot tell the two apps apart.

``examples/porting/pysio_app.py`` (python-socketio on aiohttp) and
``examples/porting/tornadio_app.py`` (tornad_io) each run as a child process on
127.0.0.1 and a free port; the same scenario drives each with real
``socketio.AsyncClient``s and must produce the same transcript, ``EXPECTED``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import pytest
import socketio

from .conftest import ROOT, WAIT

APPS = {
    "python-socketio": os.path.join(ROOT, "examples", "porting", "pysio_app.py"),
    "tornad_io": os.path.join(ROOT, "examples", "porting", "tornadio_app.py"),
}


@pytest.fixture(params=sorted(APPS))
async def app_url(request: pytest.FixtureRequest) -> Any:
    """Start one of the apps with ``--port 0``; its first line says where it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        APPS[request.param],
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 3 * WAIT)).decode()
        if not line.startswith("listening on "):
            pytest.fail(f"{request.param} app did not start: {line!r} (exit code {proc.returncode})")
        yield line.split()[-1]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), WAIT)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


class Peer:
    """A python-socketio client that records every event it receives, in order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[Any, ...]] = []
        self._new = asyncio.Event()
        self.refusal: Any = None
        self.disconnected = asyncio.Event()
        # Plain functions: python-socketio runs them as soon as it dispatches the packet, so
        # an event the server sent before an acknowledgement is recorded before call() returns.
        self.client.on("*", self._record)
        self.client.on("ask", lambda question: "4" if question == "2+2" else "no idea")
        self.client.on("connect_error", self._refused)
        self.client.on("disconnect", lambda *reason: self.disconnected.set())

    def _record(self, event: str, *args: Any) -> None:
        self.received.append((event, *args))
        self._new.set()

    def _refused(self, data: Any) -> None:
        self.refusal = data

    async def next(self) -> tuple[Any, ...]:
        """The oldest event not yet taken (waiting for it if needed)."""

        async def wait() -> tuple[Any, ...]:
            while not self.received:
                self._new.clear()
                await self._new.wait()
            return self.received.pop(0)

        return await asyncio.wait_for(wait(), WAIT)

    async def call(self, event: str, *args: Any) -> Any:
        data = args[0] if len(args) == 1 else (args or None)
        return await self.client.call(event, data, timeout=WAIT)


EXPECTED: dict[str, Any] = {
    "refused": {"error": "ConnectionError", "data": {"message": "a name is required"}},
    "join": {"ann red": ["red"], "bob red": ["red"], "ann blue": ["blue", "red"]},
    "say": "delivered",
    "bob heard": [("said", {"from": "ann", "text": "hello"})],
    "ann heard": [],
    "cid heard": [],
    "rename": {"old": "bob", "now": "robert"},
    "leave": [],
    "bob heard after leaving": [],
    "quiz": {"question": "2+2", "answer": "4"},
    "countdown": "started",
    "counted": [("count", 3), ("count", 2), ("count", 1), ("liftoff",)],
    "catch-all": {"unknown": "no-such-event"},
    "bye": {"cid disconnected": True, "ann heard": [("left", "cid")], "bob heard": [("left", "cid")]},
}


async def scenario(url: str) -> dict[str, Any]:
    """What the three clients observe, as plain data."""
    out: dict[str, Any] = {}
    peers: list[Peer] = []

    async def connect(name: str | None) -> Peer:
        peer = Peer()
        peers.append(peer)
        await peer.client.connect(url, auth={"name": name} if name else None, wait_timeout=WAIT)
        return peer

    try:
        try:
            await connect(None)
        except socketio.exceptions.ConnectionError as error:
            out["refused"] = {"error": type(error).__name__, "data": peers[-1].refusal}
        ann, bob, cid = await connect("ann"), await connect("bob"), await connect("cid")

        out["join"] = {
            "ann red": await ann.call("join", "red"),
            "bob red": await bob.call("join", "red"),
            "ann blue": await ann.call("join", "blue"),
        }
        # to the room "red" but not to the sender
        out["say"] = await ann.call("say", {"room": "red", "text": "hello"})
        out["bob heard"] = [await bob.next()]
        # Anything sent to ann before the acknowledgement would already be recorded; cid's
        # own round trip after the ack orders it after anything the broadcast queued for cid.
        out["ann heard"] = list(ann.received)
        await cid.call("whoami")
        out["cid heard"] = list(cid.received)

        out["rename"] = {"old": await bob.call("rename", "robert"), "now": await bob.call("whoami")}
        out["leave"] = await bob.call("leave", "red")
        await ann.call("say", {"room": "red", "text": "anyone?"})
        await bob.call("whoami")
        out["bob heard after leaving"] = list(bob.received)

        out["quiz"] = await ann.call("quiz", "2+2")  # the server asks ann's client and waits
        out["countdown"] = await ann.call("countdown", 3)  # answered before the task counts
        out["counted"] = [await ann.next() for _ in range(4)]
        out["catch-all"] = await ann.call("no-such-event", 1)

        await cid.client.emit("bye")
        await asyncio.wait_for(cid.disconnected.wait(), WAIT)
        out["bye"] = {
            "cid disconnected": True,
            "ann heard": [await ann.next()],
            "bob heard": [await bob.next()],
        }
        return out
    finally:
        for peer in peers:
            if peer.client.connected:
                await peer.client.disconnect()


async def test_same_observable_behaviour(app_url: str) -> None:
    assert await scenario(app_url) == EXPECTED
