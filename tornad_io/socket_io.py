"""The original SocketTornad.IO API: subclass :class:`SocketIOHandler`.

::

    from tornad_io.socket_io import SocketIOHandler
    from tornad_io import SocketIOServer

    class EchoHandler(SocketIOHandler):
        def on_open(self, *args, **kwargs):
            logging.info("connected over %s with %r", self.protocol, kwargs)

        def on_message(self, message):
            self.send("[echo] %s" % message)

        def on_close(self):
            logging.info("closed")

    application = tornado.web.Application(
        [EchoHandler.routes("echoTest", "(?P<sec_a>123)(?P<sec_b>.*)", extraSep="/")],
        enabled_protocols=["websocket", "xhr-polling", "jsonp-polling"],
        socket_io_port=8888,
    )
    SocketIOServer(application)

One route serves the six Socket.IO 0.6 transports at
``/<resource><extraSep><extra>/<transport>/…`` and today's ``socket.io-client``
(Engine.IO v4) at ``/<resource><extraSep><extra>/``. Each connection, of
either generation, gets its own handler instance; underneath it is a socket
of the class's :class:`~tornad_io.Server` (``EchoHandler.io()``), so rooms
and broadcasts from the modern API reach every connection.
"""

from __future__ import annotations

import inspect
import logging
import re
from typing import Any, ClassVar

import tornado.routing
import tornado.web
from tornado.httputil import HTTPServerRequest

from .exceptions import ConnectionRefused
from .socketio._calls import call_user
from .socketio.broadcast import BroadcastOperator
from .socketio.server import Server
from .socketio.socket import Socket
from .transports.legacy import LEGACY_TRANSPORTS, SocketIORouteHandler

log = logging.getLogger("tornad_io.seed")

#: The six Socket.IO 0.6 transports, in the original's order.
PROTOCOLS = LEGACY_TRANSPORTS

_ROUTE_GROUPS = frozenset({"resource", "protocol", "session_id", "tail"})


class SessionStore(dict):  # type: ignore[type-arg]
    """Per-connection storage, kept for the connection's life (``self.session``)."""

    def save(self) -> None:
        """Kept for compatibility with the original (Beaker) sessions: nothing to do."""


class SocketIOHandler:
    """One client connection, whatever its protocol generation and transport.

    Override :meth:`on_open`, :meth:`on_message` and :meth:`on_close`; call
    :meth:`send`. Class attribute ``server_options`` passes options to the
    class's :class:`~tornad_io.Server` (for example ``legacy_origins``).

    :cvar server_options: Options of the class's :class:`~tornad_io.Server`
        (keyword arguments of ``Server(...)``); set before the first connection.
        ``allow_eio3`` is on here unless set to False (socket.io-client 2.x is served too).
    :ivar socket: The :class:`~tornad_io.Socket` of this connection, for the modern API.
    """

    server_options: ClassVar[dict[str, Any]] = {}
    _io: ClassVar[Server | None] = None
    _connections: ClassVar[dict[str, SocketIOHandler]]

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self._session = SessionStore()
        self._pending: list[Any] | None = []  # sends made in on_open, before the client is connected

    # -- what users override ---------------------------------------------------

    def on_open(self, *args: Any, **kwargs: Any) -> Any:
        """A client connected. ``kwargs`` holds the named groups of the route's
        extra part (and ``extra``), ``args`` its unnamed groups. Return False or
        raise :class:`~tornad_io.ConnectionRefused` to refuse the connection."""

    def on_message(self, message: Any) -> Any:
        """A message arrived: a ``str``, or the decoded JSON value."""

    def on_close(self) -> Any:
        """The connection ended."""

    # -- what users call --------------------------------------------------------

    def send(self, message: Any) -> None:
        """Send a message: a ``str`` as is, anything else as JSON (``Decimal`` exactly).

        A 0.6 client receives it as a message; a modern client as a
        ``message`` event.
        """
        if self._pending is not None:
            self._pending.append(message)
            return
        self.socket.emit("message", message)

    def _connected(self) -> None:
        pending, self._pending = self._pending, None
        for message in pending or ():
            self.socket.emit("message", message)

    @property
    def protocol(self) -> str:
        """The transport's name (``websocket``, ``xhr-polling``, … or ``polling``)."""
        return self.socket.transport

    @property
    def session(self) -> SessionStore:
        """A dict-like store for this connection, with ``save()``."""
        return self._session

    @property
    def id(self) -> str:
        """The connection's id (its socket's id)."""
        return self.socket.id

    def broadcast(self, message: Any, include_self: bool = False) -> None:
        """Send *message* to every connection of this handler class."""
        target = self.io().sockets if include_self else self.socket.broadcast
        target.emit("message", message)

    def join(self, room: str) -> None:
        """Join *room*: ``to(room)`` and ``io().to(room)`` then reach this connection."""
        self.socket.join(room)

    def leave(self, room: str) -> None:
        """Leave *room*."""
        self.socket.leave(room)

    def to(self, room: str) -> BroadcastOperator:
        """Everyone in *room* but this connection (``.emit("message", m)`` to send)."""
        return self.socket.to(room)

    def close(self) -> None:
        """Close the connection from the server side."""
        self.socket.disconnect(close=True)

    # -- wiring -----------------------------------------------------------------

    @classmethod
    def io(cls) -> Server:
        """The :class:`~tornad_io.Server` behind this handler class (created on first use)."""
        if cls.__dict__.get("_io") is None:
            cls._io = _build_server(cls)
            cls._connections = {}
        assert cls._io is not None
        return cls._io

    @classmethod
    def routes(
        cls,
        resource: str,
        extraRE: str | None = None,  # noqa: N803 - the original API's spelling
        extraSep: str | None = "",  # noqa: N803
        enabled_protocols: tuple[str, ...] | None = None,
    ) -> tuple[tornado.routing.Matcher, type, dict[str, Any]]:
        """One rule for ``tornado.web.Application([...])`` serving every transport.

        *resource* and *extraRE* are regular expressions; the named groups of
        *extraRE* reach :meth:`on_open` as keyword arguments, its unnamed groups
        as positional ones. ``enabled_protocols`` defaults to the application
        setting of that name, then to all six.
        """
        matcher = RouteMatcher(resource, extraRE, extraSep or "")
        return (
            matcher,
            _SettingsAwareRouteHandler,
            {
                "engine": cls.io().engine,
                "enabled_protocols": enabled_protocols,
                "origins_from_settings": "cors_allowed_origins" not in cls.server_options,
            },
        )


def _build_server(cls: type[SocketIOHandler]) -> Server:
    # Same origin by default, like Server: a cookie-carrying WebSocket from any site
    # must not pass. ``server_options`` or the Application setting cors_allowed_origins open it.
    # socket.io-client 2.x (Engine.IO v3) is served beside 0.6 and 4.x: one handler, every generation.
    io = Server(**{"allow_eio3": True, **cls.server_options})

    def abandoned(socket: Socket) -> None:
        # The connection ended before it completed (client gone during an async
        # on_open, or refused by a later middleware): on_open ran, so on_close runs.
        handler = cls._connections.pop(socket.id, None)
        if handler is not None:
            call_user(handler.on_close, (), "on_close", socket.id)

    io.sockets._abandon_hooks.append(abandoned)

    @io.use
    async def open_connection(socket: Socket) -> None:
        handler = cls(socket)
        route = socket.client.session.info.route
        args = list(route.get("args", ()))
        kwargs = {k: v for k, v in route.get("kwargs", {}).items() if k not in _ROUTE_GROUPS}
        kwargs.setdefault("extra", "")
        result = handler.on_open(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if result is False:
            raise ConnectionRefused("connection refused by on_open")
        cls._connections[socket.id] = handler

    def connect(socket: Socket) -> None:
        handler = cls._connections.get(socket.id)
        if handler is not None:
            handler._connected()

    def message(socket: Socket, *args: Any) -> Any:
        handler = cls._connections.get(socket.id)
        if handler is None:
            return None
        return handler.on_message(args[0] if len(args) == 1 else list(args))

    def disconnect(socket: Socket, reason: str) -> Any:
        handler = cls._connections.pop(socket.id, None)
        if handler is not None:
            return handler.on_close()
        return None

    io.on("connect", connect)
    io.on("message", message)
    io.on("disconnect", disconnect)
    return io


class RouteMatcher(tornado.routing.Matcher):
    """Matches ``/<resource><sep><extra>/<transport>/…`` (0.6) or ``/<resource><sep><extra>/`` (v4).

    :ivar legacy: The compiled pattern of 0.6 transport URLs.
    :ivar modern: The compiled pattern of the Engine.IO v4 URL.
    """

    def __init__(self, resource: str, extra_re: str | None, extra_sep: str) -> None:
        if extra_re is None:
            extra = "(?P<extra>)"
        elif extra_re.startswith("(?P<extra>"):
            extra = re.escape(extra_sep) + extra_re
        else:
            extra = re.escape(extra_sep) + f"(?P<extra>{extra_re})"
        base = f"/(?P<resource>{resource}){extra}"
        protocols = "|".join(re.escape(p) for p in LEGACY_TRANSPORTS)
        self.legacy = re.compile(
            base + f"/(?P<protocol>{protocols})(?:/(?P<session_id>[0-9a-zA-Z]*)(?:/(?P<tail>[0-9a-zA-Z/]*))?)?$"
        )
        self.modern = re.compile(base + "$")
        self._named = frozenset(self.legacy.groupindex.values())

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        path = request.path
        found = self.legacy.match(path) or self.modern.match(path.rstrip("/") if path != "/" else path)
        if found is None:
            return None
        args = [g or "" for i, g in enumerate(found.groups(), 1) if i not in self._named]
        kwargs = {k: v for k, v in found.groupdict().items()}
        if found.re is self.modern:
            kwargs["protocol"] = None
        return {"path_args": args, "path_kwargs": kwargs}


class _SettingsAwareRouteHandler(SocketIORouteHandler):
    """Reads ``enabled_protocols`` and ``cors_allowed_origins`` from the application settings
    when the route or the handler class's ``server_options`` do not give them."""

    def initialize(
        self, engine: Any, enabled_protocols: tuple[str, ...] | None = None, origins_from_settings: bool = True
    ) -> None:
        if enabled_protocols is None:
            enabled_protocols = tuple(self.application.settings.get("enabled_protocols", PROTOCOLS))
        super().initialize(engine, enabled_protocols)
        self._origins_from_settings = origins_from_settings

    def _allowed_origins(self) -> Any:
        if self._origins_from_settings:
            return self.application.settings.get("cors_allowed_origins", self.opts.cors_allowed_origins)
        return self.opts.cors_allowed_origins


__all__ = ["PROTOCOLS", "RouteMatcher", "SessionStore", "SocketIOHandler"]

# The original module also exposed tornado.web for convenience in examples.
web = tornado.web
