"""A faster WebSocket protocol for Tornado: the socket taken over after the handshake.

Tornado's own reader awaits two to four reads per frame through an
``IOStream``. After the handshake this one takes the socket over: a loop
reader callback reads whatever bytes are there and the sans-IO
:class:`~tornad_io.websocket.frames.FrameParser` parses every complete frame
in a loop; writes go straight to the socket and are buffered only when the
kernel does not take them, and several frames for one client leave in one
``send``. The handshake, close handshake, ping/pong and permessage-deflate
stay Tornado's (with deflate on, Tornado's reader and writer run unchanged).

Tornado's private parts are reached only through :mod:`tornad_io._tornado_compat`;
when that module's version check fails this protocol is not used at all.

Measured with ``benchmarks/``: see the README's benchmark table.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from .. import _tornado_compat as compat
from ..exceptions import FrameError
from ..websocket.frames import FrameParser, Opcode

_READ_SIZE = 65536
_CORK_LIMIT = 256 * 1024  # bytes corked for one client before they are sent at once
# The parser returns Opcode members: compared by identity with these, per message.
_TEXT, _BINARY, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE


# The first slice of a long corked burst (a broadcast to thousands, a loop of emits): after this
# long, what is corked so far leaves at once, and the rest at the end of the iteration as before.
# Measured (benchmarks/run.py, fanout-latency): the first recipient of a 1 000-client broadcast
# waited for the whole burst (35 ms for 20 emits) before; now about this long. Checked every
# _SLICE_CHECK newly corked streams, so short bursts never read the clock.
_FIRST_SLICE = 0.0002
_SLICE_CHECK = 32


class _Corked:
    """The streams with frames waiting for the end of the current loop iteration, on one loop."""

    __slots__ = ("streams", "started", "sliced")

    def __init__(self, first: RawSocketStream) -> None:
        self.streams = [first]
        self.started = time.monotonic()
        self.sliced = False

    def add(self, stream: RawSocketStream) -> None:
        streams = self.streams
        streams.append(stream)
        if not self.sliced and len(streams) % _SLICE_CHECK == 0 and time.monotonic() - self.started > _FIRST_SLICE:
            self.sliced = True
            self.streams = []
            for corked in streams:
                corked._uncork()


_CORKED: dict[asyncio.AbstractEventLoop, _Corked] = {}


def _uncork_all(loop: asyncio.AbstractEventLoop) -> None:
    corked = _CORKED.pop(loop, None)
    if corked is not None:
        for stream in corked.streams:
            stream._uncork()


def send_corked() -> None:
    """Send now the frames corked in this loop iteration, before a response that must not overtake them.

    Tornado's ``RequestHandler`` answers one loop turn after the request is
    read, after the corked frames have left; the lean polling path
    (:mod:`tornad_io.transports.lean_http`) answers at once, and calls this first.
    """
    if _CORKED:
        _uncork_all(asyncio.get_running_loop())


class RawSocketStream:
    """What a WebSocket needs of a stream, on the bare socket, once the handshake is done.

    Reads happen in a loop reader callback (no future or coroutine per read);
    writes go straight to the socket, buffering only what the kernel does not
    take. It offers the part of ``IOStream`` that Tornado's WebSocket protocol
    uses (``write``, ``close``, ``closed``, ``set_nodelay``, ``io_loop``).
    """

    __slots__ = (
        "socket", "io_loop", "_loop", "_fd", "_on_data", "_on_close", "_write_buffer", "_waiters",
        "_written", "_flushed", "_reading", "_cork", "_cork_bytes", "error",
    )  # fmt: skip

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

    def rebind(self, on_data: Any, on_close: Any) -> None:
        """Deliver what is read, and the close, to new callbacks (the stream changes hands)."""
        self._on_data = on_data
        self._on_close = on_close

    def release(self) -> socket.socket | None:
        """Stop serving the socket and give it back, open (call it with nothing left to write)."""
        self._uncork()
        self.pause_reading()
        sock, self.socket = self.socket, None
        return sock

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
                _CORKED[self._loop] = _Corked(self)
                self._loop.call_soon(_uncork_all, self._loop)
            else:
                corked.add(self)
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


class FastWebSocketProtocol(compat.TakeoverProtocol):
    """Tornado's RFC 6455 protocol on a :class:`RawSocketStream`, with a batch frame reader."""

    # Tornado's protocol sets 29 attributes in every instance's __dict__, in the same order, so the
    # instances share one key table (CPython shares up to 30 keys). A 30th key added here made each
    # connection's dict a table of its own: 1.6 KB instead of about 0.3 KB (measured with
    # sys.getsizeof). The parser lives in a slot instead.
    __slots__ = ("_parser",)

    async def run_taken_over(self) -> None:
        tornado_stream: IOStream = self.stream
        try:
            if tornado_stream.writing():
                await tornado_stream.write(b"")  # what Tornado still holds (the 101 response, …) goes first
        except StreamClosedError:
            self.abort()
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)
            return
        sock, leftover = self.take_over_stream()
        del tornado_stream  # its buffers can go
        raw = RawSocketStream(sock, self._on_data, self._raw_closed)
        # Tornado's HTTP/1.1 connection turned Nagle back on when the 101 response finished; a
        # message that follows another within the client's delayed-ACK time (about 40 ms) would
        # wait for that ACK. Measured: the first delivery of a broadcast right after joins went
        # from about 40 ms to under 1 ms with this.
        raw.set_nodelay(True)
        self.adopt(raw)
        self.serve(leftover)
        # Returning lets Tornado finish the request: the handler object is freed, and the
        # connection lives on in loop callbacks (reader, writer) and the session.

    def adopt(self, raw: RawSocketStream) -> None:
        """Write to and read from *raw* from now on (the handshake is done, no deflate).

        The lean path (:mod:`tornad_io.transports.lean_websocket`) calls it with the
        stream that read the handshake; :meth:`serve` then starts reading frames.
        """
        self._parser = FrameParser(self.params.max_message_size, compat.websocket_mask)
        raw.rebind(self._on_data, self._raw_closed)
        self.stream = raw  # type: ignore[assignment]

    def serve(self, leftover: bytes = b"") -> None:
        """Read frames: *leftover* (bytes that came after the handshake) first, then the socket."""
        raw: RawSocketStream = self.stream  # type: ignore[assignment]
        if leftover:
            self._on_data(leftover)
        if not raw.closed():
            raw.start_reading()

    def _raw_closed(self) -> None:
        self.client_terminated = True
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _on_data(self, data: bytes) -> None:
        self.count_bytes_in(len(data))
        try:
            messages = self._parser.feed(data)
        except FrameError as error:
            self.close(error.code, error.reason)
            self.abort()
            return
        raw: RawSocketStream = self.stream  # type: ignore[assignment]
        on_message = self.handler.on_message
        for opcode, payload in messages:
            if self.client_terminated and opcode is not _CLOSE:
                return
            if opcode is _TEXT or opcode is _BINARY:
                # Data frames go straight to the handler (Tornado's message handling adds two
                # calls per message; the handler here never awaits).
                try:
                    message = payload.decode("utf-8") if opcode is _TEXT else payload
                except UnicodeDecodeError:
                    self.abort()
                    return
                try:
                    on_message(message)
                except Exception:
                    self.handler.log_exception(*sys.exc_info())
                    self.abort()
                    return
                continue
            handled = self.handle_frame(opcode, payload)
            if handled is not None:
                # an async on_message: read no further until it is done, as Tornado does
                raw.pause_reading()
                handled.add_done_callback(lambda _f: raw.start_reading())

    def send_frames(self, frames: bytes) -> None:
        """Write ready-made frames, straight to the socket when nothing is queued before them."""
        if self.server_terminated:
            raise StreamClosedError()
        self.count_bytes_out(len(frames))
        stream: Any = self.stream
        if type(stream) is RawSocketStream:
            stream.send_now(frames)
        else:
            stream.write(frames)
