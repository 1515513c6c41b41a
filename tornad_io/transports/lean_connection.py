"""Connections that carry only Engine.IO polling requests, served without Tornado's ``HTTP1Connection``.

:class:`tornad_io.HTTPServer` gives each new plain-TCP connection to a
:class:`LeanConnection`. It reads the socket itself (a
:class:`~tornad_io.transports.fast_websocket.RawSocketStream`), and while each
request is one the lean path answers exactly as the application would -- an
HTTP/1.1 ``GET`` or ``POST`` with a ``Content-Length`` body (or none) that a
:class:`~tornad_io.transports.lean_http.LeanDelegate` accepts -- it answers it
through that delegate, with Tornado's own parsers for the request line and
headers. At the first request it does not take (another path, a WebSocket
upgrade, HTTP/1.0, a chunked body, ``Expect``, a header block it does not
read exactly as Tornado would, a body over the cap), it hands the socket and
every byte not yet answered to Tornado's HTTP server, which serves the rest of
the connection as if it had read it from the start, with its own answers to
malformed or oversized requests.

Timeouts are Tornado's: ``idle_connection_timeout`` while waiting for a
request's headers, ``body_timeout`` while reading its body; on expiry the
connection closes, as Tornado closes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from typing import TYPE_CHECKING, Any, Callable

from tornado import httputil
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from .. import _tornado_compat as compat
from .fast_headers import parse_headers
from .fast_websocket import RawSocketStream
from .lean_http import EngineRouter, LeanDelegate
from .lean_websocket import LeanUpgrade

if TYPE_CHECKING:
    from ..httpserver import HTTPServer

log = logging.getLogger("tornad_io.http")

_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
_KEEP_ALIVE_VALUES = (None, "keep-alive", "close")
_DEFAULT_MAX_BODY = 100 * 1024 * 1024  # Tornado's IOStream max_buffer_size
_DEFAULT_MAX_HEADER = 65536  # Tornado's default max_header_size
_MAX_PENDING = 1024 * 1024  # bytes read ahead while a response is pending, before reading pauses


class RequestContext:
    """What ``HTTPServerRequest`` reads from its connection's ``context``, as Tornado sets it for TCP."""

    __slots__ = ("address", "address_family", "remote_ip", "protocol")

    def __init__(self, family: int, address: Any) -> None:
        #: The peer's address, as ``accept`` gave it.
        self.address = address
        #: The socket's address family.
        self.address_family = family
        #: The peer's IP address.
        self.remote_ip: str = address[0] if address else "0.0.0.0"
        #: Always ``http``: TLS connections are left to Tornado.
        self.protocol = "http"

    def __str__(self) -> str:
        return self.remote_ip


def serves(stream: IOStream) -> bool:
    """Whether a new connection on *stream* may start on the lean path (plain TCP, not TLS or Unix)."""
    sock = getattr(stream, "socket", None)
    return type(stream) is IOStream and sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)


_PEEK_BYTES = 512


def first_request(server: HTTPServer, stream: IOStream, address: Any, router: EngineRouter) -> None:
    """Give a new connection to a :class:`LeanConnection` or to Tornado, from a peek at its request line.

    Nothing is read: ``MSG_PEEK`` shows the request line, and a connection whose first request is
    not a polling one for an engine (a WebSocket handshake, another path) goes to Tornado untouched,
    at no cost but the peek. Anything else starts on the lean path, which hands over when it must.
    """
    sock = stream.socket
    verdict = _peek(sock, router)
    if verdict is not None:
        _start(server, stream, address, router, verdict)
        return
    _Peeking(server, stream, address, router)


class _Peeking:
    """A new connection whose request line has not arrived yet (closed by ``close_all_connections`` too)."""

    __slots__ = ("server", "stream", "address", "router", "fd", "timeout")

    def __init__(self, server: HTTPServer, stream: IOStream, address: Any, router: EngineRouter) -> None:
        self.server = server
        self.stream = stream
        self.address = address
        self.router = router
        self.fd = stream.socket.fileno()
        loop = IOLoop.current()
        self.timeout = loop.call_later(server.conn_params.header_timeout or 3600, self.close)
        server._lean_connections.add(self)
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _stop(self, keep_reader: bool = False) -> None:
        self.server._lean_connections.discard(self)
        if not keep_reader:
            asyncio.get_running_loop().remove_reader(self.fd)
        IOLoop.current().remove_timeout(self.timeout)

    def _readable(self) -> None:
        verdict = _peek(self.stream.socket, self.router)
        if verdict is not None:
            # A lean connection registers its own reader on the same descriptor at once, which replaces
            # this one in place (no epoll_ctl); Tornado's stream must find none.
            self._stop(keep_reader=verdict)
            try:
                _start(self.server, self.stream, self.address, self.router, verdict)
            except Exception:
                if verdict:  # the lean connection did not take the reader over
                    asyncio.get_running_loop().remove_reader(self.fd)
                raise

    def close(self) -> None:
        """Close the connection: no request within ``idle_connection_timeout``, as Tornado closes it, or shutdown."""
        self._stop()
        self.stream.close()


def _peek(sock: socket.socket, router: EngineRouter) -> bool | None:
    """Whether the connection's first request may be a lean one; None: nothing to see yet."""
    try:
        head = sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return False  # Tornado meets the error and closes
    eol = head.find(b"\r\n")
    if not head or eol < 0:
        return bool(head)  # EOF for Tornado; a long or partial line for the lean reader
    parts = head[:eol].split(b" ")
    return (
        len(parts) == 3
        and parts[0] in (b"GET", b"POST")
        and (router.websocket or b"transport=websocket" not in parts[1])
        and router.engine_for(parts[1].partition(b"?")[0].decode("latin1")) is not None
    )


def _start(server: HTTPServer, stream: IOStream, address: Any, router: EngineRouter, lean: bool) -> None:
    if lean:
        LeanConnection(server, stream, address, router)
    else:
        server._tornado_handle_stream(stream, address)


class LeanConnection:
    """One client connection, served by the lean path until a request needs the application."""

    __slots__ = (
        "server",
        "router",
        "address",
        "context",
        "raw",
        "buffer",
        "delegate",
        "body_length",
        "close_callback",
        "disconnect",
        "timer",
        "deadline",
        "io_loop",
        "header_timeout",
        "body_timeout",
        "max_header",
        "max_body",
        "handing_over",
        "paused",
    )

    def __init__(self, server: HTTPServer, stream: IOStream, address: Any, router: EngineRouter) -> None:
        sock, leftover = compat.detach_socket(stream)
        params = server.conn_params
        self.server = server
        self.router = router
        self.address = address
        self.context = RequestContext(sock.family, address)
        self.io_loop = IOLoop.current()
        self.header_timeout: float = params.header_timeout or 3600
        self.body_timeout: float | None = params.body_timeout
        self.max_header: int = params.max_header_size or _DEFAULT_MAX_HEADER
        self.max_body: int = (
            params.max_body_size if params.max_body_size is not None else server.max_buffer_size or _DEFAULT_MAX_BODY
        )
        self.buffer = bytearray(leftover)
        self.delegate: LeanDelegate | None = None
        self.body_length = 0
        self.close_callback: Callable[[], None] | None = None
        self.disconnect = False
        self.timer: Any = None
        self.deadline: float | None = None
        self.handing_over = False
        self.paused = False
        self.raw = RawSocketStream(sock, self._on_data, self._on_close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server._lean_connections.add(self)
        # The peek saw the first request's bytes, so the reader runs in the next loop iteration (as
        # before: requests are read in their own iteration, after the timers due then). The header
        # timer is made only if the connection is still waiting after that read (_on_data): a
        # WebSocket handshake answered at once needs none.
        self.deadline = self.io_loop.time() + self.header_timeout
        self.raw.start_reading()
        if self.buffer:
            self._on_data(b"")

    # -- reading ---------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self.buffer += data
        try:
            if self.delegate is None:
                self._process()
            elif self.body_length:
                self._body()
            elif len(self.buffer) > _MAX_PENDING:  # a pipelining client far ahead of the answers: wait
                self.paused = True
                self.raw.pause_reading()
        except Exception:
            log.error("uncaught exception on the lean polling path", exc_info=True)
            self.close()
            return
        if self.timer is None and self.deadline is not None and not self.handing_over and not self.raw.closed():
            self.timer = self.io_loop.call_at(self.deadline, self._expire)  # the first wait (see __init__)

    def _process(self) -> None:
        """Start the next request if its headers are here, or hand the connection over."""
        if self.delegate is not None or self.raw.closed() or self.handing_over:
            return
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) >= self.max_header or buf.count(b"\n") != buf.count(b"\r\n"):
                self._hand_over()  # Tornado reads bare LFs and applies its header limit
            elif buf[:1] == b"\r" and len(buf) > 1:
                self._hand_over()  # blank lines before a request: Tornado skips them
            return
        if end + 4 > self.max_header or end == 0:
            self._hand_over()
            return
        head = bytes(buf[:end])
        if head.count(b"\n") != head.count(b"\r\n"):
            self._hand_over()  # bare LFs
            return
        upgrade = b"\nupgrade:" in head.lower()
        if upgrade and not self.router.websocket:
            self._hand_over()  # a WebSocket handshake: Tornado's, at once (no parsing here)
            return
        try:
            text = head.decode("latin1")
            eol = text.find("\r\n")
            start_line = httputil.parse_request_start_line(text if eol < 0 else text[:eol])
            headers = parse_headers("" if eol < 0 else text[eol:])
        except Exception:
            self._hand_over()  # Tornado answers it (400) or closes
            return
        if upgrade:
            self._upgrade(start_line, headers, end)
            return
        if not self._takes(start_line, headers):
            self._hand_over()
            return
        length_value = headers.get("Content-Length")
        length = int(length_value) if length_value is not None else 0
        delegate = LeanDelegate(self.router, _no_standard, self, self)  # type: ignore[arg-type]
        try:
            accepted = delegate.accepts(start_line, headers)
        except httputil.HTTPInputError:
            accepted = False  # Tornado answers 400
        if not accepted:
            self._hand_over()
            return
        del buf[: end + 4]
        self._disarm()
        self.delegate = delegate
        self.disconnect = (headers.get("Connection") or "").lower() == "close"
        if length:
            self.body_length = length
            if self.body_timeout:
                self._arm(self.body_timeout)
            self._body()
        else:
            self._run(delegate)

    def _upgrade(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders, end: int) -> None:
        """A WebSocket handshake: answered by a :class:`LeanUpgrade` if it takes it, else by Tornado."""
        if not self._takes(start_line, headers, upgrade=True) or "Content-Length" in headers:
            self._hand_over()
            return
        delegate = LeanUpgrade(self.router, _no_standard, self, self)  # type: ignore[arg-type]
        try:
            accepted = delegate.accepts_upgrade(start_line, headers)
        except httputil.HTTPInputError:
            accepted = False  # Tornado answers 400
        if not accepted:
            self._hand_over()
            return
        del self.buffer[: end + 4]
        self._disarm()
        self.delegate = delegate
        self.disconnect = (headers.get("Connection") or "").lower() == "close"
        self._run(delegate)

    def write_upgrade(self, head: bytes) -> tuple[RawSocketStream, bytes]:
        """Write a ``101 Switching Protocols`` *head* and leave the connection: its stream, and the bytes after it.

        The head is corked (it leaves with what is written to the stream in this loop
        iteration, a new session's open packet); the connection stops reading requests.
        """
        raw = self.raw
        raw.send_now(head)
        self.handing_over = True
        self.delegate = None
        self.close_callback = None
        self._disarm()
        if self.timer is not None:
            self.io_loop.remove_timeout(self.timer)
            self.timer = None
        self.server._lean_connections.discard(self)
        leftover = bytes(self.buffer)
        self.buffer = bytearray()
        if self.paused:
            self.paused = False
            raw.start_reading()
        return raw, leftover

    def _takes(
        self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders, upgrade: bool = False
    ) -> bool:
        """Whether Tornado's ``HTTP1Connection`` would read this request as simply as the lean path does."""
        if start_line.version != "HTTP/1.1":
            return False
        if "Transfer-Encoding" in headers or "Expect" in headers or "Content-Encoding" in headers:
            return False
        connection = headers.get("Connection")
        if not upgrade and (connection.lower() if connection is not None else None) not in _KEEP_ALIVE_VALUES:
            return False
        if "Content-Length" in headers:
            values = headers.get_list("Content-Length")
            if len(values) != 1 or not _CONTENT_LENGTH.fullmatch(values[0]):
                return False
            length = int(values[0])
            if length > self.max_body or (length and start_line.method != "POST"):
                return False
        return True

    def _body(self) -> None:
        length = self.body_length
        if len(self.buffer) < length:
            return
        delegate = self.delegate
        assert delegate is not None
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        self.body_length = 0
        self._disarm()
        delegate.data_received(body)
        self._run(delegate)

    def _run(self, delegate: LeanDelegate) -> None:
        try:
            delegate.finish()
        except Exception:
            log.error("uncaught exception on the lean polling path", exc_info=True)
            self.close()

    # -- what LeanDelegate calls (the HTTPConnection it writes to) -------------------------------

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """Call *callback* if the connection closes before the response is written."""
        self.close_callback = callback

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> None:
        """Write the response head and *chunk*, as ``HTTP1Connection.write_headers`` writes them."""
        assert isinstance(start_line, httputil.ResponseStartLine)
        data = self.response_head(start_line, headers)
        if chunk:
            data += chunk
        try:
            self.raw.send_now(data)
            self.raw.uncork()
        except StreamClosedError:
            pass

    def response_head(self, start_line: httputil.ResponseStartLine, headers: httputil.HTTPHeaders) -> bytes:
        """A response head as ``HTTP1Connection.write_headers`` writes it."""
        if self.disconnect:
            headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {start_line.code} {start_line.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"Illegal characters (CR or LF) in header: {line!r}")
        return "\r\n".join(lines).encode("latin1") + b"\r\n\r\n"

    def write(self, chunk: bytes) -> None:
        """Write more of the body (the lean path writes whole responses; kept for the interface)."""
        try:
            self.raw.send_now(chunk)
            self.raw.uncork()
        except StreamClosedError:
            pass

    def finish(self) -> None:
        """The response is written: close if asked, else read the next request."""
        self.delegate = None
        self.close_callback = None
        if self.raw.closed():
            return
        if self.disconnect:
            if self.raw.buffered:
                self.raw.write(b"").add_done_callback(lambda _: self.close())
            else:
                self.close()
            return
        self._arm(self.header_timeout)
        if self.paused:
            self.paused = False
            self.raw.start_reading()
        if self.buffer:
            self.io_loop.add_callback(self._on_data, b"")  # the next pipelined request, after this turn

    # -- the end of the lean path ------------------------------------------------------------------

    def _hand_over(self) -> None:
        """Give the socket and the bytes not yet answered to Tornado's HTTP server."""
        self.handing_over = True
        self._disarm()
        raw = self.raw
        if raw.buffered:  # a response is still leaving: Tornado's answers must come after it
            raw.pause_reading()
            raw.write(b"").add_done_callback(lambda future: self._hand_over() if not raw.closed() else None)
            return
        if self.timer is not None:
            self.io_loop.remove_timeout(self.timer)
            self.timer = None
        sock = raw.release()
        self.server._lean_connections.discard(self)
        if sock is None:
            return
        stream = compat.attach_socket(sock, bytes(self.buffer), self.server)
        self.buffer = bytearray()
        self.server._tornado_handle_stream(stream, self.address)

    def _on_close(self) -> None:
        self._disarm()
        if self.timer is not None:
            self.io_loop.remove_timeout(self.timer)
            self.timer = None
        self.server._lean_connections.discard(self)
        callback, self.close_callback = self.close_callback, None
        delegate, self.delegate = self.delegate, None
        if callback is not None:
            callback()
        elif delegate is not None:
            delegate.on_connection_close()

    def close(self) -> None:
        """Close the connection (a pending poll is cancelled)."""
        self.raw.close()

    def _arm(self, seconds: float) -> None:
        """Close the connection if the current wait (headers or body) lasts *seconds*.

        One timer per connection, moved forward lazily: a request answered in time costs no timer call.
        """
        deadline = self.io_loop.time() + seconds
        self.deadline = deadline
        if self.timer is None:
            self.timer = self.io_loop.call_at(deadline, self._expire)

    def _disarm(self) -> None:
        self.deadline = None

    def _expire(self) -> None:
        self.timer = None
        deadline = self.deadline
        if deadline is None or self.raw.closed():
            return
        if self.io_loop.time() < deadline:
            self.timer = self.io_loop.call_at(deadline, self._expire)
            return
        self.close()  # Tornado closes a connection whose headers or body are late, without an answer


def _no_standard(server_conn: object, request_conn: Any) -> httputil.HTTPMessageDelegate:
    raise AssertionError("a LeanConnection hands the whole connection over instead")


async def close_connections(connections: set[LeanConnection]) -> None:
    """Close every lean connection (``HTTPServer.close_all_connections``)."""
    for connection in list(connections):
        connection.close()
    await asyncio.sleep(0)
