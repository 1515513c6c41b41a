"""python-socketio 5.x with the benchmark's three handlers, on Tornado or on aiohttp.

python benchmarks/pysio_server.py --port N --mode tornado|aiohttp
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import socketio


def make_server(mode: str) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(async_mode=mode, cors_allowed_origins="*")

    @sio.on("echo")
    async def echo(sid: str, payload: Any) -> Any:
        return payload

    @sio.on("join")
    async def join(sid: str, room: str) -> bool:
        await sio.enter_room(sid, room)
        return True

    @sio.on("broadcast")
    async def broadcast(sid: str, spec: dict[str, Any]) -> int:
        for _ in range(spec["n"]):
            await sio.emit("bcast", spec["payload"], to=spec["room"])
        return int(spec["n"])

    return sio


async def main(port: int, mode: str) -> None:
    sio = make_server(mode)
    if mode == "tornado":
        import tornado.web

        app = tornado.web.Application(
            [(r"/socket.io/", socketio.get_tornado_handler(sio))], log_function=lambda h: None
        )
        app.listen(port, address="127.0.0.1")
    else:
        from aiohttp import web

        app = web.Application()
        sio.attach(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["tornado", "aiohttp"], required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.port, args.mode))
