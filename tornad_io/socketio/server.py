"""The Socket.IO server: namespaces over an Engine.IO engine, mounted in Tornado."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable, Iterable, Pattern

from ..adapter import Adapter
from ..engineio.server import Engine
from ..engineio.session import Session
from ..options import ServerOptions
from .broadcast import AckResponses, BroadcastOperator
from .client import Client
from .namespace import Namespace, ParentNamespace

log = logging.getLogger("tornad_io.socketio")

Handler = Callable[..., Any]


class Server:
    """A Socket.IO v5 server (Engine.IO v4 underneath).

    Mount it in a Tornado application with :meth:`routes` or :meth:`attach`::

        io = Server(cors_allowed_origins="*")

        @io.on("chat")
        async def chat(socket, text):
            io.emit("chat", text)

        app = tornado.web.Application(io.routes())

    Options are those of :class:`~tornad_io.options.ServerOptions`; an
    ``adapter`` keyword sets the adapter class (in-memory by default).
    """

    def __init__(self, adapter: type[Adapter] | None = None, **options: Any) -> None:
        self.options = ServerOptions.from_kwargs(**options)
        self.adapter_class: type[Adapter] = adapter or Adapter
        self.engine = Engine(self.options, self._on_session)
        self._namespaces: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        self.of("/")

    # -- namespaces ------------------------------------------------------------

    def of(self, name: str | Pattern[str] | Callable[..., Any] | Namespace = "/") -> Namespace:
        """The namespace *name*, created on first use.

        *name* may be a regex or a predicate ``f(name, auth) -> bool`` for a
        dynamic namespace, or a :class:`Namespace` (subclass) instance to register.
        """
        if isinstance(name, Namespace):
            return self.register_namespace(name)
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            nsp = self._namespaces.get(name)
            if nsp is None:
                nsp = self.register_namespace(Namespace(name))
            return nsp
        parent = ParentNamespace(name if callable(name) else re.compile(name))
        parent.server = self
        self._parents.append(parent)
        return parent

    def register_namespace(self, nsp: Namespace) -> Namespace:
        """Add a namespace instance (e.g. a class-based one)."""
        nsp._bind(self)
        self._namespaces[nsp.name] = nsp
        return nsp

    async def _namespace_for(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        nsp = self._namespaces.get(name)
        if nsp is not None:
            return nsp
        for parent in self._parents:
            child = parent.children.get(name)
            if child is not None:
                return child
            if await parent.matches(name, auth):
                child = parent.children.get(name) or parent.create_child(name)
                self._namespaces[name] = child
                return child
        return None

    @property
    def sockets(self) -> Namespace:
        """The main namespace (``io.sockets`` in the reference)."""
        return self._namespaces["/"]

    def _on_session(self, session: Session) -> None:
        if session.generation == "0.6":
            from .legacy_client import LegacyClient

            LegacyClient(self, session)  # type: ignore[arg-type]
        else:
            Client(self, session)

    # -- the main namespace's API, for convenience -----------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler on the main namespace (see :meth:`Namespace.on`)."""
        return self.sockets.on(event, handler)

    def event(self, handler: Handler) -> Handler:
        return self.sockets.event(handler)

    def on_any(self, handler: Handler) -> Handler:
        return self.sockets.on_any(handler)

    def use(self, middleware: Handler) -> Handler:
        """Connection middleware on the main namespace."""
        return self.sockets.use(middleware)

    def emit(self, event: str, *args: Any, callback: Handler | None = None) -> None:
        self.sockets.emit(event, *args, callback=callback)

    def send(self, *args: Any) -> None:
        self.sockets.send(*args)

    async def emit_with_ack(self, event: str, *args: Any) -> AckResponses:
        return await self.sockets.emit_with_ack(event, *args)

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.sockets.to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.sockets.except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.sockets.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.sockets.local

    def compress(self, compress: bool = True) -> BroadcastOperator:
        return self.sockets.compress(compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self.sockets.timeout(seconds)

    async def fetch_sockets(self) -> list[Any]:
        return await self.sockets.fetch_sockets()

    def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        self.sockets.sockets_join(*rooms)

    def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        self.sockets.sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self.sockets.disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any, callback: Handler | None = None) -> None:
        self.sockets.server_side_emit(event, *args, callback=callback)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return await self.sockets.server_side_emit_with_ack(event, *args)

    def on_server_side_emit(self, event: str, handler: Handler | None = None) -> Any:
        return self.sockets.on_server_side_emit(event, handler)

    async def init(self) -> None:
        """Wait until every namespace's adapter is ready (subscribed, with a cluster adapter)."""
        for nsp in list(self._namespaces.values()):
            await nsp.adapter.init()

    # -- Tornado -------------------------------------------------------------------

    def routes(self, path: str | None = None) -> list[tuple[str, type, dict[str, Any]]]:
        """URL rules for ``tornado.web.Application`` (default path: ``options.path``)."""
        from ..transports.engineio import engine_routes

        return engine_routes(self.engine, path)

    def http_server_options(self, idle_timeout: float = 60.0, body_timeout: float = 30.0) -> dict[str, Any]:
        """Keyword arguments for ``tornado.httpserver.HTTPServer`` that bound what a client can hold.

        Connections idle between requests (or sending headers slowly) close after
        *idle_timeout*; a request body must arrive within *body_timeout*; bodies
        larger than ``max_http_buffer_size`` are refused before they are read.
        :class:`tornad_io.HTTPServer` applies these by default.
        """
        from ..httpserver import http_server_options

        return http_server_options(self.options.max_http_buffer_size, idle_timeout, body_timeout)

    def attach(self, app: Any, path: str | None = None) -> None:
        """Add the server's routes to an existing ``tornado.web.Application``."""
        app.wildcard_router.add_rules(self.routes(path))

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop gracefully, within *timeout* seconds.

        New handshakes are refused (HTTP 503), every socket is disconnected with
        the reason ``server shutting down``, what was already emitted is
        flushed (polling clients get it, and the close, on their next poll),
        then the adapters close. Stopping the HTTP server is the caller's part.
        """
        self.engine.closing = True
        for nsp in list(self._namespaces.values()):
            for socket in list(nsp.sockets.values()):
                socket._on_close("server shutting down")
        self.engine.close_all("server shutting down")
        await self.engine.drain(timeout)
        for nsp in list(self._namespaces.values()):
            try:
                await asyncio.wait_for(nsp.adapter.close(), timeout)
            except Exception:  # pragma: no cover
                log.exception("error closing the adapter of %s", nsp.name)
