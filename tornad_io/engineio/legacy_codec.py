"""Socket.IO 0.6 framing, sans-IO: ``~m~<len>~m~<data>`` frames.

``<len>`` counts UTF-16 code units (JavaScript ``String.length``): an astral
character such as an emoji counts 2. Inside a frame, ``~j~`` marks JSON and
``~h~`` a heartbeat; anything else is a plain string message. A payload is
frames concatenated with no separator.

Pure code, and silent: what a decoder drops is returned to the caller (the
session or transport), which logs it.
"""

from __future__ import annotations

import re
from typing import Any

from .. import _json
from ..exceptions import PayloadTooLarge, ProtocolError

FRAME = "~m~"
JSON_MARK = "~j~"
HEARTBEAT_MARK = "~h~"

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_MAX_LEN_DIGITS = 9


def utf16_len(text: str) -> int:
    """JavaScript ``String.length`` of *text*."""
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))


def frame(data: str) -> str:
    """One frame carrying *data* verbatim."""
    return f"~m~{utf16_len(data)}~m~{data}"


def encode_message(message: Any) -> str:
    """Frame a message the way SocketTornad.IO's ``send()`` documents it.

    A ``str`` goes as is; anything else is JSON (``~j~``), ``Decimal`` exactly.
    """
    if isinstance(message, str):
        return frame(message)
    return frame(JSON_MARK + _json.dumps(message))


def heartbeat(counter: int) -> str:
    return frame(f"{HEARTBEAT_MARK}{counter}")


class Message:
    """A decoded frame: a message (``value``) or a heartbeat (``beat``)."""

    __slots__ = ("value", "beat")

    def __init__(self, value: Any = None, beat: str | None = None) -> None:
        self.value = value
        self.beat = beat

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.value, self.beat) == (other.value, other.beat)

    def __repr__(self) -> str:
        return f"Message(value={self.value!r}, beat={self.beat!r})"


def _take_units(payload: str, start: int, units: int) -> int:
    """Index just past *units* UTF-16 units from *start*; -1 if it does not fit."""
    i = start
    n = len(payload)
    remaining = units
    while remaining > 0:
        if i >= n:
            return -1
        remaining -= 2 if ord(payload[i]) > 0xFFFF else 1
        i += 1
    return i if remaining == 0 else -1


def decode_frames(payload: str, max_frames: int | None = None) -> list[str]:
    """Split a payload into frame data, strictly.

    Raises :class:`ProtocolError` at the first malformed frame; the frames
    before it are in the error's ``frames`` attribute. More than *max_frames*
    frames raise :class:`~tornad_io.PayloadTooLarge`, whatever the mode.
    """
    frames: list[str] = []
    i = 0
    n = len(payload)
    ascii_only = payload.isascii()
    while i < n:
        if max_frames is not None and len(frames) >= max_frames:
            raise PayloadTooLarge(f"more than {max_frames} frames in one payload")
        if not payload.startswith(FRAME, i):
            raise _partial("frame does not start with ~m~", frames)
        j = i + 3
        k = j
        while k < n and "0" <= payload[k] <= "9":
            k += 1
        if k == j or k - j > _MAX_LEN_DIGITS:
            raise _partial("bad frame length", frames)
        if not payload.startswith(FRAME, k):
            raise _partial("frame length not followed by ~m~", frames)
        length = int(payload[j:k])
        start = k + 3
        end = start + length if ascii_only else _take_units(payload, start, length)
        if end < 0 or end > n:
            raise _partial("frame shorter than its declared length", frames)
        frames.append(payload[start:end])
        i = end
    return frames


def _partial(reason: str, frames: list[str]) -> ProtocolError:
    error = ProtocolError(reason)
    error.frames = frames  # type: ignore[attr-defined]
    return error


def decode_payload(
    payload: str,
    crlf_tolerant: bool = False,
    strict: bool = False,
    max_frames: int | None = None,
    dropped: list[str] | None = None,
) -> list[Message]:
    """Decode every frame of a payload into messages and heartbeats.

    A bad ``~j~`` frame is dropped. A malformed frame raises
    :class:`ProtocolError` if *strict*; otherwise the frames before it are
    kept and the rest is dropped. Why each thing was dropped is appended to
    *dropped* (one line each, client data quoted with ``repr``), for the caller
    to log. With *crlf_tolerant* (JSONP form posts, whose browsers turn ``\\n``
    into ``\\r\\n``), a payload that does not decode is first retried with
    ``\\r\\n`` read as ``\\n``.
    """
    try:
        frames = decode_frames(payload, max_frames)
    except PayloadTooLarge:
        raise
    except ProtocolError as error:
        frames = getattr(error, "frames", [])
        if crlf_tolerant and "\r\n" in payload:
            try:
                frames = decode_frames(payload.replace("\r\n", "\n"), max_frames)
                error = None  # type: ignore[assignment]
            except ProtocolError:
                pass
        if error is not None:
            if strict:
                raise
            if dropped is not None:
                dropped.append(f"the rest of the payload: {error}")
    messages: list[Message] = []
    for data in frames:
        if data.startswith(HEARTBEAT_MARK):
            messages.append(Message(beat=data[3:]))
        elif data.startswith(JSON_MARK):
            try:
                messages.append(Message(_json.loads(data[3:])))
            except ValueError:
                if dropped is not None:
                    dropped.append(f"a ~j~ frame that is not JSON: {data[:40]!r}")
        else:
            messages.append(Message(data))
    return messages
