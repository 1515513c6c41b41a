"""The msgpack parser: the packet format of the npm package ``socket.io-msgpack-parser`` 3.x.

Choose it with ``Server(parser="msgpack")`` (the ``msgpack`` extra:
``pip install tornad_io[msgpack]``); clients then need that parser too
(``io(url, {parser: require("socket.io-msgpack-parser")})``).

The format. Every packet is *one* binary Engine.IO message holding a msgpack
map with the keys ``type`` (0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK,
4 CONNECT_ERROR; there are no BINARY types), ``data`` (left out when there is
none), ``nsp`` (always there, ``"/"`` included) and ``id`` (left out when
there is none). Binary values travel inside the map, as msgpack ``bin``: no
placeholders, no attachments. This module writes the keys in that order (a
Node server writes some packets' keys in another order; decoders do not mind)
and reads the map whatever its order, ignoring keys it does not know (the
JavaScript client adds ``options``).

Values, as the npm parser's msgpack library (``notepack.io`` 2.2) writes and
reads them:

- ``str``, ``int`` (64 bits; larger ones go as a float, as JavaScript would read
  their JSON digits), ``float``, ``bool``, ``None``, ``list``/``tuple``,
  ``dict`` and ``bytes`` (also ``bytearray``, ``memoryview``) are native (a
  ``float`` is always a float 64, where notepack writes ``2.0`` as the integer
  2: both read back as the same JavaScript number);
  ``set``, ``Decimal``, ``UUID``, enums, dataclasses, ``date`` and ``time``
  become what the JSON parser would make of them (a list, a number, text, the
  value, a map, ISO text).
- ``datetime`` goes as notepack's Date (ext type 0, 8 bytes of milliseconds
  since the epoch; a naive one is taken as UTC), which a JavaScript client
  reads as a ``Date``; a Date, or a msgpack timestamp (ext type -1), arrives as
  an aware ``datetime`` in UTC.
- JavaScript's ``undefined`` arrives as notepack's ext type 0 of one byte: the
  key is left out of a map and the item is ``None`` in a list, as
  ``JSON.stringify`` would have it. Node's ``ArrayBuffer`` and typed arrays
  arrive as ext type 0 of another length, read as ``bytes``; other extension
  types as ``[type, bytes]``, as notepack reads them.

Decoding follows the npm parser's checks (a map, an integer type 0 to 4, a
string namespace, an integer id if any, CONNECT data a map or nothing,
DISCONNECT data nothing, CONNECT_ERROR data a string or a map, EVENT and ACK
data a list) and adds the JSON parser's: an EVENT names its event with a
string that is not reserved (or a number), an id is below 10\\ :sup:`16`,
map keys are strings, nesting stops at 1 024 levels. Anything else raises
:class:`~tornad_io.exceptions.ProtocolError`, and so does a text message. One
leniency: a null CONNECT or DISCONNECT payload is read as none (the npm parser
refuses it; python-socketio's msgpack client, ``AsyncClient(serializer="msgpack")``,
sends it).

Decoding is two-speed: the C unpacker of the ``msgpack`` package reads every
message, except one that holds notepack's ext type 0, whose meaning depends on
the encoding byte the C unpacker does not report (a one-byte ``fixext`` is
``undefined``, an eight-byte one a Date, an ``ext 8/16/32`` an ArrayBuffer):
those are read again by the pure-Python reader here, which follows notepack
byte by byte. The JavaScript client sends one when it connects without
``auth``; ``tests/test_msgpack_parser.py`` checks both readers agree on
everything else.

Sans-IO, like the JSON codec.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import struct
import uuid
from typing import Any

try:
    import msgpack
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "the msgpack parser needs the msgpack package: pip install 'tornad_io[msgpack]'", name="msgpack"
    ) from error

from ..exceptions import ProtocolError
from . import codec
from .parsers import MAX_DEPTH, check_packet

__all__ = ["MsgpackParser", "MsgpackDecoder", "unpack"]

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_ONE_MS = datetime.timedelta(milliseconds=1)

# BINARY_EVENT and BINARY_ACK do not exist in this format: binary values are native.
_WIRE_TYPE = {
    codec.CONNECT: codec.CONNECT,
    codec.DISCONNECT: codec.DISCONNECT,
    codec.EVENT: codec.EVENT,
    codec.ACK: codec.ACK,
    codec.CONNECT_ERROR: codec.CONNECT_ERROR,
    codec.BINARY_EVENT: codec.EVENT,
    codec.BINARY_ACK: codec.ACK,
}


class MsgpackParser:
    """The format of ``socket.io-msgpack-parser`` 3.x: one binary message per packet (see the module)."""

    __slots__ = ()

    #: The parser's name.
    name = "msgpack"

    def encode(self, packet: codec.Packet) -> list[str | bytes]:
        """*packet* as one binary message: the msgpack map ``{type, data, nsp, id}``.

        Raises :exc:`TypeError` for a value msgpack cannot carry.
        """
        wire: dict[str, Any] = {"type": _WIRE_TYPE[packet.type]}
        if packet.data is not None:
            wire["data"] = packet.data
        wire["nsp"] = packet.nsp
        if packet.id is not None:
            wire["id"] = packet.id
        return [_pack(wire)]

    def decoder(self, max_attachments: int = 0, max_attachment_bytes: int | None = None) -> MsgpackDecoder:
        """A :class:`MsgpackDecoder`; the attachment limits do not apply (a packet is one message,
        which the transports already cap at ``max_http_buffer_size``)."""
        return MsgpackDecoder()

    def __repr__(self) -> str:
        return "MsgpackParser()"


class MsgpackDecoder:
    """Reads the packets of one connection: each binary message is one packet."""

    __slots__ = ()

    def add(self, message: str | bytes) -> codec.Packet:
        """Decode one message; raises :class:`~tornad_io.exceptions.ProtocolError` on anything malformed."""
        if isinstance(message, str):
            raise ProtocolError("text message: msgpack packets are binary")
        return _packet(unpack(message))


# -- encoding --------------------------------------------------------------------------


def _default(value: Any) -> Any:
    """What msgpack does not carry natively, as the JSON parser would write it (datetimes as Dates)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        milliseconds = (value - _EPOCH) // _ONE_MS
        return msgpack.ExtType(0, milliseconds.to_bytes(8, "big", signed=True))
    if isinstance(value, int):  # beyond 64 bits (msgpack hands those here): what JavaScript reads
        return float(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise TypeError(f"cannot encode {value!r}")
        return float(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    raise TypeError(f"Object of type {type(value).__name__} is not msgpack serializable")


def _pack(value: Any) -> bytes:
    try:
        packed: bytes = msgpack.packb(value, default=_default, use_bin_type=True, datetime=False)
    except (ValueError, OverflowError) as error:  # nesting beyond msgpack's limit, an int beyond a float's
        raise TypeError(f"cannot encode as msgpack: {error}") from error
    return packed


# -- decoding --------------------------------------------------------------------------


class _NeedsExactReader(Exception):
    """notepack's ext type 0 is in the message: the C unpacker cannot tell what it is."""


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    for key, _ in pairs:
        if key.__class__ is not str:
            raise ProtocolError("map keys must be strings")
    return dict(pairs)


def _ext(code: int, data: bytes) -> Any:
    if code == 0:
        raise _NeedsExactReader
    return [code, data]


def unpack(message: bytes) -> Any:
    """The value in one msgpack message, read as notepack 2.2 reads it (see the module).

    Raises :class:`~tornad_io.exceptions.ProtocolError` (only) on malformed input.
    """
    try:
        return msgpack.unpackb(message, object_pairs_hook=_pairs, ext_hook=_ext, timestamp=3)
    except _NeedsExactReader:
        return _unpack_exact(bytes(message))
    except ProtocolError:
        raise
    except Exception as error:  # the C unpacker's errors: ValueError and its kin, OverflowError
        raise ProtocolError(f"invalid msgpack: {error}") from error


def _integer(value: Any) -> int | None:
    """*value* if it is an integer as JavaScript's ``Number.isInteger`` sees it, else None."""
    if value.__class__ is int:
        return value
    if value.__class__ is float and value.is_integer():
        return int(value)
    return None


def _packet(value: Any) -> codec.Packet:
    if value.__class__ is not dict:
        raise ProtocolError("invalid packet type")
    ptype = _integer(value.get("type"))
    if ptype is None or not codec.CONNECT <= ptype <= codec.CONNECT_ERROR:
        raise ProtocolError("invalid packet type")
    nsp = value.get("nsp")
    if nsp.__class__ is not str:
        raise ProtocolError("invalid namespace")
    packet_id = None
    if "id" in value:
        packet_id = _integer(value["id"])
        if packet_id is None:
            raise ProtocolError("invalid packet id")
    data = value.get("data")
    # python-socketio's msgpack client writes a null CONNECT (no auth) or DISCONNECT payload
    # where the npm parser leaves the key out (and refuses null): read as none.
    has_data = "data" in value and not (data is None and ptype <= codec.DISCONNECT)
    check_packet(ptype, nsp, data, packet_id, has_data)
    return codec.Packet(ptype, nsp, data, packet_id)


# The pure-Python reader: notepack 2.2's decoder, iterative, bounded by the message and MAX_DEPTH.

_UNDEFINED: Any = object()  # JavaScript's undefined: dropped from maps, None in lists
_NO_KEY: Any = object()
# fixed-size scalars: encoding byte -> (struct, width)
_SCALARS = {
    0xCA: (struct.Struct(">f"), 4),
    0xCB: (struct.Struct(">d"), 8),
    0xCC: (struct.Struct(">B"), 1),
    0xCD: (struct.Struct(">H"), 2),
    0xCE: (struct.Struct(">I"), 4),
    0xCF: (struct.Struct(">Q"), 8),
    0xD0: (struct.Struct(">b"), 1),
    0xD1: (struct.Struct(">h"), 2),
    0xD2: (struct.Struct(">i"), 4),
    0xD3: (struct.Struct(">q"), 8),
}
# length prefixes: encoding byte -> (kind, width of the length)
_SIZED = {
    0xC4: ("bin", 1),
    0xC5: ("bin", 2),
    0xC6: ("bin", 4),
    0xC7: ("ext", 1),
    0xC8: ("ext", 2),
    0xC9: ("ext", 4),
    0xD9: ("str", 1),
    0xDA: ("str", 2),
    0xDB: ("str", 4),
    0xDC: ("array", 2),
    0xDD: ("array", 4),
    0xDE: ("map", 2),
    0xDF: ("map", 4),
}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _take(buf: bytes, pos: int, size: int) -> bytes:
    if size > len(buf) - pos:
        raise ProtocolError("truncated msgpack")
    return buf[pos : pos + size]


def _timestamp(data: bytes) -> datetime.datetime:
    """A msgpack timestamp (ext type -1) as the C unpacker reads it with ``timestamp=3``."""
    if len(data) == 4:
        seconds, nanoseconds = int.from_bytes(data, "big"), 0
    elif len(data) == 8:
        both = int.from_bytes(data, "big")
        seconds, nanoseconds = both & 0x3_FFFF_FFFF, both >> 34
    elif len(data) == 12:
        nanoseconds = int.from_bytes(data[:4], "big")
        seconds = int.from_bytes(data[4:], "big", signed=True)
    else:
        raise ProtocolError(f"invalid timestamp (length {len(data)})")
    if nanoseconds > 999_999_999:
        raise ProtocolError("invalid timestamp (nanoseconds)")
    try:
        return _EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanoseconds // 1000)
    except OverflowError as error:
        raise ProtocolError("timestamp out of range") from error


def _extension(code: int, data: bytes, fixed: bool) -> Any:
    if code == 0:
        if not fixed:
            return data  # an ArrayBuffer or typed array from Node
        if len(data) == 1:
            return _UNDEFINED
        if len(data) == 8:
            try:
                return _EPOCH + datetime.timedelta(milliseconds=int.from_bytes(data, "big", signed=True))
            except OverflowError as error:
                raise ProtocolError("date out of range") from error
    elif code == -1:
        return _timestamp(data)
    return [code, data]


def _unpack_exact(buf: bytes) -> Any:
    """Read *buf* as notepack 2.2 does, byte by byte (containers on an explicit stack)."""
    end = len(buf)
    pos = 0
    # one frame per open container: [container, items still due, is a map, key waiting for its value]
    stack: list[list[Any]] = []
    while True:
        if pos >= end:
            raise ProtocolError("truncated msgpack")
        byte = buf[pos]
        pos += 1
        size = -1  # the item count of a container that opens here
        is_map = False
        value: Any
        if byte < 0x80:
            value = byte
        elif byte < 0x90:
            size, is_map = byte & 0x0F, True
        elif byte < 0xA0:
            size = byte & 0x0F
        elif byte < 0xC0:
            value = _take(buf, pos, byte & 0x1F)
            pos += byte & 0x1F
            value = _utf8(value)
        elif byte >= 0xE0:
            value = byte - 0x100
        elif byte == 0xC0:
            value = None
        elif byte == 0xC2:
            value = False
        elif byte == 0xC3:
            value = True
        elif byte in _SCALARS:
            shape, width = _SCALARS[byte]
            value = shape.unpack(_take(buf, pos, width))[0]
            pos += width
        elif byte in _FIXEXT:
            width = _FIXEXT[byte]
            head = _take(buf, pos, 1 + width)
            pos += 1 + width
            value = _extension(int.from_bytes(head[:1], "big", signed=True), head[1:], True)
        elif byte in _SIZED:
            kind, width = _SIZED[byte]
            length = int.from_bytes(_take(buf, pos, width), "big")
            pos += width
            if kind == "array":
                size = length
            elif kind == "map":
                size, is_map = length, True
            elif kind == "ext":
                code = int.from_bytes(_take(buf, pos, 1), "big", signed=True)
                value = _extension(code, _take(buf, pos + 1, length), False)
                pos += 1 + length
            else:
                value = _take(buf, pos, length)
                pos += length
                if kind == "str":
                    value = _utf8(value)
        else:  # 0xC1, never used
            raise ProtocolError(f"invalid msgpack byte 0x{byte:02x}")
        if size >= 0:
            if len(stack) >= MAX_DEPTH:
                raise ProtocolError("msgpack nested too deeply")
            if size:
                if (2 * size if is_map else size) > end - pos:  # every item takes a byte at least
                    raise ProtocolError("truncated msgpack")
                stack.append([{} if is_map else [], size, is_map, _NO_KEY])
                continue
            value = {} if is_map else []
        # the value is complete: put it in its container, closing those it fills
        while True:
            if not stack:
                if pos != end:
                    raise ProtocolError(f"{end - pos} trailing bytes")
                return value
            frame = stack[-1]
            container = frame[0]
            if frame[2]:
                key = frame[3]
                if key is _NO_KEY:
                    if value.__class__ is not str:
                        raise ProtocolError("map keys must be strings")
                    frame[3] = value
                    break
                frame[3] = _NO_KEY
                if value is _UNDEFINED:
                    container.pop(key, None)
                else:
                    container[key] = value
            else:
                container.append(None if value is _UNDEFINED else value)
            frame[1] -= 1
            if frame[1]:
                break
            stack.pop()
            value = container


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError("invalid UTF-8 in msgpack string") from error
