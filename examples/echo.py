"""The original documentation's echo server, on today's Tornado.

    python examples/echo.py [--port 8888] [--flash-port 843]

Serves ``EchoHandler`` at resource ``echoTest`` with the extra part
``(?P<sec_a>123)(?P<sec_b>.*)`` after a ``/``: 0.6 clients connect with
``resource: "echoTest/123abc"``, today's socket.io-client with
``path: "/echoTest/123abc/"``. Every message comes back, and the first message
after connecting reports what ``on_open`` received.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tornado.web  # noqa: E402

from tornad_io import SocketIOServer  # noqa: E402
from tornad_io.socket_io import SocketIOHandler  # noqa: E402

log = logging.getLogger("echo")


class EchoHandler(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.session["opened"] = kwargs
        self.session.save()
        self.send({"opened": kwargs, "args": list(args), "protocol": self.protocol})

    def on_message(self, message: Any) -> None:
        self.send(message)

    def on_close(self) -> None:
        log.info("connection %s closed", self.id)


def make_app(**settings: Any) -> tornado.web.Application:
    return tornado.web.Application(
        [EchoHandler.routes("echoTest", "(?P<sec_a>123)(?P<sec_b>.*)", extraSep="/")], **settings
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="SocketTornad.IO echo example")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--flash-port", type=int, default=843)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    application = make_app(socket_io_port=args.port, flash_policy_port=args.flash_port)
    print(f"echo server on port {args.port} (flash policy on {args.flash_port})", flush=True)
    SocketIOServer(application)


if __name__ == "__main__":
    main()
