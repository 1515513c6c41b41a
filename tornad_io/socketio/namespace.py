"""Namespaces: handlers, connection middleware, and broadcasting to their sockets.

Handlers are registered with decorators (``@nsp.on("chat")``, ``@nsp.event``)
or, for a class-based namespace, as ``on_<event>`` methods of a subclass::

    class Chat(Namespace):
        async def on_connect(self, socket): ...
        async def on_message(self, socket, text): return "got it"

Every handler gets the :class:`Socket` first, then the event's arguments; its
return value is the acknowledgement when the client asked for one. The
``connect`` (alias ``connection``) handler gets the socket, ``disconnect``
and ``disconnecting`` get the socket and the reason.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, NoReturn, Pattern, Union, overload

from .._logsafe import safe_repr
from .._typing import ConnectMiddlewareT, HandlerT
from .._usercode import call_user, spawn
from ..adapter import Adapter, FetchedSocket
from ..exceptions import ConnectionRefused
from . import codec
from .broadcast import DONE, AckResponses, BroadcastOperator, unsupported_arguments
from .socket import Socket

if TYPE_CHECKING:
    from ..recovery import RestoredSession
    from .client import ClientProtocol as Client
    from .server import Server

log = logging.getLogger("tornad_io.socketio")

Handler = Callable[..., Any]
NamespaceMatcher = Union[str, Pattern[str], Callable[[str, dict[str, Any]], Any]]

_ALIASES = {"connection": "connect"}


def _capacity(fn: Callable[..., Any]) -> int:
    """How many positional arguments *fn* takes at most (a large number with ``*args``)."""
    try:
        return _cached_capacity(fn)
    except TypeError:  # an unhashable callable
        return _count_positional(fn)


def _count_positional(fn: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1 << 16
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return 1 << 16
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


_cached_capacity = functools.lru_cache(maxsize=1024)(_count_positional)


class Namespace:
    """A communication channel multiplexed over one connection (``/`` by default).

    Get one with ``io.of(name)``, or subclass it with ``on_<event>`` methods
    and pass an instance to :meth:`Server.register_namespace
    <tornad_io.Server.register_namespace>`. Its broadcasting methods reach
    the sockets of this namespace only.
    """

    _method_handlers: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if klass is Namespace or not issubclass(klass, Namespace):
                continue
            for attr, value in vars(klass).items():
                if attr.startswith("on_") and callable(value):
                    handlers[attr[3:]] = attr
        cls._method_handlers = handlers

    def __init__(self, name: str = "/") -> None:
        #: The namespace's name, such as ``/`` or ``/admin``.
        self.name = name
        #: The :class:`~tornad_io.Server` serving it (set when it is registered).
        self.server: Server = None  # type: ignore[assignment]  # set by Server.register
        #: The connected sockets of this server, by id.
        self.sockets: dict[str, Socket] = {}
        #: The rooms index and delivery of this namespace (built by the server's adapter factory).
        self.adapter: Adapter = None  # type: ignore[assignment]
        self._handlers: dict[Any, Handler] = {}
        self._any: list[Handler] = []
        self._middlewares: list[Handler] = []
        self._server_handlers: dict[str, Handler] = {}
        self._ids = 0
        # Called with a socket whose connection attempt ended before it was added
        # (refused, or its client gone): the original API frees its handler there.
        self._abandon_hooks: list[Callable[[Socket], None]] = []
        self._parent: ParentNamespace | None = None  # set for a dynamic namespace's child
        self._connecting = 0  # connection attempts running their middleware
        self._connection_listeners: list[Callable[[Socket], Any]] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def _bind(self, server: Server) -> None:
        self.server = server
        self.adapter = server.adapter_class(self)

    # -- registration ------------------------------------------------------------

    @overload
    def on(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def on(self, event: str, handler: HandlerT) -> HandlerT: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register the handler of *event*; usable as a decorator (``@nsp.on("chat")``).

        The handler gets the :class:`~tornad_io.Socket`, then the event's
        arguments, and may be a coroutine function; its return value (a tuple
        for several values) is the acknowledgement when the client asked for
        one. ``connect`` (alias ``connection``) gets the socket;
        ``disconnecting`` and ``disconnect`` get the socket and the reason.
        One handler per event: registering again replaces it.
        """
        event = _ALIASES.get(event, event)

        def register(fn: Handler) -> Handler:
            self._handlers[event] = fn
            return fn

        return register(handler) if handler is not None else register

    def event(self, handler: HandlerT) -> HandlerT:
        """Register *handler* for the event named like the function; a decorator."""
        return self.on(handler.__name__, handler)

    def on_any(self, handler: HandlerT) -> HandlerT:
        """Catch-all: ``handler(socket, event, *args)`` for events no handler takes."""
        self._any.append(handler)
        return handler

    def use(self, middleware: ConnectMiddlewareT) -> ConnectMiddlewareT:
        """Add a connection middleware: ``middleware(socket)``, sync or async.

        Raise :class:`~tornad_io.ConnectionRefused` (or any exception) to
        refuse: the client gets a CONNECT_ERROR with its message and data.
        The ``connect`` handler, which runs after the middleware and before the
        client is told it is connected, can refuse too, python-socketio's way:
        raise ``ConnectionRefused`` there or return ``False``.
        """
        self._middlewares.append(middleware)
        return middleware

    def add_connection_listener(self, listener: Callable[[Socket], Any]) -> None:
        """Call ``listener(socket)`` for each socket the namespace accepts (Node's ``connection`` listeners).

        It runs once the client has been told it is connected (after the
        middleware and the ``connect`` handler accepted it), before any of the
        socket's events. Unlike the ``connect`` handler, any number of
        listeners may be added, and they cannot refuse: they observe (the Admin
        UI's instrumentation is one). A dynamic namespace's children start
        with the listeners their parent had when they were created.
        """
        self._connection_listeners.append(listener)

    def remove_connection_listener(self, listener: Callable[[Socket], Any]) -> None:
        """Stop calling a listener added with :meth:`add_connection_listener`."""
        self._connection_listeners = [fn for fn in self._connection_listeners if fn is not listener]

    def _handler_for(self, event: Any) -> Handler | None:
        handler = self._handlers.get(event)
        if handler is None and isinstance(event, str):
            attr = self._method_handlers.get(event)
            if attr is not None:
                handler = getattr(self, attr)
        return handler

    def _fire(self, socket: Socket, event: str, *args: Any) -> None:
        """Call the socket's own and the namespace's handlers of a lifecycle event.

        Trailing arguments a handler cannot take are left out, so that
        ``disconnect(socket, reason)`` keeps working where the reference
        passes a description as well.
        """
        own = socket._handlers.get(event) if socket._handlers else None
        for handler in list(own or ()):
            call_user(handler, args[: _capacity(handler)], event, socket.id)
        nsp_handler = self._handler_for(event)
        if nsp_handler is not None:
            call_user(nsp_handler, (socket, *args)[: _capacity(nsp_handler)], event, socket.id)

    def next_ack_id(self) -> int:
        """A new id for a packet that asks for acknowledgements.

        Unique in the namespace, so an adapter can give the same id to the
        packet it sends to many sockets (each socket waits for it on its own).
        """
        ack_id = self._ids
        self._ids += 1
        return ack_id

    _next_ack_id = next_ack_id

    def server_side_handler(self, event: str) -> Handler | None:
        """The handler registered with :meth:`on_server_side_emit` for *event*, or None.

        What a cluster adapter calls with the arguments of an event another
        server sent (see :class:`~tornad_io.Adapter`).
        """
        return self._server_handlers.get(event)

    # -- connecting --------------------------------------------------------------

    async def _connect(self, client: Client, auth: dict[str, Any]) -> None:
        socket = Socket(self, client, auth)
        self._connecting += 1
        try:
            restored = await self._restore(socket, auth)
            settings = self.server.options.recovery
            if restored is not None and settings is not None and settings.skip_middlewares:
                refusal = None
            else:
                refusal = await self._run_middlewares(socket)
        finally:
            self._connecting -= 1
        if refusal is not None:
            client.refuse(self.name, *refusal)
            self._abandoned(socket)
        elif client.closed:
            self._abandoned(socket)
        else:
            self._add(socket, client, restored)

    async def _restore(self, socket: Socket, auth: dict[str, Any]) -> RestoredSession | None:
        """Connection state recovery: give *socket* back the session its client presents."""
        if socket.pid is None:
            return None
        pid, offset = auth.get("pid"), auth.get("offset")
        if not isinstance(pid, str) or not isinstance(offset, str):
            return None
        try:
            restored = await self.adapter.restore_session(pid, offset)
        except Exception:  # noqa: BLE001 - as in the reference: logged, and the client starts afresh
            log.exception("error while restoring the session of %s", safe_repr(self.name))
            return None
        if restored is None or restored.sid in self.sockets:
            return None
        socket.id = restored.sid
        socket.pid = restored.pid
        socket.data = restored.data
        socket.recovered = True
        return restored

    async def _run_middlewares(self, socket: Socket) -> tuple[str, Any] | None:
        """Run the connection middleware; the refusal's message and data, if one refused."""
        for middleware in list(self._middlewares):
            try:
                result = middleware(socket)
                if inspect.isawaitable(result):
                    await result
            except ConnectionRefused as refusal:
                return refusal.message, refusal.data
            except Exception as error:  # noqa: BLE001 - reported to the client like the reference
                log.info("connection to %s refused by middleware: %s", safe_repr(self.name), safe_repr(error))
                return str(error) or type(error).__name__, getattr(error, "data", None)
        return None

    def _add(self, socket: Socket, client: Client, restored: RestoredSession | None = None) -> None:
        """Add a socket that passed the middleware, then let the ``connect`` handler decide.

        The handler runs before the client is told it is connected, as in
        python-socketio: raising :class:`~tornad_io.ConnectionRefused` or returning
        ``False`` refuses with CONNECT_ERROR. The socket is already in the namespace
        and its own room meanwhile; what is emitted to it waits and follows CONNECT.
        An async handler delays CONNECT until it returns. A *restored* socket
        (connection state recovery) rejoins its rooms and gets the packets it
        missed, ahead of CONNECT as in the reference.
        """
        socket.connected = True
        self.sockets[socket.id] = socket
        client.sockets[self.name] = socket  # a close of the session reaches it from now on
        self.adapter.add_all(socket.id, (socket.id,))
        if restored is not None:
            self.adapter.add_all(socket.id, restored.rooms)
            # As the reference does, the missed packets go ahead of the CONNECT answer: the
            # client keeps events that arrive before it and hands them over first.
            for packets in restored.missed:
                socket.write_packets(packets)
        handler = self._handler_for("connect")
        if handler is None:
            self._accept(socket, client)
            return
        if socket._held is None:
            socket._held = []
        try:
            result = handler(socket)
        except ConnectionRefused as refusal:
            self._refuse_added(socket, client, refusal.message, refusal.data)
            return
        except Exception:
            log.exception("error in handler for 'connect' (socket %s)", socket.id)
            result = None
        if inspect.isawaitable(result):
            spawn(self._await_connect_handler(socket, client, result))
            return
        self._connect_decided(socket, client, result)

    async def _await_connect_handler(self, socket: Socket, client: Client, awaitable: Any) -> None:
        try:
            result = await awaitable
        except ConnectionRefused as refusal:
            if socket.connected:
                self._refuse_added(socket, client, refusal.message, refusal.data)
            return
        except Exception:
            log.exception("error in handler for 'connect' (socket %s)", socket.id)
            result = None
        self._connect_decided(socket, client, result)

    def _connect_decided(self, socket: Socket, client: Client, result: Any) -> None:
        if not socket.connected:
            # The handler disconnected it: the client still learns of both.
            if socket._held is not None and not client.closed:
                self._flush_held(socket, client)
            return
        if result is False:
            self._refuse_added(socket, client, "Connection refused", None)
            return
        self._accept(socket, client)

    def _accept(self, socket: Socket, client: Client) -> None:
        client._add(socket)
        self._flush_held(socket, client)
        for listener in list(self._connection_listeners):
            if not socket.connected:
                break
            call_user(listener, (socket,), "connection listener", socket.id)

    def _flush_held(self, socket: Socket, client: Client) -> None:
        held, socket._held = socket._held, None
        answer = {"sid": socket.id} if socket.pid is None else {"sid": socket.id, "pid": socket.pid}
        socket._write_engine(client.encode(codec.CONNECT, self.name, answer))
        for packets, volatile in held or ():
            socket._write_engine(packets, volatile)

    def _refuse_added(self, socket: Socket, client: Client, message: str, data: Any) -> None:
        socket.connected = False
        socket._held = None
        acks, socket._acks = socket._acks, {}
        for ack in acks.values():
            ack.gone()
        client._remove(socket)
        self._remove(socket)
        client.refuse(self.name, message, data)
        self._abandoned(socket)

    def _abandoned(self, socket: Socket) -> None:
        for hook in list(self._abandon_hooks):
            try:
                hook(socket)
            except Exception:
                log.exception("error in a connection clean-up hook (socket %s)", socket.id)
        self._cleanup_if_empty()

    def _remove(self, socket: Socket) -> None:
        self.adapter.del_all(socket.id)
        self.sockets.pop(socket.id, None)
        if not self.sockets:
            self._cleanup_if_empty()

    def _cleanup_if_empty(self) -> None:
        parent = self._parent
        if (
            parent is not None
            and not self.sockets
            and not self._connecting
            and self.server.options.cleanup_empty_child_namespaces
        ):
            parent._remove_child(self)

    # -- broadcasting ------------------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self.adapter)

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """The sockets in any of *rooms*."""
        return self._operator().to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """All sockets but those in *rooms*."""
        return self._operator().except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        """The next emit is dropped for clients that cannot take it right now."""
        return self._operator().volatile

    @property
    def local(self) -> BroadcastOperator:
        """The next operation reaches only this server's sockets (with a cluster adapter)."""
        return self._operator().local

    def compress(self, compress: bool = True) -> BroadcastOperator:
        """Whether the next emit may be compressed (only matters with ``per_message_deflate``)."""
        return self._operator().compress(compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """How long the next ``emit_with_ack`` (or ``emit`` with a callback) waits, in seconds."""
        return self._operator().timeout(seconds)

    def emit(self, event: str, *args: Any, callback: Handler | None = None, **unsupported: NoReturn) -> Awaitable[None]:
        """Send *event* with *args* to every socket of the namespace.

        See :meth:`BroadcastOperator.emit <tornad_io.BroadcastOperator.emit>`
        for *callback* and the (optional) await.
        """
        if unsupported:
            raise unsupported_arguments("emit", event, unsupported)
        return self._operator().emit(event, *args, callback=callback)

    def send(self, *args: Any, **unsupported: NoReturn) -> Awaitable[None]:
        """Emit a ``message`` event with *args* to every socket of the namespace (awaiting is optional)."""
        if unsupported:
            raise unsupported_arguments("send", "message", unsupported)
        return self._operator().emit("message", *args)

    async def emit_with_ack(self, event: str, *args: Any) -> AckResponses:
        """Send *event* to every socket and collect their acknowledgements."""
        return await self._operator().emit_with_ack(event, *args)

    async def fetch_sockets(self) -> list[FetchedSocket]:
        """The sockets of the namespace, across the cluster with a cluster adapter."""
        return await self._operator().fetch_sockets()

    def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        """Make every socket of the namespace join *rooms*."""
        self._operator().sockets_join(*rooms)

    def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        """Make every socket of the namespace leave *rooms*."""
        self._operator().sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the namespace (and close their connections if *close*)."""
        self._operator().disconnect_sockets(close)

    @overload
    def on_server_side_emit(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def on_server_side_emit(self, event: str, handler: HandlerT) -> HandlerT: ...

    def on_server_side_emit(self, event: str, handler: Handler | None = None) -> Any:
        """Handle *event* sent by another server with :meth:`server_side_emit`; the
        handler gets the arguments, and its return value answers an ack request."""

        def register(fn: Handler) -> Handler:
            self._server_handlers[event] = fn
            return fn

        return register(handler) if handler is not None else register

    def server_side_emit(self, event: str, *args: Any, callback: Handler | None = None) -> None:
        """Send *event* to the other servers of the cluster.

        With *callback*, it is called once as ``callback(error, responses)`` with
        every other server's answer (``error`` set if some did not answer in time).
        """
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        self.adapter.server_side_emit([event, *args], callback)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """:meth:`server_side_emit` and wait for every other server's answer."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        def done(error: Exception | None, responses: list[Any]) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(responses)

        self.server_side_emit(event, *args, callback=done)
        return await future


class ParentNamespace(Namespace):
    """A dynamic namespace: matches names by regex or predicate and creates
    children that share its handlers and middleware."""

    def __init__(self, matcher: Pattern[str] | Callable[..., Any]) -> None:
        super().__init__(f"<dynamic {getattr(matcher, 'pattern', matcher)!r}>")
        self.matcher = matcher
        self.children: dict[str, Namespace] = {}

    async def matches(self, name: str, auth: dict[str, Any]) -> bool:
        if isinstance(self.matcher, re.Pattern):
            return self.matcher.fullmatch(name) is not None
        try:
            result = self.matcher(name, auth)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            log.exception("error in dynamic namespace matcher for %s", safe_repr(name))
            return False
        return bool(result)

    def create_child(self, name: str) -> Namespace:
        child = Namespace(name)
        child._bind(self.server)
        # Shared by reference: handlers added to the parent later apply to children.
        child._handlers = self._handlers
        child._any = self._any
        child._middlewares = self._middlewares
        child._method_handlers = self._method_handlers
        child._handler_for = self._handler_for  # type: ignore[method-assign]
        child._abandon_hooks = self._abandon_hooks
        child._connection_listeners = list(self._connection_listeners)  # copied, as the reference does
        child._parent = self
        self.children[name] = child
        return child

    def _remove_child(self, child: Namespace) -> None:
        """Forget an empty child (``cleanup_empty_child_namespaces``) and close its adapter."""
        if self.children.get(child.name) is not child:
            return
        del self.children[child.name]
        server = self.server
        if server._namespaces.get(child.name) is child:
            del server._namespaces[child.name]
        spawn(_close_adapter(child))

    def emit(self, event: str, *args: Any, callback: Handler | None = None, **unsupported: NoReturn) -> Awaitable[None]:
        """Send *event* to every socket of every child namespace."""
        if unsupported:
            raise unsupported_arguments("emit", event, unsupported)
        for child in list(self.children.values()):
            child.emit(event, *args, callback=callback)
        return DONE


async def _close_adapter(nsp: Namespace) -> None:
    try:
        await nsp.adapter.close()
    except Exception:
        log.exception("error closing the adapter of %s", safe_repr(nsp.name))
