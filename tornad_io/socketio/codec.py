"""Socket.IO v5 packets, with binary attachments, sans-IO.

Wire form of a packet: ``<type>[<attachments>-][<nsp>,][<id>][<json>]``;
binary values travel as separate Engine.IO binary messages after the text,
and the JSON holds ``{"_placeholder": true, "num": n}`` where they were.
"""

from __future__ import annotations

from typing import Any

from .. import _json
from ..exceptions import PayloadTooLarge, ProtocolError

CONNECT = 0
DISCONNECT = 1
EVENT = 2
ACK = 3
CONNECT_ERROR = 4
BINARY_EVENT = 5
BINARY_ACK = 6

#: Event names a client may not send, nor the server emit.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

_BINARY = (bytes, bytearray, memoryview)
_MAX_ID_DIGITS = 16  # ids are JavaScript numbers: beyond this they lose precision anyway


class Packet:
    """A decoded Socket.IO packet."""

    __slots__ = ("type", "nsp", "data", "id")

    def __init__(self, type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> None:
        self.type = type
        self.nsp = nsp
        self.data = data
        self.id = id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return (self.type, self.nsp, self.data, self.id) == (other.type, other.nsp, other.data, other.id)

    def __repr__(self) -> str:
        return f"Packet(type={self.type}, nsp={self.nsp!r}, data={self.data!r}, id={self.id})"


# -- encoding --------------------------------------------------------------------


def has_binary(value: Any) -> bool:
    """Whether *value* holds bytes anywhere (lists, tuples, dict values)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _BINARY):
            return True
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False


def _deconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, _BINARY):
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(value, (list, tuple)):
        return [_deconstruct(v, buffers) for v in value]
    if isinstance(value, dict):
        return {k: _deconstruct(v, buffers) for k, v in value.items()}
    return value


def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[str | bytes]:
    """Encode a packet as its text part followed by its binary attachments.

    EVENT and ACK packets whose data holds bytes are sent as BINARY_EVENT and
    BINARY_ACK.
    """
    buffers: list[bytes] = []
    if data is not None and type in (EVENT, ACK) and has_binary(data):
        data = _deconstruct(data, buffers)
        type = BINARY_EVENT if type == EVENT else BINARY_ACK
    head = str(type)
    if buffers:
        head += f"{len(buffers)}-"
    if nsp != "/":
        head += nsp + ","
    if id is not None:
        head += str(id)
    if data is not None:
        head += _json.dumps(data)
    if buffers:
        return [head, *buffers]
    return [head]


# -- decoding --------------------------------------------------------------------


def _payload_valid(type: int, payload: Any) -> bool:
    if type == CONNECT:
        return isinstance(payload, dict)
    if type == DISCONNECT:
        return False
    if type == CONNECT_ERROR:
        return isinstance(payload, (str, dict))
    if type in (EVENT, BINARY_EVENT):
        if not isinstance(payload, list) or not payload:
            return False
        name = payload[0]
        if isinstance(name, bool):
            return False
        return isinstance(name, (int, float)) or (isinstance(name, str) and name not in RESERVED_EVENTS)
    return isinstance(payload, list)  # ACK, BINARY_ACK


def decode_text(text: str, max_attachments: int = 100) -> tuple[Packet, int]:
    """Decode the text part of a packet; return it and its attachment count."""
    if not text:
        raise ProtocolError("empty packet")
    first = text[0]
    if first < "0" or first > "6":
        raise ProtocolError(f"unknown packet type {first!r}")
    type = ord(first) - 48
    i = 1
    n = len(text)
    attachments = 0
    if type in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", 1)
        count = text[1:dash] if dash > 0 else ""
        if not count.isdigit() or not count.isascii() or len(count) > 6:
            raise ProtocolError("illegal attachments")
        attachments = int(count)
        if attachments > max_attachments:
            raise ProtocolError(f"too many attachments ({attachments} > {max_attachments})")
        i = dash + 1
    nsp = "/"
    if i < n and text[i] == "/":
        comma = text.find(",", i)
        if comma < 0:
            nsp = text[i:]
            i = n
        else:
            nsp = text[i:comma]
            i = comma + 1
    packet_id = None
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    if i > start:
        if i - start > _MAX_ID_DIGITS:
            raise ProtocolError("ack id too long")
        packet_id = int(text[start:i])
    data = None
    if i < n:
        try:
            payload = _json.loads(text[i:])
        except ValueError as exc:
            raise ProtocolError("invalid payload") from exc
        if not _payload_valid(type, payload):
            raise ProtocolError("invalid payload")
        data = payload
    elif type in (EVENT, BINARY_EVENT, ACK, BINARY_ACK):
        raise ProtocolError("missing payload")
    return Packet(type, nsp, data, packet_id), attachments


def _placeholder(value: dict[Any, Any], buffers: list[bytes]) -> bytes:
    num = value.get("num")
    if type(num) is int and 0 <= num < len(buffers):
        return buffers[num]
    raise ProtocolError("illegal attachments")


def _reconstruct(value: Any, buffers: list[bytes]) -> Any:
    """Put the attachments in place of their placeholders.

    Iterative, in place (the value was just decoded, nobody else holds it): a
    client's nesting depth cannot exhaust the interpreter's recursion limit.
    """
    if isinstance(value, dict) and value.get("_placeholder") is True:
        return _placeholder(value, buffers)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, dict) and v.get("_placeholder") is True:
                    item[i] = _placeholder(v, buffers)
                elif isinstance(v, (list, dict)):
                    stack.append(v)
        elif isinstance(item, dict):
            for k, v in item.items():
                if isinstance(v, dict) and v.get("_placeholder") is True:
                    item[k] = _placeholder(v, buffers)
                elif isinstance(v, (list, dict)):
                    stack.append(v)
    return value


class Decoder:
    """Turns a stream of Engine.IO messages into packets (binary ones reassembled)."""

    __slots__ = ("max_attachments", "max_attachment_bytes", "_pending", "_expected", "_buffers", "_size")

    def __init__(self, max_attachments: int = 100, max_attachment_bytes: int | None = None) -> None:
        self.max_attachments = max_attachments
        #: Most bytes all attachments of one packet may add up to (None: no cap).
        self.max_attachment_bytes = max_attachment_bytes
        self._pending: Packet | None = None
        self._expected = 0
        self._buffers: list[bytes] = []
        self._size = 0

    def add(self, message: str | bytes) -> Packet | None:
        """Feed one message; return a packet once it is complete.

        Raises :class:`ProtocolError` on anything malformed, including a
        binary message nobody announced or text while attachments are due.
        """
        if isinstance(message, str):
            if self._pending is not None:
                raise ProtocolError("got plaintext data when reconstructing a packet")
            packet, attachments = decode_text(message, self.max_attachments)
            if attachments == 0:
                if packet.type in (BINARY_EVENT, BINARY_ACK):
                    packet.data = _reconstruct(packet.data, [])
                return packet
            self._pending = packet
            self._expected = attachments
            self._buffers = []
            self._size = 0
            return None
        if self._pending is None:
            raise ProtocolError("got binary data when not reconstructing a packet")
        self._size += len(message)
        cap = self.max_attachment_bytes
        if cap is not None and self._size > cap:
            self._pending, self._buffers, self._expected = None, [], 0
            raise PayloadTooLarge(f"attachments of one packet above {cap} bytes")
        self._buffers.append(bytes(message))
        if len(self._buffers) < self._expected:
            return None
        packet, buffers = self._pending, self._buffers
        self._pending, self._buffers, self._expected = None, [], 0
        packet.data = _reconstruct(packet.data, buffers)
        return packet
