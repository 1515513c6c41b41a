"""Engine.IO over Tornado: long-polling (XHR and JSONP) and WebSocket.

One handler class answers every request under the mount path, as the
reference server does: a request with ``Upgrade: websocket`` becomes a
WebSocket, anything else is a polling GET, POST or CORS preflight. The
handler only moves bytes; the :class:`~tornad_io.engineio.session.Session`
decides what they mean, and the request's ``EIO`` parameter picks its
generation (v4, or v3 with ``allow_eio3``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from typing import Any, Callable
from urllib.parse import parse_qs

import tornado.httputil
import tornado.web
import tornado.websocket
from tornado.iostream import StreamClosedError

from .. import _json
from .. import _tornado_compat as compat
from ..engineio import codec
from ..engineio.codec import Encoded
from ..engineio.server import Engine, EngineError, PollingTransport, forbidden
from ..engineio.session import Close, HandshakeInfo, Session
from ..exceptions import ProtocolError, TransportError
from ..options import ServerOptions
from ..websocket.frames import frame as ws_frame
from .fast_websocket import FastWebSocketProtocol, RawSocketStream
from .request_rules import RequestRules

log = logging.getLogger("tornad_io.transport")


def _ws_frame(packet: Encoded) -> bytes:
    """The WebSocket frame of one encoded packet, cached on packets shared by a broadcast."""
    kind = type(packet)
    if kind is str:
        return ws_frame(0x1, packet.encode())  # type: ignore[union-attr]
    if kind is bytes:
        return ws_frame(0x2, packet)  # type: ignore[arg-type]
    cached: bytes | None = packet.__dict__.get("ws")
    if cached is None:
        cached = ws_frame(0x1, packet.encode()) if isinstance(packet, str) else ws_frame(0x2, bytes(packet))
        packet.__dict__["ws"] = cached
    return cached


# A WebSocket whose unsent output exceeds this many bytes drops volatile packets.
_CONGESTED_BYTES = 64 * 1024


def pending_bytes(stream: Any) -> int:
    """Bytes written to *stream* that the kernel has not taken yet (corked ones included)."""
    if stream is None:
        return 0
    if type(stream) is RawSocketStream:
        return stream.buffered
    return compat.pending_write_bytes(stream)


class EngineIOHandler(compat.HandlerHooks, tornado.websocket.WebSocketHandler, RequestRules):
    """Tornado handler for one Engine.IO mount point (``/socket.io/`` by default)."""

    name = "websocket"  # what this handler is when it carries a session

    def initialize(self, engine: Engine) -> None:
        self.engine = engine
        self.opts = engine.options
        self._session: Session | None = None
        self._poll: PollingTransport | None = None

    # -- helpers ---------------------------------------------------------------

    def _query(self) -> dict[str, str]:
        return {k: v[-1].decode("utf-8", "replace") for k, v in self.request.query_arguments.items()}

    def _server_request(self) -> tornado.httputil.HTTPServerRequest:
        return self.request

    def compute_etag(self) -> str | None:
        return None  # hashing every poll buys nothing

    def check_xsrf_cookie(self) -> None:
        return None  # clients of a Socket.IO endpoint carry no XSRF token

    def prepare(self) -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            # Responses carry session data: never sniffed into another type, never cached.
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Cache-Control", "no-store")

    def summary_for_access_log(self) -> str | None:
        # Tornado's access log line: without the query (session ids, tokens) unless asked.
        if self.opts.access_log_query:
            return None
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def _error(self, error: EngineError, refused: bool = True) -> None:
        """Answer with the reference's error body; a refused request is told to ``connection_error`` listeners."""
        if refused:
            self.engine.refused(self.request, error)
        self.clear_header("Content-Type")
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(_json.dumps({"code": error.code, "message": error.message}))

    def _nodelay(self) -> None:
        """No Nagle delay from the 101 response on: the open packet must not wait for an ACK."""
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)

    def _handshake_info(self, query: dict[str, str]) -> HandshakeInfo:
        info = super()._handshake_info(query)
        if self.path_kwargs or self.path_args:
            info.route = {"args": list(self.path_args), "kwargs": dict(self.path_kwargs)}
        return info

    async def _allow_handshake(self) -> None:
        self.engine.admit(self._client_address())
        hook = self.opts.allow_request
        if hook is None:
            return
        verdict = hook(self)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is True or verdict is None:
            return
        raise forbidden(verdict if isinstance(verdict, str) else "Forbidden")

    # -- HTTP verbs --------------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        query = self._query()
        websocket = self.request.headers.get("Upgrade", "").lower() == "websocket"
        if not self._origin_allowed():
            self._error(forbidden())
            return
        refusal = None if websocket else self._check_jsonp(query)
        if refusal is not None:
            self._error(refusal)
            return
        try:
            session = self.engine.check_request("GET", query, websocket)
            if session is None:
                await self._allow_handshake()
        except EngineError as error:
            self._error(error)
            return
        if websocket:
            self._session = session
            self._set_cors_headers()
            self._response_headers(session is None)
            self._nodelay()
            await super().get(*args, **kwargs)
            return
        self._set_cors_headers()
        if session is None:
            transport = PollingTransport()
            session = self.engine.handshake(transport, self._handshake_info(query), self.engine.generation_for(query))
            transport.session = session
            self._set_cookie_header(session.sid)
        transport = session.transport  # type: ignore[assignment]
        assert isinstance(transport, PollingTransport)
        if transport.polling:
            # Two GETs at once: the reference closes the session (transport error).
            session.abort("transport error", description=TransportError("overlap from client"))
            self._error(EngineError(3, "Bad request"), refused=False)
            return
        self._poll = transport
        try:
            packets = await transport.poll()
        except asyncio.CancelledError:
            return  # the client went away; the packets stay queued
        finally:
            self._poll = None
        self._response_headers("sid" not in query)
        self._write_payload(session.payload(packets), query.get("j"))

    def _write_payload(self, payload: str | bytes, jsonp: str | None) -> None:
        if isinstance(payload, bytes):
            if jsonp is not None:
                # A binary body cannot be a script: a session that takes binary was polled with j=.
                self._error(EngineError(3, "Bad request"))
                return
            body = payload
            self.set_header("Content-Type", "application/octet-stream")
        elif jsonp is not None:
            escaped = _json.dumps(payload).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
            body = f"___eio[{jsonp}]({escaped});".encode()
            self.set_header("Content-Type", "text/javascript; charset=UTF-8")
        else:
            body = payload.encode()
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(self._compressed(body))

    async def post(self, *args: Any, **kwargs: Any) -> None:
        query = self._query()
        if not self._origin_allowed():
            self._error(forbidden())
            return
        refusal = self._check_jsonp(query)
        if refusal is not None:
            self._error(refusal)
            return
        try:
            session = self.engine.check_request("POST", query, False)
        except EngineError as error:
            self._error(error)
            return
        assert session is not None
        self._set_cors_headers()
        body = self.request.body
        if len(body) > self.opts.max_http_buffer_size:
            session.abort("transport error")
            self.set_status(413)
            self.finish("Payload Too Large")
            return
        try:
            if "j" not in query and _is_binary(self.request.headers.get("Content-Type", "")):
                packets = session.decode_binary_payload(body)
            else:
                text = body.decode("utf-8")
                if "j" in query:
                    text = _jsonp_body(text)
                packets = session.decode_payload(text)
        except (UnicodeDecodeError, ProtocolError) as exc:
            session.protocol_error(exc if isinstance(exc, ProtocolError) else ProtocolError(str(exc)))
            self._error(EngineError(3, "Bad request"), refused=False)
            return
        self.set_header("Content-Type", "text/html")
        self._response_headers(False)
        self.finish("ok")
        try:
            session.receive_many(packets)
        except ProtocolError as exc:
            session.protocol_error(exc)

    async def options(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Origin") is None or not self._origin_allowed():
            self._error(EngineError(2, "Bad handshake method", context={"method": "OPTIONS"}))
            return
        self._set_cors_headers()
        self.set_header("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
        requested = self.request.headers.get("Access-Control-Request-Headers")
        if requested:
            self.set_header("Access-Control-Allow-Headers", requested)
        self.set_status(204)
        self.finish()

    async def put(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_method()

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_method()

    async def patch(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_method()

    def _refuse_method(self) -> None:
        query = self._query()
        try:
            self.engine.check_request(self.request.method or "", query, False)
        except EngineError as error:
            self._error(error)
            return
        self._error(EngineError(3, "Bad request"))

    # -- WebSocket ---------------------------------------------------------------

    def check_origin(self, origin: str) -> bool:
        return True  # checked in get() with the same rule as polling

    def get_compression_options(self) -> dict[str, Any] | None:
        deflate = self.opts.per_message_deflate
        if not deflate:
            return None
        return deflate if isinstance(deflate, dict) else {}

    @property
    def max_message_size(self) -> int:
        return self.opts.max_http_buffer_size

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        if not compat.PRIVATE_OK:
            return super().get_websocket_protocol()  # Tornado's own WebSocketProtocol13
        if self.request.headers.get("Sec-WebSocket-Version") != "13":
            return None
        return FastWebSocketProtocol(self, False, compat.websocket_params(self))

    async def open(self, *args: str, **kwargs: str) -> None:
        conn = self.ws_connection
        assert conn is not None
        # From here on the connection is served by a small transport object; once the
        # socket is taken over (FastWebSocketProtocol) this request handler can be freed.
        transport = WebSocketTransport(self.name, conn, self.opts)
        conn.handler = transport
        await self._open_session(transport)

    async def _open_session(self, transport: WebSocketTransport) -> None:
        """Give a new WebSocket its session: a fresh one, or the polling session it upgrades."""
        session = self._session
        self._session = None
        open_websocket_session(self.engine, transport, session, self._query(), self._handshake_info)

    def on_close(self) -> None:
        if self._poll is not None:
            self._poll.cancel_poll()


def open_websocket_session(
    engine: Engine,
    transport: WebSocketTransport,
    upgrading: Session | None,
    query: dict[str, str],
    handshake_info: Callable[[dict[str, str]], HandshakeInfo],
) -> None:
    """Give a new WebSocket its session: a fresh one (a handshake), or the polling session it upgrades.

    Both HTTP paths call it once the 101 response is written (the handler's ``open``, and
    :mod:`tornad_io.transports.lean_websocket`).
    """
    if upgrading is None:
        transport.session = engine.handshake(transport, handshake_info(query), engine.generation_for(query))
        return
    if not upgrading.can_upgrade():
        transport.conn.close()
        return
    transport.session = upgrading
    upgrading.start_upgrade(transport)


class WebSocketTransport:
    """A session's WebSocket: what the session writes to, and what Tornado's protocol reports to."""

    pulls = False
    upgradable = False
    __slots__ = ("name", "conn", "opts", "session", "batch", "closed")

    def __init__(self, name: str, conn: tornado.websocket.WebSocketProtocol, opts: ServerOptions) -> None:
        self.name = name
        self.conn = conn
        self.opts = opts
        self.session: Session | None = None
        #: All queued packets in one message (the generation's ``batches_websocket_messages``).
        self.batch = False
        self.closed = False

    # -- what Tornado's WebSocket protocol calls -------------------------------------

    def on_message(self, message: str | bytes) -> None:
        session = self.session
        if session is None:
            return
        try:
            if session.transport is self:
                session.receive(message)
            else:
                session.probe_receive(self, message)  # still probing an upgrade
        except ProtocolError as exc:
            if session.transport is self:
                session.protocol_error(exc)
            else:
                self.conn.close()

    def on_ws_connection_close(self, close_code: int | None = None, close_reason: str | None = None) -> None:
        if self.closed and self.session is None:
            return
        self.closed = True
        session, self.session = self.session, None
        if session is None:
            return
        if session.transport is self:
            session.abort("transport close", Close.DROP)
        else:
            session.probe_closed(self)

    def on_ping(self, data: bytes) -> None:
        pass

    def on_pong(self, data: bytes) -> None:
        pass

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        log.error("error on a WebSocket", exc_info=(typ, value, tb))

    # -- the Transport protocol (for the session) ------------------------------------

    @property
    def writable(self) -> bool:
        return not self.closed

    def is_congested(self) -> bool:
        stream: Any = getattr(self.conn, "stream", None)
        return stream is None or pending_bytes(stream) > _CONGESTED_BYTES

    def deliver(self, packets: list[Encoded]) -> None:
        if self.closed:
            return
        conn: Any = self.conn
        if self.batch:
            packets = ["".join(packets)]  # type: ignore[arg-type]
        try:
            if type(conn) is FastWebSocketProtocol and not conn.deflate:
                # One send for all the frames; a broadcast's frame is built once (see Shared*).
                if len(packets) == 1:
                    conn.send_frames(_ws_frame(packets[0]))
                else:
                    conn.send_frames(b"".join([_ws_frame(p) for p in packets]))
            else:  # deflate, or Tornado's own protocol (see _tornado_compat)
                for packet in packets:
                    if codec.compressible(packet):
                        compat.write_message(conn, packet)
                    else:  # compress(False): a plain frame, no RSV1, written in turn with the others
                        conn.stream.write(_ws_frame(packet))
        except (StreamClosedError, tornado.websocket.WebSocketClosedError):
            self.closed = True
            return
        # Corked frames count too: past the cap they are handed to the kernel at once, and
        # what it does not take (a client that does not read) is what decides.
        stream = conn.stream
        buffered = pending_bytes(stream)
        if buffered > self.opts.max_buffered_bytes and type(stream) is RawSocketStream:
            stream.uncork()
            buffered = stream.buffered
        if buffered > self.opts.max_buffered_bytes and self.session is not None:
            self.session.overflow(buffered)

    def end(self, packets: list[Encoded] | None = None) -> None:
        self.closed = True
        self.conn.close()

    def finish(self, queue: list[Encoded], mode: Close) -> bool:
        """The session closed: a server close (FLUSH) sends what was queued first; then the socket closes."""
        if mode is Close.FLUSH and queue:
            self.deliver(queue)
        self.end()
        return False


def _is_binary(content_type: str) -> bool:
    """Whether a POST body is a binary payload (Engine.IO v3 clients with XHR2)."""
    return content_type.split(";", 1)[0].strip().lower() == "application/octet-stream"


def _jsonp_body(text: str) -> str:
    """The ``d`` field of a JSONP POST, with the client's escaped newlines restored."""
    fields = parse_qs(text, keep_blank_values=True)
    if "d" not in fields:
        raise ProtocolError("JSONP body without a d field")
    # The client escapes newlines as backslash-n and backslash-n as a double backslash-n.
    return _JSONP_NEWLINES.sub(lambda m: "\n" if len(m.group(0)) == 2 else "\\n", fields["d"][0])


_JSONP_NEWLINES = re.compile(r"\\\\n|\\n")


def engine_routes(engine: Engine, path: str | None = None) -> list[tuple[str, type, dict[str, Any]]]:
    """Tornado URL rules that mount *engine* at *path* (with or without the trailing slash)."""
    mount = (path or engine.options.path).rstrip("/")
    return [(re.escape(mount) + "/?", EngineIOHandler, {"engine": engine})]
