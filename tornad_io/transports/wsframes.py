"""RFC 6455 frames, sans-IO, and a faster WebSocket protocol for Tornado.

Tornado's own reader awaits two to four reads per frame through an
``IOStream``. After the handshake this one takes the socket over: a loop
reader callback reads whatever bytes are there and parses every complete frame
in a loop; writes go straight to the socket and are buffered only when the
kernel does not take them, and several frames for one client leave in one
``send``. The handshake, close handshake, ping/pong and permessage-deflate
stay Tornado's (with deflate on, Tornado's reader and writer run unchanged).

Measured with ``benchmarks/``: see the README's benchmark table.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.util import _websocket_mask  # the C-accelerated masking Tornado ships
from tornado.websocket import WebSocketProtocol13

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack
_READ_SIZE = 65536
_CORK_LIMIT = 256 * 1024  # bytes corked for one client before they are sent at once


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

    __slots__ = ("max_size", "_buf", "_need", "_frag", "_frag_opcode")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        # Bytes of an unfinished frame, and how many it takes before parsing is worth it:
        # a frame arriving in many small reads is appended to, and parsed once, so feeding
        # costs time linear in the bytes received (not a copy of the backlog per read).
        self._buf = bytearray()
        self._need = 0
        self._frag: bytearray | None = None
        self._frag_opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []
            buf = bytes(self._buf)
            self._buf = bytearray()
        else:
            buf = data
        n = len(buf)
        pos = 0
        need = 0
        out: list[tuple[int, bytes]] = []
        while True:
            if n - pos < 2:
                need = 2
                break
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b0 & 0x70:
                raise FrameError(1002, "reserved bits set")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    need = 4
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = pos + 4
            elif length == 127:
                if n - pos < 10:
                    need = 10
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
                need = end - pos
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
        if pos < n:
            self._buf = bytearray(buf[pos:] if pos else buf)
            self._need = need
        return out


# Streams with frames waiting for the end of the current loop iteration, per loop.
_CORKED: dict[asyncio.AbstractEventLoop, list[RawSocketStream]] = {}


def _uncork_all(loop: asyncio.AbstractEventLoop) -> None:
    streams = _CORKED.pop(loop, ())
    for stream in streams:
        stream._uncork()


class RawSocketStream:
    """What a WebSocket needs of a stream, on the bare socket, once the handshake is done.

    Reads happen in a loop reader callback (no future or coroutine per read);
    writes go straight to the socket, buffering only what the kernel does not
    take. It offers the part of ``IOStream`` that Tornado's WebSocket protocol
    uses (``write``, ``close``, ``closed``, ``set_nodelay``, ``io_loop``).
    """

    def __init__(self, sock: socket.socket, on_data: Any, on_close: Any) -> None:
        self.socket: socket.socket | None = sock
        self.io_loop = IOLoop.current()
        self._loop = asyncio.get_running_loop()
        self._fd = sock.fileno()
        self._on_data = on_data
        self._on_close = on_close
        self._write_buffer = bytearray()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._written = 0  # bytes handed to write() so far
        self._flushed = 0  # of which sent
        self._reading = False
        self._cork: list[bytes] | None = None
        self._cork_bytes = 0
        self.error: BaseException | None = None

    def start_reading(self) -> None:
        if not self._reading and self.socket is not None:
            self._reading = True
            self._loop.add_reader(self._fd, self._readable)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _readable(self) -> None:
        sock = self.socket
        if sock is None:
            return
        try:
            data = sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.error = error
            self.close()
            return
        if not data:
            self.close()
            return
        self._on_data(data)

    def closed(self) -> bool:
        return self.socket is None

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel, corked frames included."""
        return 0 if self.socket is None else self._written - self._flushed

    def set_nodelay(self, value: bool) -> None:
        if self.socket is not None:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)

    def send_now(self, data: bytes) -> None:
        """Write *data* with no future.

        Frames written during one loop iteration leave together, in one ``send``,
        at the end of the iteration (a burst of emits to one client is one system
        call, not one per frame); nothing waits longer than that.
        """
        if self.socket is None:
            raise StreamClosedError()
        self._written += len(data)
        if self._write_buffer:  # the kernel is not taking data: queue behind it
            self._write_buffer += data
            return
        cork = self._cork
        if cork is None:
            self._cork = [data]
            self._cork_bytes = len(data)
            corked = _CORKED.get(self._loop)
            if corked is None:
                _CORKED[self._loop] = [self]
                self._loop.call_soon(_uncork_all, self._loop)
            else:
                corked.append(self)
        else:
            cork.append(data)
            self._cork_bytes += len(data)
            if self._cork_bytes > _CORK_LIMIT:
                # A big burst leaves now: the kernel takes what a reading client can take,
                # and what it refuses is counted where max_buffered_bytes is checked.
                self._uncork()

    def uncork(self) -> None:
        """Send the frames corked so far now, rather than at the end of the loop iteration."""
        self._uncork()

    def _uncork(self) -> None:
        chunks, self._cork = self._cork, None
        sock = self.socket
        if not chunks or sock is None:
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._write_buffer:
            self._write_buffer += data
            return
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self.error = error
            self.close()
            return
        self._flushed += sent
        if sent < len(data):
            self._write_buffer += data[sent:]
            self._loop.add_writer(self._fd, self._writable)

    def write(self, data: bytes | memoryview) -> asyncio.Future[None]:
        """``IOStream.write``: a future resolved once *data* has left (corked frames go first)."""
        self.send_now(bytes(data))
        self._uncork()
        future: asyncio.Future[None] = self._loop.create_future()
        if not self._write_buffer:
            future.set_result(None)
        else:
            self._waiters.append((self._written, future))
        return future

    def _writable(self) -> None:
        sock = self.socket
        if sock is None:
            return
        try:
            sent = sock.send(self._write_buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.error = error
            self.close()
            return
        del self._write_buffer[:sent]
        self._flushed += sent
        if not self._write_buffer:
            self._loop.remove_writer(self._fd)
        while self._waiters and self._waiters[0][0] <= self._flushed:
            _, future = self._waiters.pop(0)
            if not future.done():
                future.set_result(None)

    def close(self, exc_info: Any = False) -> None:
        if self._cork:
            self._uncork()  # what was written before the close still leaves
        sock, self.socket = self.socket, None
        if sock is None:
            return
        self.pause_reading()
        if self._write_buffer:
            self._loop.remove_writer(self._fd)
        sock.close()
        self._write_buffer = bytearray()
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(StreamClosedError())
                future.exception()  # retrieved: nobody has to await a write
        self._waiters = []
        self._on_close()


class FastWebSocketProtocol(WebSocketProtocol13):
    """Tornado's RFC 6455 protocol on a :class:`RawSocketStream`, with a batch frame reader."""

    def _receive_frame_loop(self) -> Any:
        if self._decompressor is not None:
            return super()._receive_frame_loop()
        return self._run_raw()

    async def _run_raw(self) -> None:
        tornado_stream: IOStream = self.stream
        try:
            if tornado_stream.writing():
                await tornado_stream.write(b"")  # what Tornado still holds (the 101 response, …) goes first
        except StreamClosedError:
            self._abort()
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)
            return
        leftover = bytes(tornado_stream._read_buffer[: tornado_stream._read_buffer_size])
        sock = tornado_stream.socket
        tornado_stream.io_loop.remove_handler(sock)
        tornado_stream.socket = None  # type: ignore[assignment]  # the socket is ours from now on
        del tornado_stream  # and its buffers can go
        self._parser = FrameParser(self.params.max_message_size)
        raw = RawSocketStream(sock, self._on_data, self._raw_closed)
        self.stream = raw  # type: ignore[assignment]
        if leftover:
            self._on_data(leftover)
        raw.start_reading()
        # Returning lets Tornado finish the request: the handler object is freed, and the
        # connection lives on in loop callbacks (reader, writer) and the session.

    def _raw_closed(self) -> None:
        self.client_terminated = True
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _on_data(self, data: bytes) -> None:
        self._wire_bytes_in += len(data)
        try:
            messages = self._parser.feed(data)
        except FrameError as error:
            self.close(error.code, error.reason)
            self._abort()
            return
        raw: RawSocketStream = self.stream  # type: ignore[assignment]
        on_message = self.handler.on_message
        for opcode, payload in messages:
            if self.client_terminated and opcode != 0x8:
                return
            if opcode == 0x1 or opcode == 0x2:
                # Data frames go straight to the handler (Tornado's _handle_message and
                # _run_callback add two calls per message; the handler here never awaits).
                try:
                    message = payload.decode("utf-8") if opcode == 0x1 else payload
                except UnicodeDecodeError:
                    self._abort()
                    return
                try:
                    on_message(message)
                except Exception:
                    self.handler.log_exception(*sys.exc_info())
                    self._abort()
                    return
                continue
            handled = self._handle_message(opcode, payload)
            if handled is not None:
                # an async on_message: read no further until it is done, as Tornado does
                raw.pause_reading()
                handled.add_done_callback(lambda _f: raw.start_reading())

    def send_frames(self, frames: bytes) -> None:
        """Write ready-made frames, straight to the socket when nothing is queued before them."""
        if self.server_terminated:
            raise StreamClosedError()
        self._wire_bytes_out += len(frames)
        stream: Any = self.stream
        if type(stream) is RawSocketStream:
            stream.send_now(frames)
        else:
            stream.write(frames)
