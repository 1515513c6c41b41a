"""The Engine.IO session: one client connection, whatever carries it.

A session owns the outbound queue of encoded packets, the heartbeat, and the
polling→WebSocket upgrade. Transports hand it what they receive
(:meth:`Session.receive`) and write what it gives them; the layer above sets
``on_message`` and ``on_close`` and calls :meth:`Session.send`.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Protocol

from ..events import EventEmitter
from ..exceptions import ProtocolError, TransportError
from . import codec
from .clock import Timer
from .codec import Encoded
from .generation import Generation

if TYPE_CHECKING:
    from .server import Engine

log = logging.getLogger("tornad_io.engine")

OPENING, OPEN, CLOSING, CLOSED = "opening", "open", "closing", "closed"


class Close(enum.Enum):
    """How a session ends; its transport decides what that means on its wire."""

    #: The server closes: what is queued goes first, then the close (over long-polling the
    #: client collects both with its next poll, so the session stays findable for it).
    FLUSH = "flush"
    #: At once, telling the client where the transport can still carry a close packet
    #: (ping timeout, protocol error, duplicate poll).
    NOTIFY = "notify"
    #: The client closed: a poll that crossed its close is answered, not refused.
    ANSWER = "answer"
    #: At once, nothing more written (the connection is gone, or must go now).
    DROP = "drop"


class Transport(Protocol):
    """What a session needs from the thing that carries its packets.

    Transports describe themselves by capabilities, never by name: shared code
    asks :attr:`pulls` or :attr:`upgradable`, not whether ``name`` is "polling".
    """

    #: The transport's name, as clients and ``socket.transport`` know it (reporting only).
    name: str
    #: Whether packets wait for the client's next request (long-polling) rather than
    #: being pushed as they come.
    pulls: bool
    #: Whether the client may move the session to another transport (upgrade).
    upgradable: bool

    @property
    def writable(self) -> bool:
        """Whether :meth:`deliver` can be called now."""

    def deliver(self, packets: list[Encoded]) -> None:
        """Send *packets*; only called while :attr:`writable`."""

    def is_congested(self) -> bool:
        """Whether a volatile packet should be dropped rather than queued."""

    def end(self, packets: list[Encoded] | None = None) -> None:
        """Stop carrying the session (probe refused, upgrade done): a waiting poll gets
        *packets* (or a NOOP), a socket closes."""

    def finish(self, queue: list[Encoded], mode: Close) -> bool:
        """The session closed with *mode*; *queue* is what it had not sent yet.

        Returns True when the session must stay findable for a while (a close
        that waits for the client's next poll).
        """


class HandshakeInfo:
    """What the first request of a session said, kept for the layers above."""

    __slots__ = ("_headers", "query", "address", "secure", "url", "issued", "xdomain", "route")

    def __init__(
        self,
        headers: Mapping[str, str],
        query: dict[str, str],
        address: str,
        secure: bool,
        url: str,
        xdomain: bool,
    ) -> None:
        # A dict of strings now rather than the request's header object later: the dict is smaller and the
        # cyclic GC does not track it (Tornado's HTTPHeaders keeps a list per header, each one tracked, and
        # a connection storm's full collections walk every live session's; measured: see lean_websocket).
        self._headers: Mapping[str, str] = (
            headers if isinstance(headers, dict) else {k.lower(): v for k, v in headers.items()}
        )
        self.query = query
        self.address = address
        self.secure = secure
        self.url = url
        self.xdomain = xdomain
        self.issued = int(time.time() * 1000)
        #: What the URL route captured (``{"args": [...], "kwargs": {...}}``), if anything.
        self.route: dict[str, Any] = {}

    @property
    def headers(self) -> dict[str, str]:
        """The request headers with lower-case names."""
        return self._headers  # type: ignore[return-value]


class EnginePacket(NamedTuple):
    """One Engine.IO packet as the ``packet`` and ``packet_create`` events give it."""

    #: ``open``, ``close``, ``ping``, ``pong``, ``message``, ``upgrade`` or ``noop``.
    type: str
    #: What the packet carries: text, bytes for a binary message, or None.
    data: str | bytes | None


_PACKET_NAMES = {
    codec.OPEN: "open",
    codec.CLOSE: "close",
    codec.PING: "ping",
    codec.PONG: "pong",
    codec.MESSAGE: "message",
    codec.UPGRADE: "upgrade",
    codec.NOOP: "noop",
}


class Session(EventEmitter):
    """One Engine.IO connection: queue, heartbeat, upgrade and close.

    The Engine.IO v4 generation; :class:`~tornad_io.engineio.legacy_session.LegacySession`
    is the Socket.IO 0.6 one, with the same queue, transports and close path.

    Sockets reach it as ``socket.conn``. Its events (``conn.on(event,
    listener)``, see :class:`~tornad_io.events.EventEmitter`) are the reference
    server's: ``packet`` (an :class:`EnginePacket` received), ``packet_create``
    (an :class:`EnginePacket` queued to send), ``drain`` (queued packets handed
    to the transport), ``heartbeat``, ``upgrading`` and ``upgrade`` (the new
    transport, whose ``name`` says what it is), and ``close`` (reason,
    description).
    """

    #: This session's protocol generation (Engine.IO v4; set below the class).
    generation: Generation

    __slots__ = (
        "sid",
        "engine",
        "transport",
        "state",
        "info",
        "on_message",
        "on_close",
        "_queue",
        "_queued_bytes",
        "_clock",
        "_ping_handle",
        "_timeout_handle",
        "_probe",
        "_upgrade_handle",
        "_upgrading",
        "close_reason",
        "close_description",
        "__weakref__",
    )

    def __init__(self, engine: Engine, sid: str, transport: Transport, info: HandshakeInfo) -> None:
        self.sid = sid
        self.engine = engine
        self.transport = transport
        self.info = info
        self.state = OPENING
        self.on_message: Callable[[str | bytes], None] = _ignore
        self.on_close: Callable[[str], None] = _ignore
        self.close_reason: str | None = None
        #: What the reference calls the close's description (for a ``transport error``, the
        #: error), or None; what ``disconnect`` handlers get after the reason.
        self.close_description: Any = None
        self._events = None
        self._queue: list[Encoded] = []
        self._queued_bytes = 0  # held while the transport cannot take them
        self._clock = engine.clock
        self._ping_handle: Timer | None = None
        self._timeout_handle: Timer | None = None
        self._probe: Transport | None = None
        self._upgrade_handle: Timer | None = None
        self._upgrading = False

    # -- lifecycle -----------------------------------------------------------

    def open(self, upgrades: list[str]) -> None:
        """Queue the OPEN packet and start the heartbeat."""
        opts = self.engine.options
        handshake = {
            "sid": self.sid,
            "upgrades": upgrades,
            "pingInterval": int(opts.ping_interval * 1000),
            "pingTimeout": int(opts.ping_timeout * 1000),
            "maxPayload": opts.max_http_buffer_size,
        }
        from .._json import dumps

        self.state = OPEN
        self._queue.append(codec.OPEN + dumps(handshake))
        if self._events is not None:
            self._created(self._queue)
        self._schedule_ping(self._clock.time())
        self.flush()

    def close(self, reason: str = "forced close") -> None:
        """Close from the server side, after what was queued has been sent."""
        if self.state in (CLOSING, CLOSED):
            return
        self.state = CLOSING
        self._finish(reason, Close.FLUSH)

    def abort(self, reason: str, mode: Close = Close.NOTIFY, description: Any = None) -> None:
        """Close at once (timeout, protocol error, client close, lost connection): see :class:`Close`.

        *description* says more where the reference does (for a ``transport error``, the error).
        """
        if self.state == CLOSED:
            return
        self.close_description = description
        self._finish(reason, mode)

    @property
    def id(self) -> str:
        """The session id (``sid``), as the reference's ``socket.conn.id``."""
        return self.sid

    @property
    def ready_state(self) -> str:
        """``opening``, ``open``, ``closing`` or ``closed``."""
        return self.state

    def _finish(self, reason: str, mode: Close) -> None:
        self.state = CLOSED
        self.close_reason = reason
        for handle in (self._ping_handle, self._timeout_handle, self._upgrade_handle):
            if handle is not None:
                handle.cancel()
        self._ping_handle = self._timeout_handle = self._upgrade_handle = None
        if self._probe is not None:
            self._probe.end()
            self._probe = None
        queue, self._queue = self._queue, []
        self._queued_bytes = 0
        if self.transport.finish(queue, mode):
            # The close waits for the client's next poll: stay findable that long at most.
            self._clock.call_later(self.engine.options.ping_timeout, self.engine._forget, self)
        else:
            self.engine._forget(self)
        log.debug("session %s closed: %s", self.sid, reason)
        callback, self.on_close = self.on_close, _ignore
        self.on_message = _ignore
        try:
            callback(reason)
        except Exception:  # pragma: no cover - the layer above logs its own errors
            log.exception("error in close handler of session %s", self.sid)
        if self._events is not None:
            self.fire("close", reason, self.close_description)

    # -- sending -------------------------------------------------------------

    def send(self, packets: list[Encoded], volatile: bool = False) -> None:
        """Queue encoded packets and write them as soon as the transport allows."""
        if self.state != OPEN:
            return
        if volatile and (self._upgrading or self.transport.is_congested()):
            return
        self._queue.extend(packets)
        if self._events is not None:
            self._created(packets)
        if self.transport.writable:
            queue = self._queue
            self._queue = []
            self._queued_bytes = 0
            self.transport.deliver(queue)
            if self._events is not None:
                self.fire("drain")
        else:
            self._held(sum(len(p) for p in packets))

    def send_one(self, packet: Encoded) -> None:
        """Queue one encoded packet (the hot path for a single emit)."""
        if self.state != OPEN:
            return
        self._queue.append(packet)
        if self._events is not None:
            self._created((packet,))
        if self.transport.writable:
            queue = self._queue
            self._queue = []
            self._queued_bytes = 0
            self.transport.deliver(queue)
            if self._events is not None:
                self.fire("drain")
        else:
            self._held(len(packet))

    def _created(self, packets: Iterable[Encoded]) -> None:
        """The ``packet_create`` event, for each of *packets*."""
        if self.has_listeners("packet_create"):
            for packet in packets:
                self.fire("packet_create", self.describe_packet(packet))

    def describe_packet(self, packet: Encoded) -> EnginePacket:
        """An encoded packet of this session's generation as an :class:`EnginePacket`."""
        kind, data = codec.decode_packet(packet)
        return EnginePacket(_PACKET_NAMES[kind], data if data != "" else None)

    def _held(self, size: int) -> None:
        self._queued_bytes += size
        if self._queued_bytes > self.engine.options.max_buffered_bytes:
            self.overflow(self._queued_bytes)

    def overflow(self, size: int) -> None:
        """The client takes its packets too slowly: disconnect it, memory stays bounded."""
        log.warning(
            "session %s: %d bytes waiting for a client that does not read (max_buffered_bytes=%d); closing",
            self.sid,
            size,
            self.engine.options.max_buffered_bytes,
        )
        self.abort("transport error", Close.DROP, TransportError(f"{size} bytes waiting (max_buffered_bytes)"))

    def flush(self) -> None:
        """Write what is queued if the transport can take it now."""
        if self._queue and self.transport.writable:
            queue = self._queue
            self._queue = []
            self._queued_bytes = 0
            self.transport.deliver(queue)
            if self._events is not None:
                self.fire("drain")
        elif self._upgrading and self.transport.writable and self.transport.pulls:
            # Release the pending poll so the client can finish its upgrade.
            self.transport.deliver([codec.NOOP_PACKET])

    def payload(self, packets: list[Encoded]) -> str | bytes:
        """The HTTP body that carries *packets* to a polling client (``bytes``: a binary body)."""
        return codec.encode_payload(packets)

    def decode_payload(self, text: str) -> list[Encoded]:
        """The packets of a polling POST body; raises ``ProtocolError`` if it is malformed."""
        return codec.decode_payload(text)

    def decode_binary_payload(self, body: bytes) -> list[Encoded]:
        """The packets of a binary polling POST body (``application/octet-stream``).

        Engine.IO v4 has none: refused with ``ProtocolError``, as the reference refuses it.
        """
        raise ProtocolError("binary polling payloads are not part of Engine.IO v4")

    # -- receiving -----------------------------------------------------------

    def receive(self, packet: Encoded) -> None:
        """Handle one packet from the session's current transport."""
        ptype, data = codec.decode_packet(packet)
        if self._events is not None:
            self.fire("packet", EnginePacket(_PACKET_NAMES[ptype], data if data != "" else None))
        if ptype == codec.MESSAGE:
            self.on_message(data)
        elif ptype == codec.PONG:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
                self._timeout_handle = None
                self._schedule_ping(self._clock.time())
                if self._events is not None:
                    self.fire("heartbeat")
        elif ptype == codec.CLOSE:
            self.abort("transport close", Close.ANSWER)
        elif ptype == codec.PING:
            self.send_one(codec.PONG + (data if isinstance(data, str) else ""))
        # OPEN, UPGRADE and NOOP from a client on its current transport are ignored.

    def receive_many(self, packets: list[Encoded]) -> None:
        """Handle a decoded polling payload, stopping if the session closes."""
        for packet in packets:
            if self.state == CLOSED:
                return
            self.receive(packet)

    # -- heartbeat -----------------------------------------------------------

    def _schedule_ping(self, now: float) -> None:
        if self.state in (CLOSED,):
            return
        at = now + self.engine.options.ping_interval
        self._ping_handle = self._clock.call_at(at, self._ping, at)

    def _ping(self, at: float) -> None:
        self._ping_handle = None
        if self.state != OPEN:
            return
        # The timeout counts from when the ping was due, so timers do not drift.
        self._timeout_handle = self._clock.call_at(at + self.engine.options.ping_timeout, self._on_ping_timeout)
        self.send_one(codec.PING_PACKET)

    def _on_ping_timeout(self) -> None:
        self._timeout_handle = None
        self.abort("ping timeout")

    # -- upgrade -------------------------------------------------------------

    def can_upgrade(self) -> bool:
        """Whether a WebSocket may start probing this session now."""
        return (
            self.state == OPEN
            and self.transport.upgradable
            and self._probe is None
            and self.engine.options.allow_upgrades
            and "websocket" in self.engine.options.transports
        )

    def start_upgrade(self, probe: Transport) -> None:
        """Attach a WebSocket that will probe, then take over the session."""
        self._probe = probe
        self._upgrade_handle = self._clock.call_later(self.engine.options.upgrade_timeout, self._upgrade_timed_out)

    def probe_receive(self, probe: Transport, packet: Encoded) -> None:
        """Handle a packet that arrived on the WebSocket being upgraded to."""
        if probe is not self._probe or self.state != OPEN:
            probe.end()
            return
        ptype, data = codec.decode_packet(packet)
        if ptype == codec.PING and data == "probe":
            probe.deliver([codec.PONG + "probe"])
            self._upgrading = True
            if self._events is not None:
                self.fire("upgrading", probe)
            self.flush()
        elif ptype == codec.UPGRADE:
            self._complete_upgrade(probe)
        else:
            self._cancel_upgrade()
            probe.end()

    def probe_closed(self, probe: Transport) -> None:
        """The probing WebSocket went away before the upgrade completed."""
        if probe is self._probe:
            self._cancel_upgrade()

    def _complete_upgrade(self, probe: Transport) -> None:
        if self._upgrade_handle is not None:
            self._upgrade_handle.cancel()
            self._upgrade_handle = None
        old = self.transport
        self.transport = probe
        self._probe = None
        self._upgrading = False
        # A poll still waiting is released empty; everything queued goes on the socket.
        old.end([codec.NOOP_PACKET])
        log.debug("session %s upgraded to %s", self.sid, probe.name)
        if self._events is not None:
            self.fire("upgrade", probe)
        self.flush()

    def _cancel_upgrade(self) -> None:
        if self._upgrade_handle is not None:
            self._upgrade_handle.cancel()
            self._upgrade_handle = None
        self._probe = None
        self._upgrading = False

    def _upgrade_timed_out(self) -> None:
        self._upgrade_handle = None
        probe = self._probe
        self._cancel_upgrade()
        if probe is not None:
            log.debug("session %s: upgrade timed out", self.sid)
            probe.end()

    def protocol_error(self, error: ProtocolError) -> None:
        """Close the session because its peer broke the protocol."""
        log.info("session %s: protocol error: %s", self.sid, error)
        self.abort("parse error")


def _ignore(*_args: Any) -> None:
    return None


def new_id() -> str:
    """A session or socket id: 120 random bits from ``secrets``, URL-safe."""
    return secrets.token_urlsafe(15)


#: Engine.IO v4, what socket.io-client 3.x and 4.x speak.
ENGINE_IO_4 = Generation("Engine.IO v4", Session, new_id, eio_version="4")
Session.generation = ENGINE_IO_4
