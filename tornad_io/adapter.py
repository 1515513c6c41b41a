"""Who is in which room, and delivery to many: the in-memory adapter.

The interface follows Node's ``socket.io-adapter`` so a cluster adapter is a
subclass: rooms index (:meth:`Adapter.add_all`, :meth:`Adapter.delete`,
:meth:`Adapter.del_all`), delivery (:meth:`Adapter.broadcast`,
:meth:`Adapter.broadcast_with_ack`) and the bulk operations on a room
selection (sockets, fetch, join, leave, disconnect, server-side emit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .engineio.codec import shared
from .socketio import codec

if TYPE_CHECKING:
    from .socketio.namespace import Namespace
    from .socketio.socket import Socket


class BroadcastOptions:
    """Which sockets a broadcast reaches, and how."""

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
        self.rooms = rooms
        self.except_rooms = except_rooms
        self.volatile = volatile
        self.compress = compress
        self.local = local
        self.timeout = timeout


class Adapter:
    """In-memory rooms and delivery for one namespace on one process."""

    def __init__(self, nsp: Namespace) -> None:
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
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

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
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
