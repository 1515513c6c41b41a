"""The porting example as a python-socketio ``AsyncServer`` on aiohttp: the "before" side.

    python examples/porting/pysio_app.py [--port 8000] [--host 127.0.0.1]

``tornadio_app.py`` next to it is the same application on tornad_io; the guide
``docs/porting-from-python-socketio.md`` walks through the differences, and
``tests/test_porting_example.py`` drives both with python-socketio's
``AsyncClient`` and checks that a client cannot tell them apart.

What the application does: a client connects with ``auth={"name": ...}`` (refused
without one) and the name is kept in the session; ``join``/``leave`` a room
answer with the client's rooms; ``say`` sends to a room, skipping the sender;
``rename``/``whoami`` change and read the session; ``quiz`` asks the client a
question and waits for its answer; ``countdown`` starts a background task that
counts down to the client; ``bye`` disconnects the client, and everyone else
hears who ``left``. Unknown events are acknowledged by a catch-all handler.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import socketio
from aiohttp import web


def make_server() -> socketio.AsyncServer:
    sio = socketio.AsyncServer(async_mode="aiohttp")

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        name = auth.get("name") if isinstance(auth, dict) else None
        if not name:
            raise socketio.exceptions.ConnectionRefusedError("a name is required")
        await sio.save_session(sid, {"name": name})

    @sio.event
    async def join(sid: str, room: str) -> list[str]:
        await sio.enter_room(sid, room)
        return sorted(r for r in sio.rooms(sid) if r != sid)

    @sio.event
    async def leave(sid: str, room: str) -> list[str]:
        await sio.leave_room(sid, room)
        return sorted(r for r in sio.rooms(sid) if r != sid)

    @sio.event
    async def say(sid: str, message: dict[str, str]) -> str:
        session = await sio.get_session(sid)
        said = {"from": session["name"], "text": message["text"]}
        await sio.emit("said", said, room=message["room"], skip_sid=sid)
        return "delivered"

    @sio.event
    async def rename(sid: str, name: str) -> str:
        async with sio.session(sid) as session:
            old = session["name"]
            session["name"] = name
        return str(old)

    @sio.event
    async def whoami(sid: str) -> str:
        session = await sio.get_session(sid)
        return str(session["name"])

    @sio.event
    async def quiz(sid: str, question: str) -> dict[str, Any]:
        answer = await sio.call("ask", question, to=sid, timeout=10)
        return {"question": question, "answer": answer}

    async def count_down(sid: str, start: int) -> None:
        for n in range(start, 0, -1):
            await sio.emit("count", n, to=sid)
            await sio.sleep(0.01)
        await sio.emit("liftoff", to=sid)

    @sio.event
    async def countdown(sid: str, start: int) -> str:
        sio.start_background_task(count_down, sid, int(start))
        return "started"

    @sio.event
    async def bye(sid: str) -> None:
        await sio.disconnect(sid)

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        session = await sio.get_session(sid)
        await sio.emit("left", session["name"], skip_sid=sid)

    @sio.on("*")
    async def any_event(event: str, sid: str, *args: Any) -> dict[str, str]:
        return {"unknown": event}

    return sio


async def main() -> None:
    parser = argparse.ArgumentParser(description="porting example: python-socketio on aiohttp")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    sio = make_server()
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    host, port = runner.addresses[0][:2]
    print(f"listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sio.shutdown()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
