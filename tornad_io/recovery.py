"""Connection state recovery: what a process keeps so that a client can come back.

With ``connection_state_recovery`` on, every event broadcast (or emitted to one
socket) without an acknowledgement and not volatile gets an *offset*, appended
as its last argument, and is kept here for ``max_disconnection_duration``. A
socket that disconnects for a reason the reference deems recoverable (a lost
transport, a ping timeout, a server shutdown) leaves its session here: id,
private id (``pid``), rooms and ``data``. A client that reconnects within the
window presents ``pid`` and the last offset it saw, and gets its socket back with
exactly the packets it missed, in order, once.

This module is the in-memory store, sans I/O: the adapter feeds it and asks it.
It is bounded twice: by time (``max_disconnection_duration``, swept as packets
arrive) and by size (``max_bytes`` of stored packets, oldest dropped first; a
client whose offset has been dropped gets a fresh session, as after the window).
"""

from __future__ import annotations

import collections
import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

from .adapter import Adapter, BroadcastOptions
from .engineio.codec import shared
from .socketio import codec

if TYPE_CHECKING:
    from .socketio.namespace import Namespace

#: Disconnect reasons after which a session is kept for recovery (those of the reference).
RECOVERABLE_REASONS = frozenset(
    {
        "transport error",
        "transport close",
        "forced close",
        "ping timeout",
        "server shutting down",
        "forced server close",
    }
)


def carries_offset(packet: codec.Packet, opts: BroadcastOptions) -> bool:
    """Whether a broadcast gets an offset: an event that asks for no acknowledgement and
    is not volatile (the reference's rule; the others cannot be replayed faithfully)."""
    return packet.type == codec.EVENT and packet.id is None and not opts.volatile


def encode_with_offset(nsp: str, data: list[Any], offset: str, parser: Any = None) -> list[str | bytes]:
    """The event ``data`` with *offset* appended, as shared Engine.IO messages for a v5 client
    (in the server's packet format, *parser*; JSON when None)."""
    from .socketio.client import encode_v5

    if parser is None:
        return shared(encode_v5(codec.EVENT, nsp, [*data, offset]))
    return shared(encode_v5(codec.EVENT, nsp, [*data, offset], None, parser))


def deliver_with_offset(
    adapter: Adapter, packet: codec.Packet, opts: BroadcastOptions, offset: str
) -> list[str | bytes] | None:
    """Deliver *packet* to the sockets *opts* selects on *adapter*, with *offset* appended
    as the last argument for the clients that can recover (``supports_recovery``) and
    without it for the others, each encoding once.

    Returns the encoding with the offset if a recipient took it (what a store may keep),
    else None. For a packet that :func:`carries_offset`.
    """
    data = packet.data
    with_offset = codec.Packet(codec.EVENT, packet.nsp, [*data, offset])
    encoded: dict[Any, list[str | bytes]] = {}
    kept: list[str | bytes] | None = None
    for socket in adapter.select(opts):
        packets = encoded.get(socket.encoding)
        if packets is None:
            if socket.supports_recovery:
                packets = kept = socket.encode_packet(with_offset)
            else:
                packets = socket.encode_packet(packet)  # no offset for clients that cannot use it
            encoded[socket.encoding] = packets
        socket.notify_outgoing(data)
        socket.write_packets(packets, False)
    return kept


class StoredPacket:
    """One event kept for recovery, with the room selection it was sent to."""

    __slots__ = ("offset", "packets", "rooms", "except_rooms", "at", "size")

    def __init__(
        self,
        offset: str,
        packets: list[str | bytes],
        rooms: frozenset[str],
        except_rooms: frozenset[str],
        at: float,
    ) -> None:
        #: The offset the packet carries as its last argument.
        self.offset = offset
        #: The packet as Engine.IO messages, ready to send to a v5 client again.
        self.packets = packets
        self.rooms = rooms
        self.except_rooms = except_rooms
        self.at = at
        self.size = sum(len(p) for p in packets) + 64

    def reaches(self, rooms: Iterable[str]) -> bool:
        """Whether a socket in *rooms* was among the recipients."""
        joined = set(rooms)
        if self.except_rooms & joined:
            return False
        return not self.rooms or bool(self.rooms & joined)


class StoredSession:
    """A disconnected socket, kept for ``max_disconnection_duration``."""

    __slots__ = ("sid", "pid", "rooms", "data", "at")

    def __init__(self, sid: str, pid: str, rooms: list[str], data: Any, at: float) -> None:
        self.sid = sid
        self.pid = pid
        self.rooms = rooms
        self.data = data
        self.at = at


class RestoredSession(NamedTuple):
    """What :meth:`Adapter.restore_session <tornad_io.Adapter.restore_session>` gives back."""

    #: The socket id to give the returning client.
    sid: str
    #: The private id it presented.
    pid: str
    #: The rooms the socket was in (its own id included).
    rooms: list[str]
    #: The socket's ``data`` when it disconnected.
    data: Any
    #: The packets it missed, each as Engine.IO messages for a v5 client, in order.
    missed: list[list[str | bytes]]


class RecoveryStore:
    """Sessions and packets of one namespace, kept for recovery."""

    __slots__ = ("max_duration", "max_bytes", "_time", "_prefix", "_count", "_packets", "_bytes", "_sessions")

    def __init__(self, max_duration: float, max_bytes: int, time: Callable[[], float]) -> None:
        self.max_duration = max_duration
        self.max_bytes = max_bytes
        self._time = time
        # Offsets are unique across restarts: a random prefix, then a counter.
        self._prefix = secrets.token_hex(4) + "-"
        self._count = 0
        self._packets: collections.OrderedDict[str, StoredPacket] = collections.OrderedDict()
        self._bytes = 0
        self._sessions: dict[str, StoredSession] = {}

    def next_offset(self) -> str:
        """A new offset, later than every offset handed out before by this store."""
        self._count += 1
        return self._prefix + format(self._count, "x")

    def keep(
        self, offset: str, packets: list[str | bytes], rooms: frozenset[str], except_rooms: frozenset[str]
    ) -> None:
        """Keep a sent packet (its *offset* already inside) for clients that may come back."""
        now = self._time()
        stored = StoredPacket(offset, packets, rooms, except_rooms, now)
        self._packets[offset] = stored
        self._bytes += stored.size
        self._trim(now)

    def persist(self, sid: str, pid: str, rooms: Iterable[str], data: Any) -> None:
        """Keep the session of a socket that disconnected for a recoverable reason."""
        now = self._time()
        self._sessions.pop(pid, None)  # kept again: it moves to the end, with the newest
        self._sessions[pid] = StoredSession(sid, pid, list(rooms), data, now)
        self._trim(now)

    def restore(self, pid: str, offset: str) -> RestoredSession | None:
        """The session of *pid* and the packets it missed after *offset*, or None.

        None when the session is unknown or expired, or when *offset* is no longer
        (or never was) stored: the client then starts afresh. A session is restored
        once: it is forgotten here.
        """
        now = self._time()
        self._trim(now)
        session = self._sessions.pop(pid, None)
        if session is None:
            return None
        if offset not in self._packets:
            return None
        missed: list[list[str | bytes]] = []
        seen = False
        for stored in self._packets.values():
            if seen:
                if stored.reaches(session.rooms):
                    missed.append(stored.packets)
            elif stored.offset == offset:
                seen = True
        return RestoredSession(session.sid, session.pid, session.rooms, session.data, missed)

    @property
    def stored_bytes(self) -> int:
        """Bytes of packets kept now (an estimate: their encoded size plus bookkeeping)."""
        return self._bytes

    @property
    def sessions(self) -> int:
        """How many sessions are kept now."""
        return len(self._sessions)

    def _trim(self, now: float) -> None:
        horizon = now - self.max_duration
        packets = self._packets
        while packets:
            first = next(iter(packets.values()))
            if first.at >= horizon and self._bytes <= self.max_bytes:
                break
            packets.popitem(last=False)
            self._bytes -= first.size
        sessions = self._sessions  # in the order they were kept: the oldest first
        while sessions:
            oldest = next(iter(sessions.values()))
            if oldest.at >= horizon:
                break
            del sessions[oldest.pid]


class RecoveringAdapter(Adapter):
    """The in-memory adapter, keeping sessions and packets for connection state recovery.

    The server uses it instead of :class:`~tornad_io.Adapter` when
    ``connection_state_recovery`` is on and no other adapter was given.
    """

    def __init__(self, nsp: Namespace) -> None:
        super().__init__(nsp)
        settings = nsp.server.options.recovery
        assert settings is not None
        server = nsp.server
        #: The sessions and packets kept for this namespace.
        self.store = RecoveryStore(
            settings.max_disconnection_duration, settings.max_stored_bytes, lambda: server.engine.clock.time()
        )

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        """Deliver like :meth:`Adapter.broadcast <tornad_io.Adapter.broadcast>`; an event with no
        ack that is not volatile also gets an offset (its last argument, for clients that
        recover) and is kept."""
        if not carries_offset(packet, opts):
            super().broadcast(packet, opts)
            return
        offset = self.store.next_offset()
        kept = deliver_with_offset(self, packet, opts, offset)
        if kept is None:
            kept = encode_with_offset(packet.nsp, packet.data, offset, self.nsp.server.options.packet_parser)
        self.store.keep(offset, kept, opts.rooms, opts.except_rooms)

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """Keep the session in memory for ``max_disconnection_duration``."""
        self.store.persist(sid, pid, rooms, data)

    async def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        """The kept session and the packets it missed, or None.

        A session is restored once; None when it is unknown or expired, or when the
        offset is no longer kept (the client then starts afresh).
        """
        return self.store.restore(pid, offset)
