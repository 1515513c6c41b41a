"""WebSocket handshakes for Engine.IO answered on the lean path, without Tornado's request cycle.

A :class:`~tornad_io.transports.lean_connection.LeanConnection` that reads a
WebSocket upgrade request for an Engine.IO endpoint gives it to a
:class:`LeanUpgrade` when nothing in it needs Tornado (:func:`plain_upgrade`):
then the delegate checks it as ``EngineIOHandler.get`` does (the shared
:class:`~tornad_io.transports.request_rules.RequestRules`, the engine's checks
and ``admit``), answers a refusal with the handler's bytes, or writes the
``101`` with Tornado's headers and builds the session's WebSocket on the
connection's own :class:`~tornad_io.transports.fast_websocket.RawSocketStream`:
the same :class:`~tornad_io.transports.fast_websocket.FastWebSocketProtocol`
and :class:`~tornad_io.transports.engineio.WebSocketTransport` as after
Tornado's handshake, with no ``HTTP1Connection``, ``RequestHandler`` or
``IOStream`` in between. The ``101`` and a new session's open packet leave in
one ``send``.

Everything else goes to Tornado unchanged, before any check has run: another
``Sec-WebSocket-Version`` (426), a missing ``Host`` or ``Sec-WebSocket-Key``
or a ``Connection`` header without ``upgrade`` (400), a permessage-deflate offer
when the server enables compression, a ``Sec-Fetch-Site`` without ``Origin``
(Tornado's cross-origin check), a handshake with an ``allow_request`` hook
(which is given the handler), and whatever the lean polling path leaves to
Tornado anyway (HTTP/1.0, bodies, odd framing).
"""

from __future__ import annotations

import sys
from typing import Any

import tornado.websocket
from tornado import httputil
from tornado.log import app_log

from .. import _tornado_compat as compat
from ..engineio.server import EngineError, forbidden
from ..engineio.session import Session
from ..options import ServerOptions
from .engineio import WebSocketTransport, open_websocket_session
from .fast_websocket import FastWebSocketProtocol
from .lean_http import _SERVER, LeanDelegate, _date

# What RequestHandler.finish removes from a 1xx response.
_REPRESENTATION_HEADERS = ("Content-Encoding", "Content-Language", "Content-Type")
_SAME_SITE = ("same-origin", "none")


def plain_upgrade(headers: httputil.HTTPHeaders, opts: ServerOptions) -> bool:
    """Whether Tornado would answer this upgrade request's headers with a 101 (given the engine's consent).

    Anything Tornado refuses or negotiates on its own, in ``WebSocketHandler.get`` and
    ``WebSocketProtocol13.accept_connection``, makes it False: the request then takes the standard path.
    """
    if headers.get("Upgrade", "").lower() != "websocket":
        return False  # not a WebSocket to the handler: a polling GET, refused there
    if "upgrade" not in [part.strip().lower() for part in headers.get("Connection", "").split(",")]:
        return False  # Tornado: 400 "Connection" must be "Upgrade"
    if headers.get("Sec-WebSocket-Version") != "13" or not headers.get("Host") or not headers.get("Sec-Websocket-Key"):
        return False  # 426, or 400 Missing/Invalid WebSocket headers
    if "Sec-Fetch-Site" in headers and not headers.get("Origin"):
        return False  # Tornado 6.6's cross-origin check may refuse it (403)
    extensions = headers.get("Sec-WebSocket-Extensions")
    if extensions:
        if opts.per_message_deflate:
            return False  # permessage-deflate is negotiated by Tornado, and read and written by it
        if not compat.websocket_extensions_parse(extensions):
            return False
    return True


class LeanUpgrade(LeanDelegate):
    """One WebSocket upgrade request on a lean connection, answered as ``EngineIOHandler.get`` answers it."""

    __slots__ = ()

    def accepts_upgrade(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> bool:
        """Whether this upgrade request is answered here (see :func:`plain_upgrade`).

        Raises Tornado's ``HTTPInputError`` where Tornado's routing would (a bad Host or query).
        Nothing is checked against the engine yet: a request declined here reaches Tornado untouched.
        """
        if start_line.method != "GET":
            return False
        engine = self.router.engine_for(start_line.path.partition("?")[0])
        if engine is None:
            return False
        opts = engine.options
        if not plain_upgrade(headers, opts):
            return False
        query = self._parse(start_line, headers)
        if "sid" not in query and opts.allow_request is not None:
            return False  # the hook is given the handler
        self.engine = engine
        self.opts = opts
        self.query = query
        return True

    def finish(self) -> None:
        """Answer the request: a refusal as the handler writes it, or the 101 and the session's WebSocket."""
        self.chunks = []
        self.status = 200
        self._fresh_headers()
        try:
            self._upgrade()
        except Exception:
            self._uncaught()

    def _fresh_headers(self) -> None:
        """The headers of ``RequestHandler.clear()`` (``prepare()`` adds nothing for an upgrade)."""
        headers = self.headers = httputil.HTTPHeaders()
        headers["Server"] = _SERVER
        headers["Content-Type"] = "text/html; charset=UTF-8"
        headers["Date"] = _date()

    def _upgrade(self) -> None:
        engine = self.engine
        query = self.query
        request_headers = self.request.headers
        origin = request_headers.get("Origin")
        if origin is not None and not self._origin_ok(origin):
            self._error(forbidden())
            return
        try:
            session = engine.check_request("GET", query, True)
            if session is None:
                engine.admit(self._client_address())  # no allow_request hook here (see accepts_upgrade)
        except EngineError as error:
            self._error(error)
            return
        accept = tornado.websocket.WebSocketProtocol13.compute_accept_value(
            request_headers.get("Sec-Websocket-Key", "")
        )
        if (
            origin is None
            and not engine.has_listeners("headers")
            and not (session is None and engine.has_listeners("initial_headers"))
        ):
            # Nothing adds a header (no CORS, no listener): the head the general case below writes.
            head = (
                f"HTTP/1.1 101 Switching Protocols\r\nServer: {_SERVER}\r\nDate: {self.headers['Date']}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-Websocket-Accept: {accept}\r\n\r\n"
            ).encode("latin1")
            self._switch(session, head)
            return
        self._set_cors_headers()
        self._response_headers(session is None)
        # WebSocketProtocol13._accept_connection, then RequestHandler.finish for a 1xx status.
        self.clear_header("Content-Type")
        self.set_header("Upgrade", "websocket")
        self.set_header("Connection", "Upgrade")
        self.set_header("Sec-WebSocket-Accept", accept)
        for name in _REPRESENTATION_HEADERS:
            self.clear_header(name)
        connection: Any = self.request_conn
        start_line = httputil.ResponseStartLine("HTTP/1.1", 101, "Switching Protocols")
        self._switch(session, connection.response_head(start_line, self.headers))

    def _switch(self, session: Session | None, head: bytes) -> None:
        """Write the 101 *head*, then serve the socket as the session's WebSocket."""
        connection: Any = self.request_conn
        self.finished = True
        raw, leftover = connection.write_upgrade(head)
        self._log(101)
        opts = self.opts
        settings = self.router.app.settings
        deflate = opts.per_message_deflate
        params = compat.websocket_params_for(  # as EngineIOHandler's properties give them to Tornado
            settings.get("websocket_ping_interval"),
            settings.get("websocket_ping_timeout"),
            opts.max_http_buffer_size,
            (deflate if isinstance(deflate, dict) else {}) if deflate else None,
        )
        protocol = FastWebSocketProtocol(None, False, params)  # type: ignore[arg-type]  # its handler: below
        transport = WebSocketTransport("websocket", protocol, opts)
        protocol.handler = transport
        protocol.selected_subprotocol = None
        protocol.adopt(raw)
        protocol.start_pinging()
        try:
            open_websocket_session(self.engine, transport, session, self.query, self._handshake_info)
        except Exception:
            # As Tornado's accept_connection: the handler logs what open() raised, and the socket closes.
            app_log.error("Uncaught exception %s\n%r", self._summary(), self.request, exc_info=sys.exc_info())
            protocol.abort()
            return
        protocol.serve(leftover)
