"""RFC 6455 frames, sans-IO, and a faster WebSocket protocol for Tornado.

Tornado's own reader awaits two to four reads per frame. This one reads
whatever bytes are there and parses every complete frame in a loop; writes go
straight to the socket when nothing is waiting in the stream's buffer, and
several frames for one client leave in one ``send``. The handshake, close
handshake, ping/pong and permessage-deflate stay Tornado's (with deflate on,
Tornado's reader and writer are used unchanged).

Measured with ``benchmarks/``: see the README's benchmark table.
"""

from __future__ import annotations

import struct
from typing import Any

from tornado.iostream import IOStream, StreamClosedError
from tornado.util import _websocket_mask  # the C-accelerated masking Tornado ships
from tornado.websocket import WebSocketProtocol13

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack
_READ_SIZE = 65536


class FrameError(Exception):
    """A frame that breaks RFC 6455; ``code`` is the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return _PACK_16(0x80 | opcode, 126, n) + payload
    return _PACK_64(0x80 | opcode, 127, n) + payload


class FrameParser:
    """Incremental parser of client frames (masked, as RFC 6455 requires).

    :meth:`feed` returns complete messages as ``(opcode, payload)``, with
    fragmented messages reassembled and control frames passed through.
    """

    __slots__ = ("max_size", "_buf", "_frag", "_frag_opcode")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = b""
        self._frag: bytearray | None = None
        self._frag_opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        out: list[tuple[int, bytes]] = []
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b0 & 0x70:
                raise FrameError(1002, "reserved bits set")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = pos + 10
            if opcode & 0x08:
                if length > 125 or not b0 & 0x80:
                    raise FrameError(1002, "bad control frame")
            elif length + (len(self._frag) if self._frag is not None else 0) > self.max_size:
                raise FrameError(1009, "message too big")
            if not b1 & 0x80:
                raise FrameError(1002, "client frames must be masked")
            end = head + 4 + length
            if end > n:
                break
            payload = _websocket_mask(buf[head : head + 4], buf[head + 4 : end])
            pos = end
            if opcode & 0x08:
                out.append((opcode, payload))
            elif opcode == 0:
                if self._frag is None:
                    raise FrameError(1002, "continuation of nothing")
                self._frag += payload
                if b0 & 0x80:
                    out.append((self._frag_opcode, bytes(self._frag)))
                    self._frag = None
            elif opcode in (1, 2):
                if self._frag is not None:
                    raise FrameError(1002, "new message inside a fragmented one")
                if b0 & 0x80:
                    out.append((opcode, payload))
                else:
                    self._frag = bytearray(payload)
                    self._frag_opcode = opcode
            else:
                raise FrameError(1002, "unknown opcode")
        self._buf = buf[pos:] if pos < n else b""
        return out


class FastWebSocketProtocol(WebSocketProtocol13):
    """Tornado's RFC 6455 protocol with a batch frame reader and a direct writer."""

    def _receive_frame_loop(self) -> Any:
        if self._decompressor is not None:
            return super()._receive_frame_loop()
        return self._fast_loop()

    async def _fast_loop(self) -> None:
        parser = FrameParser(self.params.max_message_size)
        stream = self.stream
        try:
            while not self.client_terminated:
                data = await stream.read_bytes(_READ_SIZE, partial=True)
                self._wire_bytes_in += len(data)
                try:
                    messages = parser.feed(data)
                except FrameError as error:
                    self.close(error.code, error.reason)
                    self._abort()
                    return
                for opcode, payload in messages:
                    handled = self._handle_message(opcode, payload)
                    if handled is not None:
                        await handled
                    if self.client_terminated:
                        break
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def send_frames(self, frames: bytes) -> None:
        """Write ready-made frames, straight to the socket when nothing is queued before them."""
        stream: IOStream = self.stream
        if self.server_terminated or stream.closed():
            raise StreamClosedError()
        self._wire_bytes_out += len(frames)
        if not len(stream._write_buffer):
            try:
                sent = stream.socket.send(frames)
            except BlockingIOError:
                sent = 0
            except OSError:
                stream.close()
                raise StreamClosedError() from None
            if sent == len(frames):
                return
            frames = frames[sent:]
        stream.write(frames)
