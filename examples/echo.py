"""The echo server of the original SocketTornad.IO documentation (2010), on today's Tornado.

    python examples/echo.py [--port 8888] [--flash-port 843]

Serves ``EchoHandler`` at resource ``echoTest`` with the extra part
``(?P<sec_a>123)(?P<sec_b>.*)`` after a ``/``: 0.6 clients connect with
``resource: "echoTest/123abc"``, today's socket.io-client with
``path: "/echoTest/123abc/"`` and socket.io-client 2.x (Engine.IO v3, served
by the original API's routes) with ``path: "/echoTest/123abc"`` (their
``send()`` reaches ``on_message``, and the answer arrives as a ``message``
event).

What it does, as documented in 2010:

- Every message comes back as one string, ``"[echo] "`` followed by the
  message: ``socket.send("OMG! Ponies!")`` is answered by
  ``[echo] OMG! Ponies!``.
- A message that is not a string (a JSON message from a 0.6 client, or
  ``send({...})`` / ``send(a, b)`` from today's client, which arrives as a
  list) comes back as ``"[echo] "`` followed by its JSON text, compact and
  with non-ASCII characters as they are: ``send({"n": [1, 2]})`` is answered
  by ``[echo] {"n":[1,2]}``. The original wrote ``"[echo] %s" % message``,
  which under Python 2 gave the dict's Python repr (``{u'n': [1, 2]}``);
  JSON is what the client sent, and what it can parse back.
- ``on_open`` logs the transport (``self.protocol``) and the extra data (its
  keyword arguments: ``sec_a``, ``sec_b`` and ``extra``); it sends nothing.
- ``on_close`` logs.

The log goes to the ``echo`` logger, at INFO.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tornado.web  # noqa: E402

from tornad_io import SocketIOServer  # noqa: E402
from tornad_io.socket_io import SocketIOHandler  # noqa: E402

log = logging.getLogger("echo")


def as_text(message: Any) -> str:
    """A message as the echo shows it: a string as it is, anything else as compact JSON."""
    if isinstance(message, str):
        return message
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class EchoHandler(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        log.info("Socket.IO client connected with protocol %r {session id: %r}", self.protocol, self.id)
        log.info("Extra data for open: %r", kwargs)

    def on_message(self, message: Any) -> None:
        text = "[echo] " + as_text(message)
        log.info("%s", text)
        self.send(text)

    def on_close(self) -> None:
        log.info("Closing Socket.IO client for protocol %r {session id: %r}", self.protocol, self.id)


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
