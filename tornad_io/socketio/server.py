"""The Socket.IO server: namespaces over an Engine.IO engine, mounted in Tornado."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, NoReturn, Pattern, overload

from .._typing import ConnectMiddlewareT, HandlerT, NamespaceT
from .._usercode import call_user
from ..adapter import Adapter, AdapterFactory, FetchedSocket
from ..engineio.eio3_session import ENGINE_IO_3
from ..engineio.generation import Generation
from ..engineio.legacy_session import SOCKET_IO_06
from ..engineio.server import Engine
from ..engineio.session import ENGINE_IO_4, Session
from ..options import ServerOptions, ServerOptionsDict
from ..recovery import RecoveringAdapter
from .broadcast import AckResponses, BroadcastOperator, unsupported_arguments
from .client import Client, ClientFactory
from .eio3_client import Eio3Client
from .legacy_client import LegacyClient
from .namespace import Namespace, ParentNamespace

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

if TYPE_CHECKING:
    import tornado.web

log = logging.getLogger("tornad_io.socketio")

Handler = Callable[..., Any]


class Server:
    """A Socket.IO v5 server (Engine.IO v4 underneath).

    Mount it in a Tornado application with :meth:`routes` or :meth:`attach`::

        io = Server(cors_allowed_origins="*")

        @io.on("chat")
        async def chat(socket: Socket, text: str) -> None:
            io.emit("chat", text)

        app = tornado.web.Application(io.routes())

    The keyword options are the fields of :class:`~tornad_io.ServerOptions`
    (an unknown one raises :exc:`TypeError`). *adapter* builds each
    namespace's adapter: the in-memory :class:`~tornad_io.Adapter` by default,
    or a cluster adapter such as ``redis_adapter(url)`` from
    :mod:`tornad_io.cluster`.

    The methods that emit, select or register without naming a namespace act
    on the main namespace ``/`` (:attr:`sockets`); ``io.of("/admin")`` gives
    another.
    """

    def __init__(self, adapter: AdapterFactory | None = None, **options: Unpack[ServerOptionsDict]) -> None:
        #: The options in force (a :class:`~tornad_io.ServerOptions`).
        self.options = ServerOptions.from_kwargs(**options)
        #: What builds the adapter of each namespace (``adapter=``, or :class:`~tornad_io.Adapter`).
        self.adapter_class: AdapterFactory = adapter or (
            RecoveringAdapter if self.options.recovery else _default_adapter
        )
        self._adapter_given = adapter is not None
        #: The Engine.IO layer underneath: sessions, transports, heartbeats.
        self.engine = Engine(self.options, self._on_session)
        self._client_classes: dict[Generation, ClientFactory] = {ENGINE_IO_4: Client, SOCKET_IO_06: LegacyClient}
        self.register_generation(ENGINE_IO_3, Eio3Client)  # served when allow_eio3 is on
        self._namespaces: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        self._new_namespace_listeners: list[Callable[[Namespace], Any]] = []
        self.of("/")
        from .. import process

        process.register_server(self)

    # -- namespaces ------------------------------------------------------------

    def of(self, name: str | Pattern[str] | Callable[..., Any] | Namespace = "/") -> Namespace:
        """The namespace *name* (``"/admin"``), created on first use.

        A compiled regex, or a predicate ``f(name, auth) -> bool`` (sync or
        async), makes a dynamic namespace: a client may join any name it
        matches, and each such name becomes a child namespace sharing the
        handlers and middlewares registered on the returned one. A
        :class:`~tornad_io.Namespace` instance is registered, like
        :meth:`register_namespace`.
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

    def register_namespace(self, nsp: NamespaceT) -> NamespaceT:
        """Serve the namespace *nsp* (for example a class-based one with ``on_<event>`` methods); returns it."""
        nsp._bind(self)
        self._namespaces[nsp.name] = nsp
        self._announce(nsp)
        return nsp

    def _announce(self, nsp: Namespace) -> None:
        """The ``new_namespace`` event: every namespace but the main one, as the reference server does."""
        if nsp.name != "/":
            for listener in list(self._new_namespace_listeners):
                call_user(listener, (nsp,), "new_namespace", nsp.name)

    @property
    def namespaces(self) -> dict[str, Namespace]:
        """The namespaces served now, by name (a copy): static ones and the children of dynamic ones."""
        return dict(self._namespaces)

    async def _namespace_for(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        nsp = self._namespaces.get(name)
        if nsp is not None:
            return nsp
        for parent in self._parents:
            child = parent.children.get(name)
            if child is not None:
                return child
            if await parent.matches(name, auth):
                child = parent.children.get(name)
                created = child is None
                if child is None:
                    child = parent.create_child(name)
                self._namespaces[name] = child
                if created:
                    self._announce(child)
                return child
        return None

    @property
    def sockets(self) -> Namespace:
        """The main namespace ``/`` (``io.sockets`` in the reference server); its ``sockets`` maps id → socket."""
        return self._namespaces["/"]

    def register_generation(self, generation: Generation, client_class: ClientFactory) -> None:
        """Serve sessions of *generation* with *client_class* (``client_class(server, session)``).

        Engine.IO v4, Engine.IO v3 and Socket.IO 0.6 are registered; a further protocol generation
        registers its own client here, and nothing else in the server changes.
        """
        self._client_classes[generation] = client_class

    def _on_session(self, session: Session) -> None:
        self._client_classes[session.generation](self, session)

    # -- the main namespace's API, for convenience -----------------------------------

    @overload
    def on(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def on(self, event: str, handler: HandlerT) -> HandlerT: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register the handler of *event* on the main namespace.

        Use it as a decorator (``@io.on("chat")``) or call it with the handler.
        The handler gets the :class:`~tornad_io.Socket`, then the event's
        arguments; it may be a coroutine function; its return value is the
        acknowledgement when the client asked for one. ``connect`` gets the
        socket, ``disconnect`` and ``disconnecting`` the socket and the reason.
        See :meth:`Namespace.on <tornad_io.Namespace.on>`.

        ``new_namespace`` is the server's own event, as in the reference:
        ``handler(namespace)`` for every namespace created after it was
        registered (but the main one), dynamic children included; any number
        of handlers may listen to it.
        """
        if event == "new_namespace":

            def listen(fn: Handler) -> Handler:
                self._new_namespace_listeners.append(fn)
                return fn

            return listen(handler) if handler is not None else listen
        return self.sockets.on(event) if handler is None else self.sockets.on(event, handler)

    def event(self, handler: HandlerT) -> HandlerT:
        """Decorator: register *handler* for the event named like the function (``def chat`` → ``chat``)."""
        return self.sockets.event(handler)

    def on_any(self, handler: HandlerT) -> HandlerT:
        """Decorator: a catch-all ``handler(socket, event, *args)`` for events that no handler takes."""
        return self.sockets.on_any(handler)

    def use(self, middleware: ConnectMiddlewareT) -> ConnectMiddlewareT:
        """Decorator: a connection middleware of the main namespace, ``middleware(socket)``, sync or async.

        Middlewares run in order before ``connect``; raising
        :class:`~tornad_io.ConnectionRefused` (or any exception) refuses the
        client, who gets a CONNECT_ERROR with its message and data. The
        ``connect`` handler can refuse the same way (raise ``ConnectionRefused``
        or return ``False``): it runs before the client is told it is connected.
        """
        return self.sockets.use(middleware)

    def emit(self, event: str, *args: Any, callback: Handler | None = None, **unsupported: NoReturn) -> Awaitable[None]:
        """Send *event* with *args* to every socket of the main namespace.

        With *callback*, every client is asked to acknowledge and the callback
        is called once as ``callback(error, responses)`` (see
        :meth:`BroadcastOperator.emit <tornad_io.BroadcastOperator.emit>`).
        To select sockets first: ``io.to(room).emit(...)``, not
        python-socketio's ``to=``/``room=`` (a :exc:`TypeError` says so).
        The packet is on its way when the call returns; ``await io.emit(...)``
        works too, and finishes at once.
        """
        if unsupported:
            raise unsupported_arguments("emit", event, unsupported)
        return self.sockets.emit(event, *args, callback=callback)

    def send(self, *args: Any, **unsupported: NoReturn) -> Awaitable[None]:
        """Emit a ``message`` event with *args* to every socket of the main namespace (awaiting is optional)."""
        if unsupported:
            raise unsupported_arguments("send", "message", unsupported)
        return self.sockets.send(*args)

    async def emit_with_ack(self, event: str, *args: Any) -> AckResponses:
        """Send *event* to every socket of the main namespace and wait for all their acknowledgements.

        Set a limit with ``io.timeout(seconds).emit_with_ack(...)``, which
        raises :class:`~tornad_io.AckTimeout` when it passes; without one, a
        recipient that disconnects is not waited for.
        """
        return await self.sockets.emit_with_ack(event, *args)

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Select the sockets in any of *rooms*; chain more operators, then ``emit``.

        ``in_`` is the same method (``in`` is a Python keyword).
        """
        return self.sockets.to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Select every socket but those in any of *rooms* (a socket id is a room too)."""
        return self.sockets.except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        """The next emit is dropped for clients that cannot take it right now."""
        return self.sockets.volatile

    @property
    def local(self) -> BroadcastOperator:
        """The next operation reaches only this server's sockets (with a cluster adapter)."""
        return self.sockets.local

    def compress(self, compress: bool = True) -> BroadcastOperator:
        """Whether the next emit may be compressed (only matters with ``per_message_deflate``)."""
        return self.sockets.compress(compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """How long the next ``emit_with_ack`` (or ``emit`` with a callback) waits, in seconds."""
        return self.sockets.timeout(seconds)

    async def fetch_sockets(self) -> list[FetchedSocket]:
        """The sockets of the main namespace, across the cluster with a cluster adapter.

        Local ones are :class:`~tornad_io.Socket` objects, those on other
        servers :class:`~tornad_io.cluster.RemoteSocket` proxies; both offer
        :class:`~tornad_io.FetchedSocket`. Select first with
        ``io.in_(room).fetch_sockets()``.
        """
        return await self.sockets.fetch_sockets()

    def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        """Make every socket of the main namespace join *rooms* (``io.in_(r).sockets_join(...)`` to select)."""
        self.sockets.sockets_join(*rooms)

    def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        """Make every socket of the main namespace leave *rooms*."""
        self.sockets.sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the main namespace (and close their connections if *close*)."""
        self.sockets.disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any, callback: Handler | None = None) -> None:
        """Send *event* to the other servers of the cluster (see :meth:`Namespace.server_side_emit
        <tornad_io.Namespace.server_side_emit>`)."""
        self.sockets.server_side_emit(event, *args, callback=callback)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Send *event* to the other servers of the cluster and wait for each one's answer.

        Raises :class:`~tornad_io.cluster.ClusterTimeout` if some do not
        answer within the adapter's ``requests_timeout``.
        """
        return await self.sockets.server_side_emit_with_ack(event, *args)

    @overload
    def on_server_side_emit(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def on_server_side_emit(self, event: str, handler: HandlerT) -> HandlerT: ...

    def on_server_side_emit(self, event: str, handler: Handler | None = None) -> Any:
        """Handle *event* sent by another server with :meth:`server_side_emit`; usable as a decorator.

        The handler gets the event's arguments (no socket); its return value
        answers a request made with an acknowledgement.
        """
        if handler is None:
            return self.sockets.on_server_side_emit(event)
        return self.sockets.on_server_side_emit(event, handler)

    async def init(self) -> None:
        """Wait until every namespace's adapter is ready (subscribed, with a cluster adapter).

        Optional: adapters also start on first use. Calling it before serving
        makes a cluster misconfiguration fail at start-up.
        """
        for nsp in list(self._namespaces.values()):
            await nsp.adapter.init()

    # -- Tornado -------------------------------------------------------------------

    def routes(self, path: str | None = None) -> list[tuple[str, type, dict[str, Any]]]:
        """URL rules for ``tornado.web.Application(...)``, at *path* (default: ``options.path``).

        Put them before a catch-all rule of the application, or use :meth:`attach`.
        """
        from ..transports.engineio import engine_routes

        routes = engine_routes(self.engine, path)
        if self.options.serve_client is not None:
            from ..transports.client_files import client_routes

            routes = client_routes(self.options.serve_client, path or self.options.path, self.options) + routes
        return routes

    def http_server_options(self, idle_timeout: float = 60.0, body_timeout: float = 30.0) -> dict[str, Any]:
        """Keyword arguments for ``tornado.httpserver.HTTPServer`` that bound what a client can hold.

        Connections idle between requests (or sending headers slowly) close after
        *idle_timeout*; a request body must arrive within *body_timeout*; bodies
        larger than ``max_http_buffer_size`` are refused before they are read.
        :class:`tornad_io.HTTPServer` applies these by default.
        """
        from ..httpserver import http_server_options

        return http_server_options(self.options.max_http_buffer_size, idle_timeout, body_timeout)

    def attach(self, app: tornado.web.Application, path: str | None = None) -> None:
        """Add the server's routes to an existing ``tornado.web.Application``, at *path*.

        They go before the application's own rules, so that a catch-all rule
        such as ``(r"/.*", PageHandler)`` does not take ``/socket.io/``
        requests. Rules that ``app.add_handlers(host_pattern, ...)`` adds for
        a host are still tried first (Tornado tries host rules before the
        others): mount the routes there too, or give those rules a narrower
        pattern.
        """
        router = app.wildcard_router
        before = len(router.rules)
        router.add_rules(self.routes(path))  # Tornado turns the tuples into rules at the end of the list …
        router.rules[:] = router.rules[before:] + router.rules[:before]  # … moved to the front here

    def _check_fork(self) -> None:
        """Refuse to be served by several processes when that cannot work (called before the fork)."""
        if self.options.recovery is not None and not self._adapter_given:
            raise ValueError(
                "connection state recovery across worker processes needs a cluster adapter that keeps "
                "messages: pass adapter=redis_streams_adapter(url), or serve one process"
            )

    def _after_fork(self) -> None:
        """In a worker just forked: give every namespace a new adapter (a new cluster identity).

        The default adapter becomes the inter-process one; a cluster adapter
        factory is asked for fresh adapters (and forgets a client made before the fork).
        """
        renew = getattr(self.adapter_class, "after_fork", None)
        if callable(renew):
            renew()
        for nsp in list(self._namespaces.values()):
            nsp.adapter = self.adapter_class(nsp)

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


def _default_adapter(nsp: Namespace) -> Adapter:
    """The in-memory adapter, or in a worker of several processes the inter-process one."""
    from .._worker import current_worker

    worker = current_worker()
    if worker is None or worker.channel is None:
        return Adapter(nsp)
    from ..cluster.local import ProcessAdapter

    return ProcessAdapter(nsp, worker.channel)
