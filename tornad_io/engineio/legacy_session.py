"""The Socket.IO 0.6 session: same queue and close path, 0.6 liveness rules.

- The first frame a new session sends is its id (queued by :meth:`accept`,
  once the application has accepted the connection).
- Persistent and streaming transports carry heartbeats ``~h~N``: sent every
  ``legacy_heartbeat_interval``, to be echoed within ``legacy_heartbeat_timeout``.
- Polling transports carry none: a session ends ``legacy_close_timeout`` after
  a GET completes unless the next GET arrives.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from . import legacy_codec
from .clock import Timer
from .codec import Encoded
from .generation import Generation
from .session import CLOSED, OPEN, OPENING, Close, EnginePacket, HandshakeInfo, Session, Transport

if TYPE_CHECKING:
    from .server import Engine

log = logging.getLogger("tornad_io.engine")


class LegacySession(Session):
    """A Socket.IO 0.6 session.

    Transports that push (WebSocket, the streaming ones) carry heartbeats; the
    ones the client pulls (the polling ones) end after a quiet close timeout.
    0.6 has no close packet: every close mode ends the transport the same way.
    """

    __slots__ = ("accepted", "_beat", "_close_handle")

    def __init__(self, engine: Engine, sid: str, transport: Transport, info: HandshakeInfo) -> None:
        super().__init__(engine, sid, transport, info)
        #: Resolves True once the application accepted the connection, False if it refused.
        self.accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._beat = 0
        self._close_handle: Timer | None = None

    def open(self, upgrades: list[str]) -> None:
        """Nothing is sent until :meth:`accept`: the id must be the first frame."""
        self.state = OPENING

    def accept(self) -> None:
        """Send the session id and start the liveness rules."""
        if self.state != OPENING:
            return
        self.state = OPEN
        self._queue.insert(0, legacy_codec.frame(self.sid))
        if not self.transport.pulls:
            self._schedule_ping(self._clock.time())
        if not self.accepted.done():
            self.accepted.set_result(True)
        self.flush()

    def refuse(self) -> None:
        """The application refused the connection: forget the session quietly."""
        if not self.accepted.done():
            self.accepted.set_result(False)
        self._finish("refused", Close.DROP)

    def payload(self, packets: list[Encoded]) -> str:
        return "".join(packets)  # type: ignore[arg-type]  # 0.6 frames are always text

    def describe_packet(self, packet: Encoded) -> EnginePacket:
        """A 0.6 frame (message or heartbeat) as the ``packet_create`` event gives it: a message."""
        return EnginePacket("message", packet)

    # -- closing -------------------------------------------------------------

    def close(self, reason: str = "forced close") -> None:
        """Close from the server side, after what was queued has been sent (when it can be)."""
        if self.state == CLOSED:
            return
        self._finish(reason, Close.FLUSH)

    def _finish(self, reason: str, mode: Close) -> None:
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None
        if not self.accepted.done():
            self.accepted.set_result(False)
        super()._finish(reason, mode)

    # -- receiving -----------------------------------------------------------

    def receive_payload(self, payload: str, crlf_tolerant: bool = False, strict: bool = False) -> None:
        """Handle a client payload (one or more frames; all are processed)."""
        dropped: list[str] = []
        messages = legacy_codec.decode_payload(payload, crlf_tolerant, strict, dropped=dropped)
        for reason in dropped:
            log.info("session %s: dropped %s", self.sid, reason)
        self.receive_messages(messages)

    def receive_messages(self, messages: list[legacy_codec.Message]) -> None:
        """Handle decoded messages and heartbeats, stopping if the session closes."""
        for message in messages:
            if self.state == CLOSED:
                return
            if message.beat is not None:
                self._on_beat(message.beat)
            else:
                self.on_message(message.value)

    def receive(self, packet: Encoded) -> None:
        """A WebSocket message: one payload."""
        if isinstance(packet, bytes):
            from ..exceptions import ProtocolError

            raise ProtocolError("binary frames are not part of the 0.6 protocol")
        self.receive_payload(packet, strict=True)

    # -- heartbeats (persistent and streaming transports) -------------------------

    def _schedule_ping(self, now: float) -> None:
        if self.state == CLOSED:
            return
        at = now + self.engine.options.legacy_heartbeat_interval
        self._ping_handle = self._clock.call_at(at, self._ping, at)

    def _ping(self, at: float) -> None:
        self._ping_handle = None
        if self.state != OPEN:
            return
        self._beat += 1
        self._timeout_handle = self._clock.call_at(
            at + self.engine.options.legacy_heartbeat_timeout, self._on_ping_timeout
        )
        self.send_one(legacy_codec.heartbeat(self._beat))

    def _on_beat(self, beat: str) -> None:
        if beat != str(self._beat) or self._timeout_handle is None:
            return  # a stale or unknown counter is ignored, as in the reference
        self._timeout_handle.cancel()
        self._timeout_handle = None
        self._schedule_ping(self._clock.time())

    # -- polling liveness ----------------------------------------------------------

    def poll_started(self) -> None:
        """A GET arrived: the session is alive."""
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None

    def poll_finished(self) -> None:
        """A GET completed (or went away): the next must come within the close timeout."""
        if self.state == CLOSED:
            return
        if self._close_handle is not None:
            self._close_handle.cancel()
        self._close_handle = self._clock.call_later(self.engine.options.legacy_close_timeout, self._poll_timed_out)

    def _poll_timed_out(self) -> None:
        self._close_handle = None
        self.abort("transport close")

    def can_upgrade(self) -> bool:
        return False  # 0.6 has no upgrades


def new_legacy_id() -> str:
    """A 0.6 session id: 128 random bits as hex (the 0.6 URL space allows [0-9a-zA-Z])."""
    return secrets.token_hex(16)


#: Socket.IO 0.6, the browser client SocketTornad.IO served in 2010.
SOCKET_IO_06 = Generation("Socket.IO 0.6", LegacySession, new_legacy_id, batches_websocket_messages=True)
LegacySession.generation = SOCKET_IO_06
