"""The floor: a bare Tornado WebSocketHandler that speaks just enough Engine.IO v4 /
Socket.IO v5 for the echo scenario (open, connect, echo with ack), nothing else.

    python benchmarks/raw_tornado.py --port N
"""

from __future__ import annotations

import argparse
import asyncio
import secrets

import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.set_nodelay(True)
        sid = secrets.token_urlsafe(15)
        self.write_message(
            f'0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}'
        )

    def on_message(self, message: str | bytes) -> None:
        if message == "40":
            self.write_message(f'40{{"sid":"{secrets.token_urlsafe(15)}"}}')
        elif isinstance(message, str) and message.startswith("42"):
            # 42<id>["echo",<payload>] -> 43<id>[<payload>]
            head, _, rest = message.partition("[")
            self.write_message("43" + head[2:] + "[" + rest[len('"echo",') :])


async def main(port: int) -> None:
    tornado.web.Application([(r"/socket.io/", Echo)], log_function=lambda h: None).listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
