"""Every use of a private Tornado name, in one place, each with a public fallback.

tornad_io reaches into Tornado where its public API has no way to do what a
Socket.IO server needs: take a WebSocket's socket over after the handshake,
know how many bytes wait for a slow client, back off in the accept loop, keep
session ids out of the access log. Each such access is a small named function
or class here. At import the installed Tornado is checked against the range
these names were verified on (:data:`SUPPORTED`) and the names are looked for;
when the check fails (or ``TORNAD_IO_TORNADO_PRIVATE=0`` is set in the
environment) a warning is logged once and every function below takes its
public path instead.

What each private name is for, and its fallback:

- ``websocket._WebSocketParams``; ``WebSocketProtocol13._receive_frame_loop``,
  ``_handle_message``, ``_abort``, ``_compressor``, ``_decompressor``,
  ``_wire_bytes_in``, ``_wire_bytes_out``; ``IOStream._read_buffer``,
  ``_read_buffer_size``, ``IOStream.socket`` set to None after
  ``io_loop.remove_handler``: the WebSocket socket takeover
  (:func:`websocket_params`, :class:`TakeoverProtocol`). Fallback: Tornado's own
  ``WebSocketProtocol13`` serves WebSockets and messages go out through its
  ``write_message()`` (:func:`write_message`).
  The same names move a new connection's socket to the lean polling path and
  back to Tornado's HTTP server with the bytes read so far (:func:`detach_socket`,
  :func:`attach_socket`). Fallback: the lean path works per request inside
  Tornado's ``HTTP1Connection`` (or not at all, see ``lean_http``).
- ``websocket._WebSocketParams`` built without a handler, and
  ``httputil._parse_header``: the lean WebSocket handshake
  (:func:`websocket_params_for`, :func:`websocket_extensions_parse`). Fallback:
  the lean path is off; an extension offer that cannot be read goes to Tornado.
- ``IOStream._total_write_index``, ``_total_write_done_index``: bytes waiting
  for a slow client (:func:`pending_write_bytes`). Fallback: 0 when the stream
  is not writing, else :data:`UNKNOWN_PENDING` (counted as congested, so
  volatile packets are dropped, but below the default ``max_buffered_bytes``).
- ``util._websocket_mask`` (Tornado's C masking): :data:`websocket_mask`.
  Fallback: None, and the frame parser masks in pure Python.
- ``TCPServer._sockets``, ``_handlers``, ``_handle_connection``: an accept loop
  that backs off when descriptors run out (:func:`add_accept_handlers`).
  Fallback: False, and the caller uses Tornado's ``add_sockets`` (no back-off).
- ``httputil._DEFAULT_PARSE_BODY_CONFIG`` (Tornado 6.5.5 and later): the most
  query fields a request may have (:func:`query_field_limit`), which the lean
  polling path checks before it splits a plain query itself. Fallback: 0, and
  every query is parsed by Tornado's ``HTTPServerRequest``.
- ``RequestHandler._finished``: :func:`finish_once`. Fallback: ``finish()``,
  catching its "finish() called twice" error.
- ``RequestHandler._request_summary``, ``_cross_origin_protection`` (hooks
  overridden by :class:`HandlerHooks`: no query in the access log, and the
  server's own CORS rule instead of Tornado's cross-origin check). Fallback:
  Tornado's own hooks run.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Callable, Iterable

import tornado
import tornado.httputil
import tornado.iostream
import tornado.tcpserver
import tornado.util
import tornado.web
import tornado.websocket

log = logging.getLogger("tornad_io.tornado")

#: The Tornado versions checked: from the first (inclusive) to the second (exclusive). The names were
#: looked up in 6.3.3, 6.4.2, 6.5.2 and 6.6.1; the tests run on 6.3 and on the newest release.
SUPPORTED: tuple[tuple[int, int], tuple[int, int]] = ((6, 3), (7, 0))
#: Set this environment variable to ``0`` to take only Tornado's public paths.
DISABLE_VARIABLE = "TORNAD_IO_TORNADO_PRIVATE"
#: What :func:`pending_write_bytes` reports for a stream that is writing, on the public path.
UNKNOWN_PENDING = 64 * 1024 + 1

_WS13 = tornado.websocket.WebSocketProtocol13


def _assigns(function: Any, *names: str) -> bool:
    """Whether *function* (an ``__init__``) sets or reads every attribute in *names*."""
    code = getattr(function, "__code__", None)
    return code is not None and all(name in code.co_names for name in names)


def _missing_names() -> list[str]:
    """The private names this module uses that the installed Tornado lacks."""
    wanted: dict[str, bool] = {
        "tornado.websocket._WebSocketParams": hasattr(tornado.websocket, "_WebSocketParams"),
        "WebSocketProtocol13._receive_frame_loop/_handle_message/_abort": all(
            hasattr(_WS13, name) for name in ("_receive_frame_loop", "_handle_message", "_abort")
        ),
        "WebSocketProtocol13._compressor/_decompressor/_wire_bytes_in/_wire_bytes_out": _assigns(
            _WS13.__init__, "_compressor", "_decompressor", "_wire_bytes_in", "_wire_bytes_out"
        ),
        "BaseIOStream._read_buffer/_read_buffer_size/_total_write_index/_total_write_done_index": _assigns(
            tornado.iostream.BaseIOStream.__init__,
            "_read_buffer",
            "_read_buffer_size",
            "_total_write_index",
            "_total_write_done_index",
        ),
        "TCPServer._sockets/_handlers/_handle_connection": _assigns(
            tornado.tcpserver.TCPServer.__init__, "_sockets", "_handlers"
        )
        and hasattr(tornado.tcpserver.TCPServer, "_handle_connection"),
        "RequestHandler._finished/_request_summary": _assigns(tornado.web.RequestHandler.__init__, "_finished")
        and hasattr(tornado.web.RequestHandler, "_request_summary"),
    }
    return [name for name, present in wanted.items() if not present]


def _check() -> str:
    """Why the private names cannot be used, or "" when they can."""
    if os.environ.get(DISABLE_VARIABLE, "") == "0":
        return f"{DISABLE_VARIABLE}=0 is set"
    version = tuple(tornado.version_info[:2])
    low, high = SUPPORTED
    if not low <= version < high:
        return (
            f"Tornado {tornado.version} is outside the range tornad_io was checked with "
            f"(>={low[0]}.{low[1]},<{high[0]})"
        )
    missing = _missing_names()
    if missing:
        return f"Tornado {tornado.version} lacks {', '.join(missing)}"
    return ""


#: Why the private paths are off ("" when they are on).
DISABLED_REASON = _check()
#: Whether the private paths are on: the installed Tornado passed the check.
PRIVATE_OK = not DISABLED_REASON

if not PRIVATE_OK:
    log.warning(
        "Tornado's private fast paths are off (%s): WebSockets use Tornado's own protocol, "
        "slow-consumer limits are approximate and accepting does not back off",
        DISABLED_REASON,
    )


def _c_websocket_mask() -> Callable[[bytes, bytes], bytes] | None:
    if not PRIVATE_OK:
        return None
    function = getattr(tornado.util, "_websocket_mask", None)
    # Without its C extension Tornado's masking is a Python loop, slower than the frame module's own.
    if function is None or getattr(function, "__module__", None) != "tornado.speedups":
        return None
    return function  # type: ignore[no-any-return]


#: Tornado's C masking function ``(key, data) -> bytes``, or None (then mask in Python).
websocket_mask = _c_websocket_mask()


# -- WebSocket ---------------------------------------------------------------------------


def websocket_params(handler: tornado.websocket.WebSocketHandler) -> Any:
    """The parameters Tornado's WebSocket protocols take, read from *handler* as Tornado does."""
    return tornado.websocket._WebSocketParams(
        ping_interval=handler.ping_interval,
        ping_timeout=handler.ping_timeout,
        max_message_size=handler.max_message_size,
        compression_options=handler.get_compression_options(),
    )


def websocket_params_for(
    ping_interval: float | None,
    ping_timeout: float | None,
    max_message_size: int,
    compression_options: dict[str, Any] | None,
) -> Any:
    """The parameters Tornado's WebSocket protocols take, given directly (no handler). Only when :data:`PRIVATE_OK`."""
    return tornado.websocket._WebSocketParams(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_message_size=max_message_size,
        compression_options=compression_options,
    )


def websocket_extensions_parse(value: str) -> bool:
    """Whether Tornado's handshake parses a ``Sec-WebSocket-Extensions`` header *value* without an error.

    Tornado parses the header with ``httputil._parse_header`` even when it
    negotiates nothing. False when it raises, or on the public path (the
    caller then leaves the request to Tornado).
    """
    parse = getattr(tornado.httputil, "_parse_header", None)
    if not PRIVATE_OK or parse is None:
        return False
    try:
        for part in value.split(","):
            parse(part.strip())
    except Exception:
        return False
    return True


class TakeoverProtocol(tornado.websocket.WebSocketProtocol13):
    """Tornado's RFC 6455 protocol, with named doors to the private parts a socket takeover needs.

    Once the handshake is done and no deflate was negotiated, Tornado's frame
    reader is replaced by :meth:`run_taken_over` (a subclass implements it).
    Built only when :data:`PRIVATE_OK`.
    """

    def _receive_frame_loop(self) -> Any:
        if self._decompressor is not None:
            return super()._receive_frame_loop()  # deflate: Tornado reads and inflates
        return self.run_taken_over()

    async def run_taken_over(self) -> None:
        """Serve the connection after the handshake, without deflate (see :meth:`take_over_stream`)."""
        raise NotImplementedError

    @property
    def deflate(self) -> bool:
        """Whether permessage-deflate was negotiated (then Tornado's reader and writer run)."""
        return self._compressor is not None

    def take_over_stream(self) -> tuple[socket.socket, bytes]:
        """Detach the socket from Tornado's ``IOStream``: the socket and the bytes already read.

        Tornado stops watching the socket and forgets it; the stream object and
        its buffers can be freed. Call it once nothing is left to write.
        """
        return detach_socket(self.stream)

    def abort(self) -> None:
        """Close the connection at once, with no close handshake (Tornado's ``_abort``)."""
        self._abort()

    def handle_frame(self, opcode: int, payload: bytes) -> Any:
        """Tornado's handling of one complete message or control frame (close, ping, pong)."""
        return self._handle_message(opcode, payload)

    def count_bytes_in(self, n: int) -> None:
        """Add to the wire byte count Tornado keeps for incoming data."""
        self._wire_bytes_in += n

    def count_bytes_out(self, n: int) -> None:
        """Add to the wire byte count Tornado keeps for outgoing data."""
        self._wire_bytes_out += n


def detach_socket(stream: tornado.iostream.IOStream) -> tuple[socket.socket, bytes]:
    """Take the socket away from a Tornado *stream*: the socket and the bytes the stream had read.

    Tornado stops watching the socket and forgets it. Only when :data:`PRIVATE_OK`.
    """
    leftover = bytes(stream._read_buffer[: stream._read_buffer_size])
    sock = stream.socket
    stream.io_loop.remove_handler(sock)
    stream.socket = None  # type: ignore[assignment]  # the socket is the caller's from now on
    return sock, leftover


def attach_socket(sock: socket.socket, data: bytes, server: tornado.tcpserver.TCPServer) -> tornado.iostream.IOStream:
    """A Tornado ``IOStream`` on *sock*, as *server* makes for a new connection, that reads *data* first.

    The reverse of :func:`detach_socket`, for a connection handed to Tornado's HTTP server after some of
    it was read elsewhere. Only when :data:`PRIVATE_OK`.
    """
    stream = tornado.iostream.IOStream(
        sock, max_buffer_size=server.max_buffer_size, read_chunk_size=server.read_chunk_size
    )
    if data:
        stream._read_buffer += data
        stream._read_buffer_size += len(data)
    return stream


def _retrieve(future: Any) -> None:
    if not future.cancelled():
        future.exception()  # a write to a closed connection: nobody awaits it, nothing to log


def write_message(conn: tornado.websocket.WebSocketProtocol, message: str | bytes) -> None:
    """Send one message through Tornado's public ``write_message``, with no future to await."""
    future = conn.write_message(message, binary=isinstance(message, bytes))
    future.add_done_callback(_retrieve)


def pending_write_bytes(stream: tornado.iostream.BaseIOStream) -> int:
    """Bytes written to a Tornado *stream* that the kernel has not taken yet.

    On the public path the count is unknown: 0 when the stream is not writing,
    else :data:`UNKNOWN_PENDING` (reported as congested, so volatile packets wait
    out, but below the default overflow cap, so nobody is cut off on a guess).
    """
    if PRIVATE_OK:
        return int(stream._total_write_index - stream._total_write_done_index)
    return UNKNOWN_PENDING if stream.writing() else 0


# -- HTTP ------------------------------------------------------------------------------------


def add_accept_handlers(
    server: tornado.tcpserver.TCPServer,
    sockets: Iterable[socket.socket],
    accept_handler: Callable[[socket.socket, Callable[[socket.socket, Any], None]], Callable[[], None]],
) -> bool:
    """Register *sockets* with *server*, accepting through ``accept_handler(sock, on_connection)``.

    *accept_handler* returns the function that stops it, as Tornado's
    ``add_accept_handler`` does, so ``server.stop()`` works as usual. False
    (nothing registered) on the public path: call Tornado's ``add_sockets``.
    """
    if not PRIVATE_OK:
        return False
    for sock in sockets:
        server._sockets[sock.fileno()] = sock
        server._handlers[sock.fileno()] = accept_handler(sock, server._handle_connection)
    return True


def close_after_response(connection: Any) -> bool:
    """Make Tornado's ``HTTP1Connection`` close once the current response is written.

    Called from a delegate's ``headers_received`` (after Tornado's own keep-alive
    decision); the response then carries ``Connection: close``. False (nothing
    done) on the public path.
    """
    if not PRIVATE_OK or not hasattr(connection, "_disconnect_on_finish"):
        return False
    connection._disconnect_on_finish = True
    return True


def query_field_limit() -> int | None:
    """How many fields Tornado's ``HTTPServerRequest`` parses from a query before refusing it (400).

    Tornado 6.5.5 and later read it from a global, ``httputil._DEFAULT_PARSE_BODY_CONFIG``
    (``set_parse_body_config`` changes it); earlier versions have no limit (None). 0 when the
    limit cannot be read (on the public path): callers then let Tornado parse every query.
    """
    if not PRIVATE_OK:
        return 0
    config = getattr(tornado.httputil, "_DEFAULT_PARSE_BODY_CONFIG", None)
    if config is None:
        return None
    try:
        return int(config.urlencoded.max_arguments)
    except (AttributeError, TypeError, ValueError):
        return 0


def finish_once(handler: tornado.web.RequestHandler) -> bool:
    """``handler.finish()`` unless the response is already finished; whether it finished it now."""
    if PRIVATE_OK:
        if handler._finished:
            return False
        handler.finish()
        return True
    try:
        handler.finish()
    except RuntimeError:
        return False  # "finish() called twice"
    return True


class HandlerHooks(tornado.web.RequestHandler):
    """A request handler base that overrides two of Tornado's private hooks through public-named methods.

    Put it before Tornado's handler class in the bases. On the public path
    Tornado's own hooks run.
    """

    def summary_for_access_log(self) -> str | None:
        """The access log's ``METHOD path (address)`` part, or None for Tornado's (the full URI)."""
        return None

    def _request_summary(self, *args: Any, **kwargs: Any) -> str:
        if PRIVATE_OK and not args and not kwargs:
            summary = self.summary_for_access_log()
            if summary is not None:
                return summary
        return str(super()._request_summary(*args, **kwargs))

    def _cross_origin_protection(self, *args: Any, **kwargs: Any) -> None:
        # Tornado 6.6+: XSRF and Sec-Fetch-Site checks for unsafe methods. A Socket.IO
        # endpoint applies its own CORS rule (cors_allowed_origins) to every request.
        if PRIVATE_OK:
            return None
        parent: Any = super()
        return parent._cross_origin_protection(*args, **kwargs)  # type: ignore[no-any-return]
