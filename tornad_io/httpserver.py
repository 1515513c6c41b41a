"""Tornado's HTTP server with the limits a public Socket.IO endpoint needs.

:class:`HTTPServer` is ``tornado.httpserver.HTTPServer`` with two changes:

- its defaults bound what one client can hold (:func:`~tornad_io.httpserver.http_server_options`):
  idle connections and slow headers close, bodies have a deadline and a size
  cap checked before they are read;
- when the process runs out of file descriptors, the accept loop backs off
  instead of spinning: Tornado's accept handler raises on ``EMFILE`` every loop
  iteration while the listening socket stays readable (one traceback per turn,
  100 % CPU). Here accepting pauses, one line is logged, and accepting resumes
  by itself once descriptors are free;
- Engine.IO polling requests take a lean path beside the application
  (:mod:`tornad_io.transports.lean_http`), unless ``lean_polling=False``.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, Callable, Iterable

import tornado.httpserver
from tornado import httputil
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

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
    """``tornado.httpserver.HTTPServer`` with bounded defaults, an accept loop that backs off, and a lean
    path for Engine.IO long-polling.

    Keyword arguments not given default to :func:`~tornad_io.httpserver.http_server_options` (pass
    ``max_http_buffer_size`` to size the body cap); any given one wins.

    ``lean_polling`` (default True): the polling ``GET``/``POST`` requests and handshakes that the
    application routes to a :class:`Server`'s endpoint are answered without a Tornado
    ``RequestHandler`` (about twice the long-polling throughput), with the same answers, headers,
    checks and hooks; everything else -- other paths, ``OPTIONS``, JSONP, an ``allow_request`` hook's
    handshakes -- reaches the application unchanged. It stays off for an
    application with ``compress_response``, a ``log_function`` setting or its own routing or
    ``log_request`` methods, with ``xheaders=True``, and when Tornado's private paths are off
    (see ``docs/architecture.md``, "The lean polling path"). ``lean_polling=False`` turns it off.

    ``lean_websocket`` (default True, with ``lean_polling``): on the connections the lean path reads,
    WebSocket handshakes for that endpoint are answered the same way and the WebSocket is served on
    the socket at once, unless they need something only Tornado does (permessage-deflate, a refusal
    of the handshake headers themselves); ``lean_websocket=False`` leaves every WebSocket handshake
    to the application.
    """

    def initialize(  # type: ignore[override]  # adds max_http_buffer_size and lean_polling, keeps the rest
        self,
        request_callback: Any,
        max_http_buffer_size: int = 1_000_000,
        lean_polling: bool = True,
        lean_websocket: bool = True,
        **kwargs: Any,
    ) -> None:
        """Called by Tornado's constructor: *kwargs* over :func:`~tornad_io.httpserver.http_server_options` defaults.

        With *lean_polling* (the default), Engine.IO polling requests and handshakes that *request_callback*
        (a ``tornado.web.Application``) routes to a :class:`~tornad_io.Server` are answered without a
        ``RequestHandler`` (see ``tornad_io/transports/lean_http.py``); every other request reaches the
        application as usual. False sends every request through the application.

        With *lean_websocket* (the default, and only with *lean_polling*), the WebSocket handshakes of
        those connections are answered the same way and the WebSocket is served on the socket at once
        (see ``tornad_io/transports/lean_websocket.py``); False leaves every handshake to Tornado.
        """
        options = http_server_options(max_http_buffer_size)
        options.update(kwargs)
        super().initialize(request_callback, **options)
        self._lean: Any = None
        # Connections served by the lean path's own reader (tornad_io/transports/lean_connection.py).
        self._lean_connections: set[Any] = set()
        self._lean_streams = False
        if lean_polling and not self.xheaders:
            from .transports.lean_http import EngineRouter

            if EngineRouter.applies(request_callback):
                self._lean = EngineRouter(request_callback)
                params = self.conn_params
                # Whole connections too, unless a subclass changes how requests start (ProcessHTTPServer)
                # or Tornado would read them differently (TLS, a forced protocol, no keep-alive, gzip bodies).
                self._lean_streams = (
                    type(self).start_request is HTTPServer.start_request
                    and self.ssl_options is None
                    and self.protocol is None
                    and not params.no_keep_alive
                    and not params.decompress
                )
                self._lean.websocket = lean_websocket and self._lean_streams

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        """Serve a new connection: on the lean path while its requests are polling ones, else Tornado's."""
        if self._lean_streams:
            from .transports.lean_connection import first_request, serves

            if serves(stream):
                first_request(self, stream, address, self._lean)
                return
        super().handle_stream(stream, address)

    def _tornado_handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        """Tornado's own ``handle_stream``: the connection is served by ``HTTP1ServerConnection``."""
        tornado.httpserver.HTTPServer.handle_stream(self, stream, address)

    async def close_all_connections(self) -> None:
        """Close every open connection, the lean path's included (see Tornado's ``close_all_connections``)."""
        from .transports.lean_connection import close_connections

        await close_connections(self._lean_connections)
        await super().close_all_connections()

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        """The delegate for one request: the lean Engine.IO path's, which hands others to the application."""
        router = self._lean
        if router is None:
            return super().start_request(server_conn, request_conn)
        from .transports.lean_http import LeanDelegate

        return LeanDelegate(router, self._standard_delegate, server_conn, request_conn)

    def _standard_delegate(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        """Tornado's own delegate for one request (the application's routing and handlers)."""
        return tornado.httpserver.HTTPServer.start_request(self, server_conn, request_conn)

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
