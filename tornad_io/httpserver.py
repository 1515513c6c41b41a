"""Tornado's HTTP server with the limits a public Socket.IO endpoint needs.

:class:`HTTPServer` is ``tornado.httpserver.HTTPServer`` with two changes:

- its defaults bound what one client can hold (:func:`~tornad_io.httpserver.http_server_options`):
  idle connections and slow headers close, bodies have a deadline and a size
  cap checked before they are read;
- when the process runs out of file descriptors, the accept loop backs off
  instead of spinning: Tornado's accept handler raises on ``EMFILE`` every loop
  iteration while the listening socket stays readable (one traceback per turn,
  100 % CPU). Here accepting pauses, one line is logged, and accepting resumes
  by itself once descriptors are free.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, Callable, Iterable

import tornado.httpserver
from tornado.ioloop import IOLoop

from . import _tornado_compat as compat

log = logging.getLogger("tornad_io.http")

#: accept() errors that mean "no resources now", not "this socket is broken".
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0
_BATCH = 128  # connections accepted per wake-up, as Tornado's own handler
#: The listen backlog of :meth:`tornad_io.HTTPServer.listen` and :func:`tornad_io.serve` (Tornado's default is 128;
#: Node's 511, Bun's 512). A reconnect storm overflows a short accept queue: each dropped SYN is retried
#: by the client's kernel after a second (measured: p99 connect time 1.1 s with 128 under
#: benchmarks/run.py's connect-client). The kernel caps it at net.core.somaxconn.
BACKLOG = 1024


def http_server_options(
    max_http_buffer_size: int = 1_000_000, idle_timeout: float = 60.0, body_timeout: float = 30.0
) -> dict[str, Any]:
    """Keyword arguments for Tornado's ``HTTPServer`` that bound what a client can hold.

    Connections idle between requests (or sending headers slowly) close after
    *idle_timeout* seconds; a request body must arrive within *body_timeout*;
    bodies larger than *max_http_buffer_size* (plus room for form encoding) are
    refused before they are read.
    """
    return {
        "idle_connection_timeout": idle_timeout,
        "body_timeout": body_timeout,
        "max_body_size": max_http_buffer_size + 64 * 1024,
        "max_header_size": 64 * 1024,
        "xheaders": False,
    }


class HTTPServer(tornado.httpserver.HTTPServer):
    """``tornado.httpserver.HTTPServer`` with bounded defaults and an accept loop that backs off.

    Keyword arguments not given default to :func:`~tornad_io.httpserver.http_server_options` (pass
    ``max_http_buffer_size`` to size the body cap); any given one wins.
    """

    def initialize(  # type: ignore[override]  # adds max_http_buffer_size, keeps the rest
        self, request_callback: Any, max_http_buffer_size: int = 1_000_000, **kwargs: Any
    ) -> None:
        """Called by Tornado's constructor: *kwargs* over :func:`~tornad_io.httpserver.http_server_options` defaults."""
        options = http_server_options(max_http_buffer_size)
        options.update(kwargs)
        super().initialize(request_callback, **options)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Start accepting on *sockets* (see Tornado's ``TCPServer.add_sockets``)."""
        if not compat.add_accept_handlers(self, sockets, _accept_with_backoff):
            super().add_sockets(sockets)  # Tornado's accept loop, without the back-off

    def listen(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Tornado's ``TCPServer.listen`` with a listen backlog of :data:`~tornad_io.httpserver.BACKLOG` by default."""
        super().listen(port, address, family, backlog, flags, reuse_port)

    def bind(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Tornado's ``TCPServer.bind`` with a listen backlog of :data:`~tornad_io.httpserver.BACKLOG` by default."""
        super().bind(port, address, family, backlog, flags, reuse_port)


def _accept_with_backoff(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
    """Like ``tornado.netutil.add_accept_handler``, pausing while descriptors run out."""
    io_loop = IOLoop.current()
    state = {"removed": False, "paused": False, "pause": _FIRST_PAUSE, "refused": 0}

    def resume() -> None:
        if state["removed"]:
            return
        state["paused"] = False
        io_loop.add_handler(sock, accept, IOLoop.READ)

    def accept(fd: Any, events: int) -> None:
        for _ in range(_BATCH):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                break
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _RESOURCE_ERRORS:
                    raise
                if not state["refused"]:
                    log.error(
                        "cannot accept connections: %s; pausing accepts until descriptors are free "
                        "(raise the limit with ulimit -n, or lower max_connections)",
                        error.strerror,
                    )
                state["refused"] += 1
                state["paused"] = True
                io_loop.remove_handler(sock)
                io_loop.call_later(float(state["pause"]), resume)
                state["pause"] = min(_MAX_PAUSE, float(state["pause"]) * 2)
                return
            if state["refused"]:
                log.warning("accepting connections again (%d accept attempts had failed)", state["refused"])
                state["refused"] = 0
            state["pause"] = _FIRST_PAUSE
            callback(connection, address)

    def remove() -> None:
        if not state["paused"]:
            io_loop.remove_handler(sock)
        state["removed"] = True

    io_loop.add_handler(sock, accept, IOLoop.READ)
    return remove
