"""A client's connection to one namespace: events, acks, rooms, middleware."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, overload

from .._logsafe import safe_repr
from .._typing import HandlerT, PacketMiddlewareT
from .._usercode import ack_args, call_user, spawn
from ..adapter import AckWaiter, BroadcastOptions
from ..engineio.codec import shared, uncompressed
from ..exceptions import AckTimeout, Disconnected
from ..recovery import RECOVERABLE_REASONS
from . import codec
from .broadcast import BroadcastOperator

if TYPE_CHECKING:
    from ..engineio.session import Session
    from .client import ClientProtocol as Client
    from .namespace import Namespace
    from .server import Server

log = logging.getLogger("tornad_io.socketio")

Handler = Callable[..., Any]


class Handshake:
    """What the client's connection request said (``socket.handshake``).

    ``headers`` (lower-case names), ``query``, ``auth``, ``address``, ``time``,
    ``issued`` (ms), ``secure``, ``xdomain``, ``url``. Read from the session's
    handshake record when asked, so an idle socket carries no copies.
    """

    __slots__ = ("_info", "auth")

    #: The names of the handshake's fields, in the order of the reference server.
    FIELDS = ("headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth")

    def __init__(self, client: Client, auth: dict[str, Any]) -> None:
        self._info = client.session.info
        #: The ``auth`` payload the client sent with its CONNECT packet (``{}`` if none).
        self.auth: dict[str, Any] = auth

    @property
    def headers(self) -> dict[str, str]:
        """The request headers of the handshake, with lower-case names."""
        return self._info.headers

    @property
    def issued(self) -> int:
        """When the handshake happened, in milliseconds since the epoch."""
        return self._info.issued

    @property
    def time(self) -> str:
        """When the handshake happened, as the reference server writes it (``Tue Nov 24 2026 …``)."""
        moment = datetime.datetime.fromtimestamp(self._info.issued / 1000, datetime.timezone.utc)
        return moment.strftime("%a %b %d %Y %H:%M:%S GMT+0000")

    @property
    def address(self) -> str:
        """The client's address (from ``X-Forwarded-For`` only behind a trusted proxy)."""
        return self._info.address

    @property
    def xdomain(self) -> bool:
        """Whether the request came from another origin."""
        return self._info.xdomain

    @property
    def secure(self) -> bool:
        """Whether the connection used TLS."""
        return self._info.secure

    @property
    def url(self) -> str:
        """The URL of the handshake request."""
        return self._info.url

    @property
    def query(self) -> dict[str, str]:
        """The query parameters of the handshake request."""
        return self._info.query

    def as_dict(self) -> dict[str, Any]:
        """The handshake as plain data (what a remote-socket proxy carries)."""
        return {name: getattr(self, name) for name in self.FIELDS}


class _PendingAck:
    """A server→client acknowledgement being waited for."""

    __slots__ = ("callback", "future", "timer")

    def __init__(
        self,
        callback: Callable[..., Any] | None,
        future: asyncio.Future[Any] | None,
        timer: asyncio.TimerHandle | None,
    ) -> None:
        self.callback = callback
        self.future = future
        self.timer = timer

    def __call__(self, *args: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.future is not None:
            if not self.future.done():
                self.future.set_result(args)
        elif self.callback is not None:
            self.callback(*args)

    def gone(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.future is not None and not self.future.done():
            self.future.set_exception(Disconnected("socket has been disconnected"))


class Socket:
    """One client on one namespace (``socket.id`` is its own room).

    Handlers get it as their first argument. It emits to its client
    (:meth:`emit`, :meth:`emit_with_ack`), listens to it (:meth:`on`,
    :meth:`on_any`), joins and leaves rooms, and starts broadcasts that leave
    it out (:meth:`to`, :attr:`broadcast`).

    To an adapter it is a :class:`~tornad_io.adapter.Recipient`
    (:attr:`encoding`, :meth:`encode_packet`, :meth:`write_packets`,
    :meth:`notify_outgoing`, :attr:`supports_acks`, :meth:`expect_ack`):
    applications do not need those.
    """

    __slots__ = (
        "id",
        "nsp",
        "client",
        "handshake",
        "data",
        "connected",
        "encoding",
        "supports_recovery",
        "pid",
        "recovered",
        "_acks",
        "_handlers",
        "_any",
        "_any_outgoing",
        "_middlewares",
        "_held",
        "__weakref__",
    )

    def __init__(self, nsp: Namespace, client: Client, auth: dict[str, Any]) -> None:
        from ..engineio.server import Engine

        #: The socket's id: random, and a room holding only this socket.
        self.id: str = Engine.generate_id()
        #: The :class:`~tornad_io.Namespace` the socket belongs to.
        self.nsp = nsp
        #: The connection underneath (one per client, shared by its namespaces).
        self.client = client
        #: What the client's connection request said (a :class:`Handshake`).
        self.handshake = Handshake(client, auth)
        #: Free per-socket storage for the application.
        self.data: dict[str, Any] = {}
        #: Whether the socket is connected to its namespace.
        self.connected = False
        #: Which encoding the client reads (its generation and the server's parser; a client
        #: class without ``encoding`` has one wire format, named by its generation): an adapter
        #: encodes a broadcast once per encoding among its recipients (see
        #: :class:`~tornad_io.adapter.Recipient`). An attribute rather than a property: a
        #: broadcast reads it once per recipient.
        self.encoding: Hashable = getattr(client, "encoding", client.generation)
        #: Whether the client can recover its session (and reads offsets): v5 clients.
        self.supports_recovery: bool = client.supports_recovery
        #: The private id a client presents to recover this socket (connection state
        #: recovery on, and a client that supports it); None otherwise.
        self.pid: str | None = Engine.generate_id() if self.supports_recovery and nsp.server.options.recovery else None
        #: Whether this socket is a recovered one: same id, rooms and ``data`` as before
        #: the client's connection dropped, and the packets it missed delivered.
        self.recovered = False
        self._acks: dict[int, AckWaiter] = {}
        self._handlers: dict[Any, list[Handler]] | None = None
        self._any: list[Handler] | None = None
        self._any_outgoing: list[Handler] | None = None
        self._middlewares: list[Handler] | None = None
        # Output held while the connect handler decides (see Namespace._add).
        self._held: list[tuple[list[str | bytes], bool]] | None = None

    def __repr__(self) -> str:
        return f"<Socket {self.id} nsp={self.nsp.name!r}>"

    # -- properties ------------------------------------------------------------

    @property
    def server(self) -> Server:
        """The :class:`~tornad_io.Server` this socket belongs to."""
        return self.nsp.server

    @property
    def rooms(self) -> set[str]:
        """The rooms the socket is in (a copy), its own id included."""
        return set(self.nsp.adapter.socket_rooms(self.id) or ())

    @property
    def disconnected(self) -> bool:
        """Whether the socket is no longer connected (``not connected``)."""
        return not self.connected

    @property
    def transport(self) -> str:
        """The name of the transport carrying the socket now."""
        return self.client.session.transport.name

    @property
    def conn(self) -> Session:
        """The Engine.IO connection underneath (the reference's ``socket.conn``), shared by the
        client's namespaces.

        ``conn.transport.name`` is the transport carrying it now; its events
        (``conn.on("upgrade", listener)``, ``packet``, ``packet_create``,
        ``drain``, ``close``, …) are listed on
        :class:`~tornad_io.engineio.session.Session`.
        """
        return self.client.session

    @property
    def supports_acks(self) -> bool:
        """Whether the client can acknowledge (a Socket.IO 0.6 client cannot)."""
        return self.client.supports_acks

    # -- listeners ------------------------------------------------------------------

    @overload
    def on(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def on(self, event: str, handler: HandlerT) -> HandlerT: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Listen to *event* from this client; usable as a decorator.

        The handler gets the event's arguments (not the socket); its return
        value is the acknowledgement when the client asked for one. A socket's
        own listeners take the event before the namespace's handler; the
        ``error`` event gets what a per-packet middleware raised.
        """

        def register(fn: Handler) -> Handler:
            if self._handlers is None:
                self._handlers = {}
            self._handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    @overload
    def once(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def once(self, event: str, handler: HandlerT) -> HandlerT: ...

    def once(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`on`, for the next *event* only; usable as a decorator."""

        def register(fn: Handler) -> Handler:
            self.on(event, _OnceHandler(self, event, fn))
            return fn

        return register(handler) if handler is not None else register

    def off(self, event: str, handler: Handler | None = None) -> None:
        """Stop listening (one handler, also one added with :meth:`once`, or all of *event*)."""
        if self._handlers is None or event not in self._handlers:
            return
        if handler is None:
            del self._handlers[event]
        else:
            self._handlers[event] = [
                h for h in self._handlers[event] if h is not handler and getattr(h, "handler", None) is not handler
            ]

    def listeners(self, event: str) -> list[Handler]:
        """The socket's own handlers of *event* (added with :meth:`on` or :meth:`once`), in calling order."""
        handlers = self._handlers.get(event, ()) if self._handlers else ()
        return [h.handler if isinstance(h, _OnceHandler) else h for h in handlers]

    def remove_all_listeners(self, event: str | None = None) -> None:
        """Remove the socket's own handlers of *event*, or of every event (the namespace's stay)."""
        if event is None:
            self._handlers = None
        else:
            self.off(event)

    def on_any(self, handler: HandlerT) -> HandlerT:
        """Listen to every incoming event: ``handler(event, *args)``.

        As in the reference, catch-all listeners see an event when it arrives,
        before the per-packet middleware (:meth:`use`) decides whether it is
        handled.
        """
        if self._any is None:
            self._any = []
        self._any.append(handler)
        return handler

    def prepend_any(self, handler: HandlerT) -> HandlerT:
        """Like :meth:`on_any`, called before the others."""
        if self._any is None:
            self._any = []
        self._any.insert(0, handler)
        return handler

    def off_any(self, handler: Handler | None = None) -> None:
        """Remove one catch-all listener, or all."""
        if self._any is not None:
            self._any = [h for h in self._any if h is not handler] if handler else None

    def listeners_any(self) -> list[Handler]:
        """The catch-all listeners of incoming events, in calling order."""
        return list(self._any or ())

    def on_any_outgoing(self, handler: HandlerT) -> HandlerT:
        """Listen to every event sent to this client: ``handler(event, *args)``."""
        if self._any_outgoing is None:
            self._any_outgoing = []
        self._any_outgoing.append(handler)
        return handler

    def prepend_any_outgoing(self, handler: HandlerT) -> HandlerT:
        """Like :meth:`on_any_outgoing`, called before the others."""
        if self._any_outgoing is None:
            self._any_outgoing = []
        self._any_outgoing.insert(0, handler)
        return handler

    def off_any_outgoing(self, handler: Handler | None = None) -> None:
        """Remove one outgoing catch-all listener, or all."""
        if self._any_outgoing is not None:
            self._any_outgoing = [h for h in self._any_outgoing if h is not handler] or None if handler else None

    def listeners_any_outgoing(self) -> list[Handler]:
        """The catch-all listeners of outgoing events, in calling order."""
        return list(self._any_outgoing or ())

    def use(self, middleware: PacketMiddlewareT) -> PacketMiddlewareT:
        """Add a per-packet middleware: ``middleware(packet)`` with
        ``packet = [event, *args]``; raising refuses the packet (the error goes
        to this socket's ``error`` listeners)."""
        if self._middlewares is None:
            self._middlewares = []
        self._middlewares.append(middleware)
        return middleware

    # -- emitting --------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Handler | None = None) -> bool:
        """Send *event* with *args* to this client; *callback* gets the client's acknowledgement.

        Returns False if the socket is no longer connected (nothing is sent).
        """
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        return self._emit(event, args, callback, None, False)

    def send(self, *args: Any, callback: Handler | None = None) -> bool:
        """Emit a ``message`` event with *args* to this client."""
        return self._emit("message", args, callback, None, False)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Send *event* and wait for the client's acknowledgement.

        Returns its argument (a tuple if it sent several, None if none).
        Raises :class:`AckTimeout` after *timeout* seconds, or
        :class:`Disconnected` if the socket goes first.
        """
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._emit(event, args, None, future, False, timeout)
        result = await future
        if not result:
            return None
        return result[0] if len(result) == 1 else result

    def timeout(self, seconds: float) -> _TimedEmitter:
        """``socket.timeout(5).emit(ev, ..., callback=cb)``: *cb* gets
        ``(error, *args)``; ``emit_with_ack`` raises :class:`AckTimeout`."""
        return _TimedEmitter(self, seconds)

    @property
    def volatile(self) -> _VolatileEmitter:
        """Emit that is dropped if the client cannot take it right now."""
        return _VolatileEmitter(self)

    def compress(self, compress: bool = True) -> _CompressEmitter:
        """``socket.compress(False).emit(...)``: whether that packet may be compressed.

        Only matters on a WebSocket with permessage-deflate on
        (``per_message_deflate``): with ``False`` the message goes as a plain frame.
        """
        return _CompressEmitter(self, compress)

    def _emit(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Handler | None,
        future: asyncio.Future[Any] | None,
        volatile: bool,
        timeout: float | None = None,
        on_timeout: Handler | None = None,
        compress: bool = True,
    ) -> bool:
        if not self.connected:
            if future is not None:
                future.set_exception(Disconnected("socket is not connected"))
            return False
        data = [event, *args]
        ack_id = None
        if callback is not None or future is not None:
            ack_id = self.nsp.next_ack_id()
            timer = None
            if timeout is not None:
                timer = asyncio.get_running_loop().call_later(timeout, self._ack_timed_out, ack_id, on_timeout, future)
            self._acks[ack_id] = _PendingAck(callback, future, timer)
        if self.pid is not None:
            # As in the reference, through the adapter: an emit without ack that is not volatile gets
            # an offset and is kept for recovery, and every emit keeps its place among broadcasts (an
            # adapter that publishes before it delivers may hold those back).
            self.nsp.adapter.broadcast(
                codec.Packet(codec.EVENT, self.nsp.name, data, ack_id),
                BroadcastOptions(
                    rooms=frozenset((self.id,)), local=True, volatile=volatile, socket_emit=True, compress=compress
                ),
            )
            return True
        if self._any_outgoing:
            self.notify_outgoing(data)
        packets = self.client.encode(codec.EVENT, self.nsp.name, data, ack_id)
        self._write_engine(packets if compress else uncompressed(packets), volatile)
        return True

    def _ack_timed_out(self, ack_id: int, callback: Handler | None, future: asyncio.Future[Any] | None) -> None:
        if self._acks.pop(ack_id, None) is None:
            return
        error = AckTimeout("operation has timed out")
        if future is not None:
            if not future.done():
                future.set_exception(error)
        elif callback is not None:
            call_user(callback, (error,), "ack timeout", self.id)

    # -- the adapter seam (tornad_io.adapter.Recipient) ---------------------------

    def encode_packet(self, packet: codec.Packet) -> list[str | bytes]:
        """*packet* encoded for this socket's client, marked as shared by every recipient
        of the same :attr:`encoding` (their transports build its wire form once)."""
        return shared(self.client.encode(packet.type, packet.nsp, packet.data, packet.id))

    def write_packets(self, packets: list[str | bytes], volatile: bool = False) -> None:
        """Send packets encoded for this socket's :attr:`encoding` to the client.

        With *volatile*, they are dropped if the client cannot take them at
        once. While the ``connect`` handler decides, output waits and follows
        the CONNECT packet.
        """
        if not packets:
            return
        if self._held is not None:
            self._held.append((packets, volatile))
            return
        session = self.client.session
        if volatile or len(packets) > 1:
            session.send(packets, volatile)
        else:
            session.send_one(packets[0])

    _write_engine = write_packets

    def notify_outgoing(self, data: list[Any]) -> None:
        """Call the outgoing listeners (:meth:`on_any_outgoing`) with ``[event, *args]`` being sent."""
        if self._any_outgoing:
            for listener in list(self._any_outgoing):
                call_user(listener, data, "outgoing listener", self.id)

    def expect_ack(self, ack_id: int, waiter: AckWaiter) -> None:
        """Call *waiter* with the client's acknowledgement of packet *ack_id*, or
        ``waiter.gone()`` if the socket disconnects first."""
        self._acks[ack_id] = waiter

    # -- rooms -------------------------------------------------------------------

    def join(self, rooms: str | Iterable[str]) -> None:
        """Join one room or several."""
        self.nsp.adapter.add_all(self.id, [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, rooms: str | Iterable[str]) -> None:
        """Leave one room or several (the shapes :meth:`join` takes)."""
        adapter = self.nsp.adapter
        if isinstance(rooms, str):
            adapter.delete(self.id, rooms)
            return
        for room in list(rooms):
            adapter.delete(self.id, room)

    def _broadcaster(self) -> BroadcastOperator:
        return BroadcastOperator(self.nsp.adapter, BroadcastOptions(except_rooms=frozenset((self.id,))))

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Everyone in *rooms* but this socket."""
        return self._broadcaster().to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Everyone but this socket and the sockets in *rooms*."""
        return self._broadcaster().except_(*rooms)

    @property
    def broadcast(self) -> BroadcastOperator:
        """Everyone in the namespace but this socket."""
        return self._broadcaster()

    # -- disconnecting ---------------------------------------------------------------

    def disconnect(self, close: bool = False) -> None:
        """Disconnect from this namespace; with *close*, close the whole connection."""
        if not self.connected:
            return
        if close or not self.client.multiplexed:
            self.client.disconnect_all()
            return
        self._write_engine(self.client.encode(codec.DISCONNECT, self.nsp.name))
        self._on_close("server namespace disconnect")

    # -- incoming ----------------------------------------------------------------

    def _on_packet(self, packet: codec.Packet) -> None:
        ptype = packet.type
        if ptype == codec.EVENT or ptype == codec.BINARY_EVENT:
            self._on_event(packet.data, packet.id)
        elif ptype == codec.ACK or ptype == codec.BINARY_ACK:
            ack = self._acks.pop(packet.id, None)  # type: ignore[arg-type]
            if ack is not None:
                try:
                    ack(*packet.data)
                except Exception:
                    log.exception("error in ack callback (socket %s)", self.id)
        elif ptype == codec.DISCONNECT:
            self._on_close("client namespace disconnect")

    def _on_event(self, data: list[Any], ack_id: int | None) -> None:
        if self._any:
            # Before the packet middleware, as in the reference.
            for listener in list(self._any):
                call_user(listener, data, "catch-all listener", self.id)
        if self._middlewares:
            spawn(self._run_middlewares(data, ack_id))
            return
        self._dispatch(data, ack_id)

    async def _run_middlewares(self, data: list[Any], ack_id: int | None) -> None:
        for middleware in list(self._middlewares or ()):
            try:
                result = middleware(data)
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                self._emit_error(error)
                return
        if self.connected:
            self._dispatch(data, ack_id)

    def _emit_error(self, error: Exception) -> None:
        handlers = (self._handlers or {}).get("error")
        if not handlers:
            log.warning("packet refused by middleware (socket %s): %s", self.id, safe_repr(str(error)))
        for handler in list(handlers or ()):
            call_user(handler, (error,), "error", self.id)

    def _dispatch(self, data: list[Any], ack_id: int | None) -> None:
        event = data[0]
        args = data[1:]
        on_result = self._acker(ack_id, event) if ack_id is not None else None
        handlers = self._handlers.get(event) if self._handlers else None
        if handlers:
            for handler in list(handlers):
                call_user(handler, args, str(event), self.id, on_result)
                on_result = None  # only the first handler acknowledges
            return
        nsp_handler = self.nsp._handler_for(event)
        if nsp_handler is not None:
            call_user(nsp_handler, (self, *args), str(event), self.id, on_result)
        elif self.nsp._any:
            for listener in list(self.nsp._any):
                call_user(listener, (self, *data), "catch-all listener", self.id, on_result)
                on_result = None

    def _acker(self, ack_id: int, event: Any = None) -> Callable[[Any], None]:
        def send_ack(result: Any) -> None:
            if not self.connected:
                return
            try:
                packets = self.client.encode(codec.ACK, self.nsp.name, ack_args(result), ack_id)
            except (TypeError, ValueError, RecursionError) as error:
                # The handler's fault, not the client's: this one answer is lost, nothing else.
                log.error(
                    "cannot encode the acknowledgement of event %s (socket %s), none sent: %s",
                    safe_repr(event),
                    self.id,
                    safe_repr(str(error)),
                )
                return
            self._write_engine(packets)

        return send_ack

    def _on_close(self, reason: str, description: Any = None) -> None:
        if not self.connected:
            return
        self.nsp._fire(self, "disconnecting", reason, description)
        self.connected = False
        if self.pid is not None and reason in RECOVERABLE_REASONS:
            rooms = self.nsp.adapter.socket_rooms(self.id) or ()
            self.nsp.adapter.persist_session(self.id, self.pid, list(rooms), self.data)
        self.nsp._remove(self)
        self.client._remove(self)
        acks, self._acks = self._acks, {}
        for ack in acks.values():
            ack.gone()
        self.nsp._fire(self, "disconnect", reason, description)


class _OnceHandler:
    """A socket handler added with :meth:`Socket.once`: removes itself before its first call."""

    __slots__ = ("socket", "event", "handler")

    def __init__(self, socket: Socket, event: str, handler: Handler) -> None:
        self.socket = socket
        self.event = event
        self.handler = handler

    def __call__(self, *args: Any) -> Any:
        self.socket.off(self.event, self)
        return self.handler(*args)


class _TimedEmitter:
    __slots__ = ("socket", "seconds")

    def __init__(self, socket: Socket, seconds: float) -> None:
        self.socket = socket
        self.seconds = seconds

    def emit(self, event: str, *args: Any, callback: Handler | None = None) -> bool:
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if callback is None:
            return self.socket._emit(event, args, None, None, False)
        user = callback

        def answered(*ack: Any) -> None:
            user(None, *ack)

        return self.socket._emit(event, args, answered, None, False, self.seconds, user)

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        return await self.socket.emit_with_ack(event, *args, timeout=self.seconds)


class _CompressEmitter:
    __slots__ = ("socket", "compress")

    def __init__(self, socket: Socket, compress: bool) -> None:
        self.socket = socket
        self.compress = compress

    def emit(self, event: str, *args: Any, callback: Handler | None = None) -> bool:
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        return self.socket._emit(event, args, callback, None, False, compress=self.compress)


class _VolatileEmitter:
    __slots__ = ("socket",)

    def __init__(self, socket: Socket) -> None:
        self.socket = socket

    def emit(self, event: str, *args: Any) -> bool:
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        return self.socket._emit(event, args, None, None, True)
