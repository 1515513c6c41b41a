"""The Engine.IO v3 session: the v4 session with v3's framing and heartbeat.

What socket.io-client 2.x speaks (``EIO=3``), served when the server option
``allow_eio3`` is on. Same queue, transports, upgrade and close path as
Engine.IO v4; what differs:

- the heartbeat runs the other way: the *client* sends PING every
  ``pingInterval`` and the server answers PONG. The server sends no pings; it
  closes a session whose last PING (or handshake) is older than
  ``pingInterval + pingTimeout`` ("ping timeout"), as the reference does;
- the OPEN packet is ``0{"sid", "upgrades", "pingInterval", "pingTimeout"}``;
- a binary packet carries its type byte (``b"\\x04" + data``), or travels as
  ``b4<base64>`` text for a client that asked for base64 (``b64=1``, and every
  JSONP client); polling payloads use v3's framing (``eio3_codec``).

The queue holds v3 wire packets: a binary MESSAGE handed to :meth:`send` (raw
``bytes``, as for every generation) is framed once, on its way in, and the
framed form of a packet shared by a broadcast is built once for all its
recipients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _json
from . import codec, eio3_codec
from .codec import Encoded, SharedBytes, SharedText
from .generation import Generation
from .session import OPEN, Close, HandshakeInfo, Session, Transport, new_id

if TYPE_CHECKING:
    from .server import Engine


class Eio3Session(Session):
    """An Engine.IO v3 session (socket.io-client 2.x)."""

    __slots__ = ("base64",)

    def __init__(self, engine: Engine, sid: str, transport: Transport, info: HandshakeInfo) -> None:
        super().__init__(engine, sid, transport, info)
        # Binary as base64 text: asked for with b64 (a client without XHR2, or forceBase64), and always
        # for JSONP, whose responses are scripts. The reference decides it once, at the handshake.
        #: Whether binary packets go as ``b4<base64>`` text rather than as binary.
        self.base64 = bool(info.query.get("b64")) or "j" in info.query

    def open(self, upgrades: list[str]) -> None:
        """Queue the v3 OPEN packet and start waiting for the client's pings."""
        opts = self.engine.options
        handshake = {
            "sid": self.sid,
            "upgrades": upgrades,
            "pingInterval": int(opts.ping_interval * 1000),
            "pingTimeout": int(opts.ping_timeout * 1000),
        }
        self.state = OPEN
        self._queue.append(codec.OPEN + _json.dumps(handshake))
        self._schedule_ping(self._clock.time())
        self.flush()

    # -- sending -------------------------------------------------------------

    def send(self, packets: list[Encoded], volatile: bool = False) -> None:
        """Queue packets (binary MESSAGE data framed for v3) and write them when the transport allows."""
        super().send([p if isinstance(p, str) else self._framed(p) for p in packets], volatile)

    def send_one(self, packet: Encoded) -> None:
        """Queue one packet (binary MESSAGE data framed for v3)."""
        super().send_one(packet if isinstance(packet, str) else self._framed(packet))

    def _framed(self, data: bytes) -> Encoded:
        """A binary MESSAGE as this client takes it; for a shared packet, built once per form."""
        cache = getattr(data, "__dict__", None)
        if cache is None:
            return eio3_codec.binary_message(data, self.base64)
        key = "eio3-base64" if self.base64 else "eio3"
        framed: Encoded | None = cache.get(key)
        if framed is None:
            raw = eio3_codec.binary_message(bytes(data), self.base64)
            framed = cache[key] = SharedText(raw) if isinstance(raw, str) else SharedBytes(raw)
        return framed

    def payload(self, packets: list[Encoded]) -> str | bytes:
        """v3 framing: a binary body when the client takes binary and a packet is binary, else text."""
        return eio3_codec.encode_payload(packets, binary=not self.base64)

    def decode_payload(self, text: str) -> list[Encoded]:
        """The packets of a text POST body (``<length>:<packet>``, lengths in UTF-16 units)."""
        return eio3_codec.decode_text_payload(text)

    def decode_binary_payload(self, body: bytes) -> list[Encoded]:
        """The packets of a binary POST body (what a 2.x browser client with XHR2 sends)."""
        return eio3_codec.decode_binary_payload(body)

    # -- receiving -----------------------------------------------------------

    def receive(self, packet: Encoded) -> None:
        """Handle one wire packet: MESSAGE up, PING answered, CLOSE."""
        ptype, data = eio3_codec.decode_packet(packet)
        if ptype == codec.MESSAGE:
            self.on_message(data)
        elif ptype == codec.PING:
            self._heard_ping()
            self.send_one(codec.PONG + (data if isinstance(data, str) else ""))
        elif ptype == codec.CLOSE:
            self.abort("transport close", Close.ANSWER)
        elif ptype == codec.PONG:
            # The reference refuses a heartbeat in the wrong direction.
            self.abort("transport error")
        # OPEN, UPGRADE and NOOP on the current transport are ignored.

    # -- heartbeat: the client pings -------------------------------------------

    def _schedule_ping(self, now: float) -> None:
        """No server pings in v3: wait ``pingInterval + pingTimeout`` for the client's next one."""
        if self.state != OPEN:
            return
        opts = self.engine.options
        self._timeout_handle = self._clock.call_at(now + opts.ping_interval + opts.ping_timeout, self._on_ping_timeout)

    def _heard_ping(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        self._schedule_ping(self._clock.time())


#: Engine.IO v3, what socket.io-client 2.x speaks (served with ``allow_eio3``).
ENGINE_IO_3 = Generation("Engine.IO v3", Eio3Session, new_id, eio_version="3")
Eio3Session.generation = ENGINE_IO_3
