"""Who is in which room, and delivery to many: the in-memory adapter, and the adapter seam.

The interface follows Node's ``socket.io-adapter`` so a cluster adapter is a
subclass: rooms index (:meth:`Adapter.add_all`, :meth:`Adapter.delete`,
:meth:`Adapter.del_all`), delivery (:meth:`Adapter.broadcast`,
:meth:`Adapter.broadcast_with_ack`) and the bulk operations on a room
selection (sockets, fetch, join, leave, disconnect, server-side emit).

An adapter reaches the sockets it delivers to through :class:`Recipient`, a
small public interface that :class:`~tornad_io.Socket` offers, and asks its
namespace for acknowledgement ids and server-side handlers
(:meth:`Namespace.next_ack_id <tornad_io.Namespace.next_ack_id>`,
:meth:`Namespace.server_side_handler <tornad_io.Namespace.server_side_handler>`):
see :class:`Adapter` for the whole contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Protocol

from .engineio.codec import uncompressed
from .events import EventEmitter
from .socketio import codec

if TYPE_CHECKING:
    from .recovery import RestoredSession
    from .socketio.namespace import Namespace
    from .socketio.socket import Handshake, Socket

__all__ = [
    "AckWaiter",
    "Adapter",
    "AdapterFactory",
    "BroadcastOptions",
    "FetchedSocket",
    "Recipient",
    "RemoteHandshake",
]

#: What ``Server(adapter=...)`` takes: anything that builds the adapter of a
#: namespace from the namespace, such as the :class:`Adapter` class itself, a
#: subclass, or the factory that :func:`tornad_io.cluster.redis_adapter` returns.
AdapterFactory = Callable[["Namespace"], "Adapter"]


class RemoteHandshake(dict[str, Any]):
    """The handshake of a socket on another server, as the cluster carried it.

    A dict (``handshake["auth"]``) that also reads like a local
    :class:`~tornad_io.Handshake` (``handshake.auth``); a field the other
    server did not send reads as empty.
    """

    @property
    def headers(self) -> dict[str, str]:
        """The request headers of the handshake."""
        return self.get("headers") or {}

    @property
    def query(self) -> dict[str, str]:
        """The query parameters of the handshake."""
        return self.get("query") or {}

    @property
    def auth(self) -> dict[str, Any]:
        """The ``auth`` payload the client sent with its CONNECT packet."""
        return self.get("auth") or {}

    @property
    def address(self) -> str:
        """The client's address."""
        return str(self.get("address", ""))

    @property
    def time(self) -> str:
        """When the handshake happened, as the reference server writes it."""
        return str(self.get("time", ""))

    @property
    def issued(self) -> int:
        """When the handshake happened, in milliseconds since the epoch."""
        return int(self.get("issued") or 0)

    @property
    def secure(self) -> bool:
        """Whether the connection used TLS."""
        return bool(self.get("secure"))

    @property
    def xdomain(self) -> bool:
        """Whether the request came from another origin."""
        return bool(self.get("xdomain"))

    @property
    def url(self) -> str:
        """The URL of the handshake request."""
        return str(self.get("url", ""))


class FetchedSocket(Protocol):
    """A socket as ``fetch_sockets()`` returns it: a local :class:`~tornad_io.Socket`
    or a :class:`~tornad_io.cluster.RemoteSocket` on another server of the cluster.

    Both carry what the socket was when fetched (id, rooms, data, handshake)
    and reach it through the adapter (emit, join, leave, disconnect). For a
    remote socket, ``data`` and ``rooms`` are copies: changing them changes
    nothing on the other server.
    """

    @property
    def id(self) -> str:
        """The socket's id (also a room that holds only this socket)."""

    @property
    def rooms(self) -> set[str]:
        """The rooms the socket is in, its own id included."""

    @property
    def data(self) -> Any:
        """The application's data stored on the socket (``socket.data``)."""

    @property
    def handshake(self) -> Handshake | RemoteHandshake:
        """What the client's connection request said."""

    def emit(self, event: str, /, *args: Any) -> bool:
        """Send *event* with *args* to this socket's client."""

    def join(self, rooms: str | Iterable[str]) -> None:
        """Make the socket join one room or several."""

    def leave(self, room: str) -> None:
        """Make the socket leave *room*."""

    def disconnect(self, close: bool = False) -> None:
        """Disconnect the socket (and its whole connection if *close*)."""


class AckWaiter(Protocol):
    """What :meth:`Recipient.expect_ack` registers: the wait for one client's acknowledgement.

    Exactly one of the two is called, once: the waiter itself with the
    arguments the client acknowledged with, or :meth:`gone` when the socket
    disconnects (or is refused) first.
    """

    def __call__(self, *args: Any) -> None:
        """The client acknowledged with *args*."""

    def gone(self) -> None:
        """The socket went before acknowledging."""


class Recipient(Protocol):
    """What an adapter uses of a local socket to deliver to it (:class:`~tornad_io.Socket` offers it).

    This is Node's ``socket.client.writeToEngine`` shape: the adapter encodes
    a packet once per :attr:`encoding` among its recipients (with
    :meth:`encode_packet` on the first of each), then hands the same encoded
    packets to every recipient of that encoding with :meth:`write_packets`,
    after :meth:`notify_outgoing`. For a packet that asks for
    acknowledgements, the adapter takes the packet's id from
    :meth:`Namespace.next_ack_id <tornad_io.Namespace.next_ack_id>` and
    registers a waiter on each recipient that :attr:`supports_acks`.
    """

    @property
    def id(self) -> str:
        """The socket's id (also a room that holds only this socket)."""

    @property
    def encoding(self) -> Hashable:
        """Which encoding the socket's client reads: its protocol generation and, for v5
        clients, the server's parser (a :class:`~tornad_io.socketio.parsers.Encoding`).

        Recipients with equal encodings take the same encoded packets.
        """

    @property
    def supports_acks(self) -> bool:
        """Whether the socket's client can acknowledge (a Socket.IO 0.6 client cannot)."""

    def encode_packet(self, packet: codec.Packet) -> list[str | bytes]:
        """*packet* as the encoded Engine.IO packets of this socket's encoding.

        The result is marked as shared, so that the transports of every
        recipient it is written to build its wire form once.
        """

    def write_packets(self, packets: list[str | bytes], volatile: bool = False) -> None:
        """Send packets encoded for this socket's :attr:`encoding` to its client.

        With *volatile*, they are dropped if the client cannot take them at
        once. Output to a socket whose ``connect`` handler is still deciding
        waits, and follows the CONNECT packet.
        """

    def notify_outgoing(self, data: list[Any]) -> None:
        """Tell the socket's outgoing listeners (``on_any_outgoing``) that ``[event, *args]`` is sent.

        Does nothing (and costs almost nothing) when there are none.
        """

    def expect_ack(self, ack_id: int, waiter: AckWaiter) -> None:
        """Call *waiter* when the client acknowledges packet *ack_id*, or its
        :meth:`~AckWaiter.gone` if the socket goes first."""


class BroadcastOptions:
    """Which sockets a broadcast reaches, and how: what the adapter gets from a
    :class:`~tornad_io.BroadcastOperator` chain."""

    __slots__ = ("rooms", "except_rooms", "volatile", "compress", "local", "timeout", "socket_emit")

    def __init__(
        self,
        rooms: frozenset[str] = frozenset(),
        except_rooms: frozenset[str] = frozenset(),
        volatile: bool = False,
        compress: bool = True,
        local: bool = False,
        timeout: float | None = None,
        socket_emit: bool = False,
    ) -> None:
        #: The rooms selected (any of them); empty means every socket.
        self.rooms = rooms
        #: The rooms whose sockets are left out.
        self.except_rooms = except_rooms
        #: Drop the packet for clients that cannot take it right now.
        self.volatile = volatile
        #: Whether the packet may be compressed.
        self.compress = compress
        #: Only this server's sockets (no cluster traffic).
        self.local = local
        #: Seconds to wait for acknowledgements, or None for no limit.
        self.timeout = timeout
        #: Set by :meth:`Socket.emit <tornad_io.Socket.emit>` when connection state recovery
        #: is on: the packet goes to that one socket of this server (so ``local`` is set too)
        #: and passes through the adapter only to get an offset. An adapter whose packet log
        #: is shared by the cluster (Redis Streams) still writes it there, as the reference
        #: does with a socket's own emits, so that another server can replay it.
        self.socket_emit = socket_emit


class Adapter(EventEmitter):
    """In-memory rooms and delivery for one namespace on one process.

    The server builds one per namespace (``adapter(namespace)``). A custom or
    cluster adapter subclasses it and overrides what goes beyond one process
    (the delivery and bulk methods); the rooms index stays local.

    **The adapter seam.** Everything an adapter needs is public, so a custom
    adapter never reaches into a socket or a namespace:

    - its own rooms index (:attr:`rooms`, :attr:`sids`) and :meth:`select`,
      which turns :class:`BroadcastOptions` into the local sockets they pick;
    - the namespace (:attr:`nsp`): its local sockets by id
      (:attr:`Namespace.sockets <tornad_io.Namespace.sockets>`), the id of a
      packet that asks for acknowledgements (:meth:`Namespace.next_ack_id
      <tornad_io.Namespace.next_ack_id>`) and the handler of an event another
      server sent (:meth:`Namespace.server_side_handler
      <tornad_io.Namespace.server_side_handler>`);
    - each socket as a :class:`~tornad_io.adapter.Recipient`: ``encoding`` and ``encode_packet``
      to encode once per encoding, ``notify_outgoing`` and ``write_packets``
      to deliver, ``supports_acks`` and ``expect_ack`` to wait for
      acknowledgements; and, for the bulk operations, what a socket offers as
      a :class:`~tornad_io.FetchedSocket` (``join``, ``leave``, ``disconnect``).

    :meth:`broadcast` and :meth:`broadcast_with_ack` below use nothing else;
    they are the reference for how the pieces go together.

    **Room events.** The rooms index tells listeners (``adapter.on(event,
    listener)``, see :class:`~tornad_io.events.EventEmitter`) what changes, with
    the reference adapter's names and arguments: ``create-room`` (room) when a
    room gets its first socket, ``join-room`` (room, socket id), ``leave-room``
    (room, socket id), and ``delete-room`` (room) when its last socket leaves.
    A socket's own room counts (it is joined on connect, left on disconnect).
    """

    def __init__(self, nsp: Namespace) -> None:
        super().__init__()
        #: The namespace this adapter serves.
        self.nsp = nsp
        #: Room → ids of the sockets in it.
        self.rooms: dict[str, set[str]] = {}
        #: Socket id → the rooms it is in.
        self.sids: dict[str, set[str]] = {}

    async def init(self) -> None:
        """Start whatever the adapter needs (nothing in memory)."""

    async def close(self) -> None:
        """Stop the adapter."""

    async def server_count(self) -> int:
        """How many servers share this namespace (1 in memory)."""
        return 1

    # -- rooms index -------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        """Put socket *sid* in every room of *rooms*."""
        own = self.sids.get(sid)
        if own is None:
            own = self.sids[sid] = set()
        if self._events is not None:
            self._add_all_telling(sid, own, rooms)
            return
        for room in rooms:
            own.add(room)
            members = self.rooms.get(room)
            if members is None:
                self.rooms[room] = {sid}
            else:
                members.add(sid)

    def _add_all_telling(self, sid: str, own: set[str], rooms: Iterable[str]) -> None:
        """:meth:`add_all` with room listeners: the reference adapter's events, in its order."""
        for room in rooms:
            own.add(room)
            members = self.rooms.get(room)
            if members is None:
                members = self.rooms[room] = set()
                self.fire("create-room", room)
            if sid not in members:
                members.add(sid)
                self.fire("join-room", room, sid)

    def delete(self, sid: str, room: str) -> None:
        """Take socket *sid* out of *room*."""
        own = self.sids.get(sid)
        if own is not None:
            own.discard(room)
        if self._events is not None:
            self._leave_telling(sid, room)
            return
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def _leave_telling(self, sid: str, room: str) -> None:
        """Take *sid* out of *room* with room listeners: ``leave-room``, then ``delete-room`` if it emptied."""
        members = self.rooms.get(room)
        if members is None:
            return
        if sid in members:
            members.discard(sid)
            self.fire("leave-room", room, sid)
        if not members and self.rooms.get(room) is members:
            del self.rooms[room]
            self.fire("delete-room", room)

    def del_all(self, sid: str) -> None:
        """Take socket *sid* out of every room."""
        own = self.sids.pop(sid, None)
        if not own:
            return
        if self._events is not None:
            for room in list(own):
                self._leave_telling(sid, room)
            return
        for room in own:
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

    def socket_rooms(self, sid: str) -> set[str] | None:
        """The rooms socket *sid* is in, or None if it is unknown."""
        return self.sids.get(sid)

    # -- delivery --------------------------------------------------------------

    def select(self, opts: BroadcastOptions) -> list[Socket]:
        """The local sockets that *opts* picks: in any of ``opts.rooms`` (every
        socket if empty) and in none of ``opts.except_rooms``, each once."""
        sockets = self.nsp.sockets
        excluded: set[str] = set()
        for room in opts.except_rooms:
            members = self.rooms.get(room)
            if members:
                excluded.update(members)
        if not opts.rooms:
            if not excluded:
                return list(sockets.values())
            return [socket for sid, socket in sockets.items() if sid not in excluded]
        if len(opts.rooms) == 1 and not excluded:  # one room (the common case): no dedup needed
            members = self.rooms.get(next(iter(opts.rooms)))
            if not members:
                return []
            return [socket for socket in map(sockets.get, members) if socket is not None]
        selected: list[Socket] = []
        seen: set[str] = set()
        for room in opts.rooms:
            members = self.rooms.get(room)
            if not members:
                continue
            for sid in members:
                if sid in seen or sid in excluded:
                    continue
                seen.add(sid)
                socket = sockets.get(sid)
                if socket is not None:
                    selected.append(socket)
        return selected

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        """Deliver *packet* to the selected sockets, encoded once per encoding.

        Every recipient of one encoding gets the same encoded list, so its
        transport can reuse the wire form built for the first.
        """
        # The loop is written out (no helper generator): a generator step and a tuple per
        # recipient were a measurable share of a broadcast to a thousand sockets.
        volatile = opts.volatile
        data = packet.data
        encoded: dict[Hashable, list[str | bytes]] = {}
        for socket in self.select(opts):
            packets = encoded.get(socket.encoding)
            if packets is None:
                packets = encoded[socket.encoding] = socket.encode_packet(packet)
                if not opts.compress:
                    packets = encoded[socket.encoding] = uncompressed(packets)
            socket.notify_outgoing(data)
            socket.write_packets(packets, volatile)

    def broadcast_with_ack(
        self,
        packet: codec.Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Deliver *packet* asking each recipient for an acknowledgement.

        *client_count* learns how many sockets were reached; *on_ack* gets
        ``(socket id, first argument of the ack)`` per answer, and *on_gone* the id of
        a recipient that disconnected without answering. Returns the ids reached.
        """
        packet.id = self.nsp.next_ack_id()
        volatile = opts.volatile
        data = packet.data
        encoded: dict[Hashable, list[str | bytes]] = {}
        reached: list[str] = []
        for socket in self.select(opts):
            packets = encoded.get(socket.encoding)
            if packets is None:
                packets = encoded[socket.encoding] = socket.encode_packet(packet)
                if not opts.compress:
                    packets = encoded[socket.encoding] = uncompressed(packets)
            if socket.supports_acks:
                socket.expect_ack(packet.id, _BroadcastAck(socket.id, on_ack, on_gone))
                reached.append(socket.id)
            socket.notify_outgoing(data)
            socket.write_packets(packets, volatile)
        client_count(len(reached))
        return reached

    # -- connection state recovery ----------------------------------------------

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """Keep a disconnected socket's session for recovery (nothing in this adapter).

        Called when a socket with a private id (connection state recovery on)
        disconnects for a recoverable reason. :class:`tornad_io.recovery.RecoveringAdapter`
        keeps it in memory.
        """

    async def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        """The session of private id *pid*, with the packets it missed after *offset*.

        None when there is nothing to restore (always, in this adapter): the
        client then gets a fresh socket.
        """
        return None

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        """Ids of the sockets in any of *rooms* (all sockets if empty)."""
        return {socket.id for socket in self.select(BroadcastOptions(rooms=frozenset(rooms)))}

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[FetchedSocket]:
        """The sockets a selection matches (local ones only in memory)."""
        return list(self.select(opts))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the selected sockets join *rooms*."""
        rooms = list(rooms)
        for socket in self.select(opts):
            socket.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the selected sockets leave *rooms*."""
        rooms = list(rooms)
        for socket in self.select(opts):
            for room in rooms:
                socket.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the selected sockets (and their connection if *close*)."""
        for socket in self.select(opts):
            socket.disconnect(close)

    def server_side_emit(self, args: list[Any], on_ack: Callable[..., None] | None = None) -> None:
        """Send an event to the other servers of the cluster (none in memory)."""
        if on_ack is not None:
            on_ack(None, [])


class _BroadcastAck:
    """One recipient's pending answer to a broadcast with acknowledgement."""

    __slots__ = ("sid", "on_ack", "on_gone")

    def __init__(
        self,
        sid: str,
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None,
    ) -> None:
        self.sid = sid
        self.on_ack = on_ack
        self.on_gone = on_gone

    def __call__(self, *args: Any) -> None:
        self.on_ack(self.sid, args[0] if args else None)

    def gone(self) -> None:
        if self.on_gone is not None:
            self.on_gone(self.sid)


if TYPE_CHECKING:
    # mypy holds Socket to the interfaces it offers adapters and fetch_sockets() callers.
    _socket_is_a_recipient: type[Recipient] = Socket
    _socket_is_fetched: type[FetchedSocket] = Socket
