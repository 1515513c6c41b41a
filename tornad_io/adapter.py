"""Who is in which room, and delivery to many: the in-memory adapter.

The interface follows Node's ``socket.io-adapter`` so a cluster adapter is a
subclass: rooms index (:meth:`Adapter.add_all`, :meth:`Adapter.delete`,
:meth:`Adapter.del_all`), delivery (:meth:`Adapter.broadcast`,
:meth:`Adapter.broadcast_with_ack`) and the bulk operations on a room
selection (sockets, fetch, join, leave, disconnect, server-side emit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

from .engineio.codec import shared
from .socketio import codec

if TYPE_CHECKING:
    from .socketio.namespace import Namespace
    from .socketio.socket import Handshake, Socket

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


class BroadcastOptions:
    """Which sockets a broadcast reaches, and how: what the adapter gets from a
    :class:`~tornad_io.BroadcastOperator` chain."""

    __slots__ = ("rooms", "except_rooms", "volatile", "compress", "local", "timeout")

    def __init__(
        self,
        rooms: frozenset[str] = frozenset(),
        except_rooms: frozenset[str] = frozenset(),
        volatile: bool = False,
        compress: bool = True,
        local: bool = False,
        timeout: float | None = None,
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


class Adapter:
    """In-memory rooms and delivery for one namespace on one process.

    The server builds one per namespace (``adapter(namespace)``). A custom or
    cluster adapter subclasses it and overrides what goes beyond one process
    (the delivery and bulk methods); the rooms index stays local.
    """

    def __init__(self, nsp: Namespace) -> None:
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
        for room in rooms:
            own.add(room)
            members = self.rooms.get(room)
            if members is None:
                self.rooms[room] = {sid}
            else:
                members.add(sid)

    def delete(self, sid: str, room: str) -> None:
        """Take socket *sid* out of *room*."""
        own = self.sids.get(sid)
        if own is not None:
            own.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def del_all(self, sid: str) -> None:
        """Take socket *sid* out of every room."""
        own = self.sids.pop(sid, None)
        if not own:
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

    def _select(self, opts: BroadcastOptions) -> Iterator[Socket]:
        sockets = self.nsp.sockets
        excluded: set[str] = set()
        for room in opts.except_rooms:
            members = self.rooms.get(room)
            if members:
                excluded.update(members)
        if opts.rooms:
            seen: set[str] = set()
            for room in opts.rooms:
                members = self.rooms.get(room)
                if not members:
                    continue
                for sid in list(members):
                    if sid in seen or sid in excluded:
                        continue
                    seen.add(sid)
                    socket = sockets.get(sid)
                    if socket is not None:
                        yield socket
        else:
            for sid, socket in list(sockets.items()):
                if sid not in excluded:
                    yield socket

    def _deliveries(self, packet: codec.Packet, opts: BroadcastOptions) -> Iterator[tuple[Socket, list[str | bytes]]]:
        """The selected sockets, each with *packet* encoded for its protocol generation.

        The packet is encoded once per generation and the same (shared) list is handed
        to every recipient of that generation, so transports can cache the wire form.
        """
        encoded: dict[str, list[str | bytes]] = {}
        for socket in self._select(opts):
            client = socket.client
            packets = encoded.get(client.generation)
            if packets is None:
                packets = encoded[client.generation] = shared(
                    client.encode(packet.type, packet.nsp, packet.data, packet.id)
                )
            if socket._any_outgoing:
                socket._notify_outgoing(packet.data)
            yield socket, packets

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        """Deliver *packet* to the selected sockets, encoded once for all."""
        volatile = opts.volatile
        for socket, packets in self._deliveries(packet, opts):
            socket._write_engine(packets, volatile)

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
        packet.id = self.nsp._next_ack_id()
        reached: list[str] = []
        for socket, packets in self._deliveries(packet, opts):
            if socket.client.supports_acks:
                socket._acks[packet.id] = _BroadcastAck(socket.id, on_ack, on_gone)
                reached.append(socket.id)
            socket._write_engine(packets, opts.volatile)
        client_count(len(reached))
        return reached

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        """Ids of the sockets in any of *rooms* (all sockets if empty)."""
        opts = BroadcastOptions(rooms=frozenset(rooms))
        return {socket.id for socket in self._select(opts)}

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[FetchedSocket]:
        """The sockets a selection matches (local ones only in memory)."""
        return list(self._select(opts))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the selected sockets join *rooms*."""
        rooms = list(rooms)
        for socket in list(self._select(opts)):
            socket.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the selected sockets leave *rooms*."""
        rooms = list(rooms)
        for socket in list(self._select(opts)):
            for room in rooms:
                socket.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the selected sockets (and their connection if *close*)."""
        for socket in list(self._select(opts)):
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
