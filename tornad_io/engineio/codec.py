"""Engine.IO v4 packets and HTTP long-polling payloads, sans-IO.

An encoded packet is what one WebSocket message carries: a ``str`` for a text
packet (type digit, then data) or ``bytes`` for a binary MESSAGE. Sessions keep
their outbound queue as encoded packets, so a broadcast is encoded once and the
same objects are handed to every recipient.

A polling payload is packets joined by the record separator ``\\x1e``, binary
ones written as ``b`` plus base64.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from typing import Iterable, Union

from ..exceptions import ProtocolError

OPEN = "0"
CLOSE = "1"
PING = "2"
PONG = "3"
MESSAGE = "4"
UPGRADE = "5"
NOOP = "6"

PACKET_TYPES = frozenset("0123456")
SEPARATOR = "\x1e"

#: One encoded packet: ``str`` (text packet) or ``bytes`` (binary MESSAGE).
Encoded = Union[str, bytes]

# Ready-made control packets: sessions send these often and they never change.
PING_PACKET = PING
NOOP_PACKET = NOOP
CLOSE_PACKET = CLOSE


class SharedText(str):
    """A text packet handed to many sessions (a broadcast): transports may cache
    its wire form in the instance ``__dict__`` (key ``"ws"``), built once."""


class SharedBytes(bytes):
    """A binary packet handed to many sessions, like :class:`SharedText`."""


def shared(packets: list[Encoded]) -> list[Encoded]:
    """The same packets, marked as shared so their wire forms are built once."""
    return [SharedText(p) if isinstance(p, str) else SharedBytes(p) for p in packets]


def uncompressed(packets: list[Encoded]) -> list[Encoded]:
    """The same packets, marked to go without WebSocket compression (``compress(False)``).

    Shared packets are marked in place; the others become shared ones first.
    """
    marked: list[Encoded] = []
    for packet in packets:
        if type(packet) is not SharedText and type(packet) is not SharedBytes:
            packet = SharedText(packet) if isinstance(packet, str) else SharedBytes(packet)
        packet.__dict__["compress"] = False
        marked.append(packet)
    return marked


def compressible(packet: Encoded) -> bool:
    """Whether *packet* may be compressed (not marked by :func:`uncompressed`)."""
    return getattr(packet, "__dict__", _NO_MARKS).get("compress", True) is not False


_NO_MARKS: dict[str, object] = {}


def decode_packet(packet: Encoded) -> tuple[str, str | bytes]:
    """Split one packet into ``(type, data)``; a binary packet is a MESSAGE."""
    if isinstance(packet, (bytes, bytearray, memoryview)):
        return MESSAGE, bytes(packet)
    if not packet or packet[0] not in PACKET_TYPES:
        raise ProtocolError(f"invalid packet type in {packet[:16]!r}")
    return packet[0], packet[1:]


def encode_payload(packets: Iterable[Encoded]) -> str:
    """Join encoded packets into one polling payload."""
    parts = []
    for packet in packets:
        if isinstance(packet, str):
            parts.append(packet)
        else:
            parts.append("b" + b64encode(packet).decode("ascii"))
    return SEPARATOR.join(parts)


def decode_payload(payload: str, max_packets: int = 10_000) -> list[Encoded]:
    """Split a polling payload into packets, decoding ``b``-prefixed base64.

    Every packet is checked: an empty or unknown-type packet, bad base64, or
    more than *max_packets* packets raise ``ProtocolError``.
    """
    if not payload:
        raise ProtocolError("empty payload")
    raw = payload.split(SEPARATOR, max_packets)
    if len(raw) > max_packets:
        raise ProtocolError("too many packets in payload")
    packets: list[Encoded] = []
    for item in raw:
        if not item:
            raise ProtocolError("empty packet in payload")
        if item[0] == "b":
            try:
                packets.append(b64decode(item[1:], validate=True))
            except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
                raise ProtocolError("invalid base64 packet") from exc
        elif item[0] in PACKET_TYPES:
            packets.append(item)
        else:
            raise ProtocolError(f"invalid packet type in {item[:16]!r}")
    return packets
