"""The Redis Streams format of Node's ``@socket.io/redis-streams-adapter`` 0.3.x, sans I/O.

Stream entries (their fields and ``data`` encoding), session values, stream names with
``streamCount`` > 1, and the rule that says whether a stored broadcast reached a session's
rooms: pure functions that :mod:`.streams` uses and tests compare with Node's bytes.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import msgpack

from ..socketio import codec
from .base import _dumps, _plain
from .envelope import BROADCAST, BROADCAST_ACK, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE

_OFFSET = re.compile(r"[0-9]+-[0-9]+")
# The types whose data Node writes as base64 msgpack when it holds binary (the others are always JSON).
_MAY_CARRY_BINARY = frozenset(
    {BROADCAST, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_ACK}
)

#: A stream entry id ``<ms>-<seq>`` as a pair of integers, for comparisons.
EntryId = tuple[int, int]


def entry_id(text: str) -> EntryId:
    """``"1795613668723-0"`` as ``(1795613668723, 0)`` (ids compare as such, not as text)."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def is_offset(text: str) -> bool:
    """Whether *text* has the form of a stream entry id (Node's check before it restores)."""
    return _OFFSET.fullmatch(text) is not None


def _buffer_json(value: Any) -> Any:
    """What ``JSON.stringify`` makes of a Node Buffer (for ``only_plaintext``)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": "Buffer", "data": list(bytes(value))}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def hash_code(name: str) -> int:
    """Java's ``String.hashCode`` over UTF-16 code units, as Node's ``hashCode`` (a signed 32-bit int)."""
    value = 0
    units = name.encode("utf-16-le")
    for i in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[i : i + 2], "little")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def stream_for(nsp: str, stream_name: str, stream_count: int) -> str:
    """The stream a namespace writes to: Node's ``computeStreamName`` (JavaScript's ``%``, so the
    index is negative when the hash is: ``socket.io--1``, which Node's servers never read)."""
    if stream_count == 1:
        return stream_name
    code = hash_code(nsp)
    index = abs(code) % stream_count
    return f"{stream_name}-{-index if code < 0 else index}"


def encode_entry(uid: str, nsp: str, kind: int, data: Any, only_plaintext: bool = False) -> dict[str, str]:
    """The fields of a stream entry, in Node's order: ``uid``, ``nsp``, ``type`` and, if there
    is data, ``data`` (JSON; base64 msgpack for a type that may carry binary and does, unless
    *only_plaintext*: then binary is written as Node's JSON of a Buffer)."""
    fields = {"uid": uid, "nsp": nsp, "type": str(kind)}
    if data:
        data = _plain(data)
        if not only_plaintext and kind in _MAY_CARRY_BINARY and codec.has_binary(data):
            fields["data"] = base64.b64encode(msgpack.packb(data)).decode("ascii")
        elif only_plaintext:
            fields["data"] = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_buffer_json)
        else:
            fields["data"] = _dumps(data)
    return fields


def decode_entry(fields: dict[str, str]) -> dict[str, Any] | None:
    """A stream entry as an envelope ``{type, data, uid, nsp}``, or None if it has no namespace."""
    if not fields.get("nsp"):
        return None
    envelope: dict[str, Any] = {"type": int(fields.get("type", "0")), "uid": fields.get("uid"), "nsp": fields["nsp"]}
    raw = fields.get("data")
    if raw:
        envelope["data"] = json.loads(raw) if raw.startswith("{") else msgpack.unpackb(base64.b64decode(raw), raw=False)
    return envelope


def encode_session(sid: str, pid: str, rooms: list[str], data: Any) -> str:
    """A session as Node keeps it: base64 of msgpack ``{sid, pid, rooms, data}``."""
    return base64.b64encode(msgpack.packb({"sid": sid, "pid": pid, "rooms": rooms, "data": _plain(data)})).decode()


def next_offset(offset: str) -> str:
    """The smallest id after *offset* (an exclusive start without Redis 6.2's ``(``)."""
    ms, seq = entry_id(offset)
    return f"{ms}-{seq + 1}"


def reaches(rooms: list[str], opts: dict[str, Any]) -> bool:
    """Node's ``shouldIncludePacket``: a socket in *rooms* was among the broadcast's recipients."""
    selected = opts.get("rooms") or []
    excluded = opts.get("except") or []
    joined = set(rooms)
    return (not selected or not joined.isdisjoint(selected)) and joined.isdisjoint(excluded)
