"""Engine.IO v3 packets and HTTP long-polling payloads, sans-IO.

What socket.io-client 2.x (engine.io-client 3.x) speaks. The packet types are
those of v4; what differs is how they are framed:

- a binary packet carries its type in its first byte (``b"\\x04" + data`` for a
  binary MESSAGE), on a WebSocket as in a payload;
- where binary cannot travel (the client asked with ``b64=1``, or JSONP), a
  binary packet is the text ``b`` + its type digit + base64 of its data;
- a text polling payload is ``<length>:<packet>`` repeated, the length counted
  in UTF-16 code units as JavaScript's ``String.length`` counts them;
- a binary polling payload (a client with XHR2 sending or receiving binary) is,
  for each packet, ``0`` (text) or ``1`` (binary), the decimal digits of its
  length as bytes 0-9, ``0xFF``, then the packet: a text packet as UTF-8, a
  binary one with its type byte.

Here a v3 *wire packet* is a ``str`` (a text packet, possibly a ``b``-prefixed
base64 one) or ``bytes`` (a binary packet whose first byte is its type).
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from typing import Callable, Iterable, Union

from ..exceptions import ProtocolError
from .codec import MESSAGE, PACKET_TYPES

#: One v3 wire packet: text (``str``) or binary with its type byte first (``bytes``).
WirePacket = Union[str, bytes]

_MAX_LENGTH_DIGITS = 10  # a payload longer than 9 999 999 999 units is refused before it is read
_BINARY_MESSAGE = b"\x04"


def utf16_length(text: str) -> int:
    """The length of *text* in UTF-16 code units (JavaScript's ``String.length``)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# -- packets ---------------------------------------------------------------------


def binary_message(data: bytes, base64: bool) -> WirePacket:
    """A binary MESSAGE as v3 sends it: ``b"\\x04" + data``, or ``"b4" + base64`` where binary cannot go."""
    if base64:
        return "b" + MESSAGE + b64encode(data).decode("ascii")
    return _BINARY_MESSAGE + data


def decode_packet(packet: WirePacket) -> tuple[str, str | bytes]:
    """Split one wire packet into ``(type, data)``; binary data (raw or base64) comes back as ``bytes``."""
    if isinstance(packet, (bytes, bytearray, memoryview)):
        raw = bytes(packet)
        if not raw or raw[0] > 6:
            raise ProtocolError("invalid binary packet type")
        return chr(48 + raw[0]), raw[1:]
    if not packet:
        raise ProtocolError("empty packet")
    first = packet[0]
    if first == "b":
        if len(packet) < 2 or packet[1] not in PACKET_TYPES:
            raise ProtocolError(f"invalid packet type in {packet[:16]!r}")
        try:
            return packet[1], b64decode(packet[2:], validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise ProtocolError("invalid base64 packet") from exc
    if first not in PACKET_TYPES:
        raise ProtocolError(f"invalid packet type in {packet[:16]!r}")
    return first, packet[1:]


def _as_text(packet: WirePacket) -> str:
    if isinstance(packet, str):
        return packet
    if not packet:
        raise ValueError("a binary packet needs its type byte")
    return "b" + chr(48 + packet[0]) + b64encode(packet[1:]).decode("ascii")


def _checked(packet: str) -> WirePacket:
    """A text packet of a payload, validated; a base64 one becomes a binary wire packet."""
    ptype, data = decode_packet(packet)
    if isinstance(data, bytes):
        return bytes((ord(ptype) - 48,)) + data
    return packet


# -- text payloads ----------------------------------------------------------------


def encode_text_payload(packets: Iterable[WirePacket]) -> str:
    """``<length>:<packet>`` for each packet, binary ones as ``b<type><base64>``."""
    parts = []
    for packet in packets:
        text = _as_text(packet)
        parts.append(f"{utf16_length(text)}:{text}")
    return "".join(parts)


def decode_text_payload(payload: str, max_packets: int = 10_000) -> list[WirePacket]:
    """Split a text payload into wire packets (base64 ones decoded to binary packets).

    A missing or bad length, a length that runs past the end or splits a
    character, an unknown packet type, bad base64 or more than *max_packets*
    packets raise ``ProtocolError``. A zero-length packet is skipped, as the
    reference does.
    """
    if not payload:
        raise ProtocolError("empty payload")
    if payload.isascii():  # one code unit per character: slice the string itself
        return _split_text(lambda span, whole: payload[span], len(payload), max_packets)
    units = payload.encode("utf-16-le", "surrogatepass")

    def take(span: slice, whole: bool) -> str:
        start, stop = span.start, span.stop
        if whole and stop < len(units) // 2 and _is_pair(_unit(units, stop - 1), _unit(units, stop)):
            raise ProtocolError("packet length ends inside a character")
        return units[2 * start : 2 * stop].decode("utf-16-le", "surrogatepass")

    return _split_text(take, len(units) // 2, max_packets)


def _unit(units: bytes, index: int) -> int:
    return units[2 * index] | units[2 * index + 1] << 8


def _is_pair(high: int, low: int) -> bool:
    """Whether two UTF-16 code units are the halves of one character."""
    return 0xD800 <= high < 0xDC00 <= low < 0xE000


def _split_text(take: Callable[[slice, bool], str], end: int, max_packets: int) -> list[WirePacket]:
    """The packets of a text payload of *end* code units.

    ``take(span, whole)`` reads a span of code units; with *whole*, a span that ends
    between the two halves of a character is refused.
    """
    packets: list[WirePacket] = []
    i = 0
    while i < end:
        head = take(slice(i, min(end, i + _MAX_LENGTH_DIGITS + 1)), False)
        colon = head.find(":")
        digits = head[:colon] if colon > 0 else ""
        if not digits.isascii() or not digits.isdigit():
            raise ProtocolError("invalid packet length")
        length = int(digits)
        i += colon + 1
        if length == 0:
            continue
        if i + length > end:
            raise ProtocolError("payload shorter than its packet length")
        if len(packets) >= max_packets:
            raise ProtocolError("too many packets in payload")
        packets.append(_checked(take(slice(i, i + length), True)))
        i += length
    return packets


# -- binary payloads -----------------------------------------------------------------


def _length_header(kind: int, length: int) -> bytes:
    return bytes((kind, *(ord(d) - 48 for d in str(length)), 0xFF))


def encode_binary_payload(packets: Iterable[WirePacket]) -> bytes:
    """The binary payload of *packets*: text ones as UTF-8, binary ones with their type byte."""
    parts: list[bytes] = []
    for packet in packets:
        if isinstance(packet, str):
            raw = packet.encode("utf-8", "surrogatepass")
            parts.append(_length_header(0, len(raw)))
        else:
            raw = bytes(packet)
            parts.append(_length_header(1, len(raw)))
        parts.append(raw)
    return b"".join(parts)


def decode_binary_payload(payload: bytes, max_packets: int = 10_000) -> list[WirePacket]:
    """Split a binary payload into wire packets; anything malformed raises ``ProtocolError``."""
    if not payload:
        raise ProtocolError("empty payload")
    packets: list[WirePacket] = []
    i = 0
    end = len(payload)
    while i < end:
        kind = payload[i]
        if kind > 1:
            raise ProtocolError("invalid binary payload header")
        stop = payload.find(b"\xff", i + 1, i + 2 + _MAX_LENGTH_DIGITS)
        digits = payload[i + 1 : stop] if stop >= 0 else b""
        if not digits or any(d > 9 for d in digits):
            raise ProtocolError("invalid packet length")
        length = int("".join(chr(48 + d) for d in digits))
        start = stop + 1
        raw = payload[start : start + length]
        if len(raw) < length or not raw:
            raise ProtocolError("payload shorter than its packet length")
        i = start + length
        if len(packets) >= max_packets:
            raise ProtocolError("too many packets in payload")
        if kind == 1:
            decode_packet(raw)  # the type byte is checked
            packets.append(raw)
            continue
        try:
            text = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise ProtocolError("invalid UTF-8 in payload") from exc
        packets.append(_checked(text))
    return packets


def encode_payload(packets: list[WirePacket], binary: bool) -> str | bytes:
    """A polling response: a binary payload when *binary* is allowed and a packet needs it, else text."""
    if binary and any(not isinstance(p, str) for p in packets):
        return encode_binary_payload(packets)
    return encode_text_payload(packets)
