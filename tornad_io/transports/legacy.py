"""The six Socket.IO 0.6 transports over Tornado, beside Engine.IO v4.

URLs: ``/<resource>[<extra>]/<transport>[/<session id>[/<tail>]]``.

- ``websocket`` and ``flashsocket``: RFC 6455 (what Tornado and every living
  browser speak), one text message per payload;
- ``xhr-polling`` and ``jsonp-polling``: long-poll GETs held up to
  ``legacy_poll_duration``, POSTs of a form field ``data``;
- ``xhr-multipart`` and ``htmlfile``: one never-ending GET streaming payloads
  as multipart parts or ``<script>`` chunks, POSTs for the way back.

:class:`SocketIORouteHandler` answers a route of the original API: a request
naming a transport is 0.6, anything else is Engine.IO v4 (``/<resource>/``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import parse_qs

from .. import _tornado_compat as compat
from ..engineio import legacy_codec
from ..engineio.codec import Encoded
from ..engineio.legacy_session import SOCKET_IO_06, LegacySession
from ..engineio.server import EngineError
from ..engineio.session import Close
from ..exceptions import PayloadTooLarge, ProtocolError
from .engineio import _CONGESTED_BYTES, EngineIOHandler, WebSocketTransport, pending_bytes
from .request_rules import referer_origin

log = logging.getLogger("tornad_io.transport")

LEGACY_TRANSPORTS = ("websocket", "flashsocket", "xhr-multipart", "xhr-polling", "jsonp-polling", "htmlfile")

HTMLFILE_PREAMBLE = "<html><body>" + " " * 244
#: Transports loaded the way a <script> or an iframe is: no Origin header, the Referer tells.
SCRIPT_TRANSPORTS = frozenset({"jsonp-polling", "htmlfile"})
#: Transports that send through POSTs (the persistent ones send on their socket).
POSTING_TRANSPORTS = frozenset({"xhr-polling", "jsonp-polling", "xhr-multipart", "htmlfile"})
#: Most frames one 0.6 POST may carry (as Engine.IO v4 caps a payload's packets).
MAX_POST_FRAMES = 10_000


def multipart_boundary() -> str:
    """A boundary for one xhr-multipart response: random, so no payload can forge a part."""
    return "socketio" + secrets.token_hex(16)


_JSONP_INDEX = re.compile(r"(?:^|/)([0-9]+)/?$")


def js_string(text: str) -> str:
    """A JavaScript string literal for *text*, safe inside ``<script>``."""
    return json.dumps(text, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class LegacyPollingTransport:
    """xhr-polling and jsonp-polling: one held GET at a time."""

    pulls = True
    upgradable = False
    __slots__ = ("name", "session", "_waiter")

    def __init__(self, name: str) -> None:
        self.name = name
        self.session: LegacySession | None = None
        self._waiter: asyncio.Future[list[Encoded]] | None = None

    @property
    def writable(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    def is_congested(self) -> bool:
        return not self.writable

    def deliver(self, packets: list[Encoded]) -> None:
        assert self._waiter is not None
        self._waiter.set_result(packets)

    def end(self, packets: list[Encoded] | None = None) -> None:
        if self.writable:
            assert self._waiter is not None
            self._waiter.set_result(packets or [])

    def finish(self, queue: list[Encoded], mode: Close) -> bool:
        """The session closed: a held GET takes what was queued (on a server close) or nothing."""
        self.end(queue if mode is Close.FLUSH else [])
        return False

    async def poll(self, duration: float) -> list[Encoded]:
        """Wait up to *duration* seconds for packets for one GET."""
        session = self.session
        assert session is not None
        if self.writable:
            # A second GET while one is held: answer the older one, empty.
            assert self._waiter is not None
            self._waiter.set_result([])
        session.poll_started()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Encoded]] = loop.create_future()
        self._waiter = waiter

        def expire() -> None:
            if not waiter.done():
                waiter.set_result([])  # held long enough: an empty reply

        timer = session.engine.clock.call_later(duration, expire)
        try:
            session.flush()
            return await waiter
        finally:
            timer.cancel()
            if self._waiter is waiter:
                self._waiter = None
            session.poll_finished()


class LegacyStreamTransport:
    """xhr-multipart and htmlfile: payloads written into one open response."""

    pulls = False
    upgradable = False
    __slots__ = ("name", "handler", "done", "session", "boundary")

    def __init__(self, name: str, handler: SocketIORouteHandler, boundary: str = "") -> None:
        self.name = name
        self.session: LegacySession | None = None
        self.handler: SocketIORouteHandler | None = handler
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.boundary = boundary

    @property
    def writable(self) -> bool:
        return self.handler is not None

    def is_congested(self) -> bool:
        handler = self.handler
        if handler is None:
            return True
        return pending_bytes(_stream_of(handler)) > _CONGESTED_BYTES

    def deliver(self, packets: list[Encoded]) -> None:
        handler = self.handler
        if handler is None:
            return
        payload = "".join(packets)  # type: ignore[arg-type]
        if self.name == "htmlfile":
            chunk = f"<script>parent.s._({js_string(payload)}, document);</script>"
        else:
            chunk = f"Content-Type: text/plain\n\n{payload}\n--{self.boundary}\n"
        handler.write(chunk)
        handler.flush()
        # The same slow-consumer rule as the other transports: a client that does not
        # read is cut off once max_buffered_bytes wait for it.
        waiting = pending_bytes(_stream_of(handler))
        session = self.session
        if session is not None and waiting > handler.opts.max_buffered_bytes:
            session.overflow(waiting)

    def end(self, packets: list[Encoded] | None = None) -> None:
        if packets:
            self.deliver(packets)
        handler, self.handler = self.handler, None
        if handler is not None and compat.finish_once(handler):
            stream = _stream_of(handler)
            if stream is not None and pending_bytes(stream) > _CONGESTED_BYTES:
                stream.close()  # a reader that does not read: free what waits for it now
        if not self.done.done():
            self.done.set_result(None)

    def finish(self, queue: list[Encoded], mode: Close) -> bool:
        """The session closed: the response ends, after what was queued on a server close."""
        self.end(queue if mode is Close.FLUSH else None)
        return False

    def lost(self) -> None:
        """The GET's connection went away."""
        self.handler = None
        if not self.done.done():
            self.done.set_result(None)


def _stream_of(handler: Any) -> Any:
    connection = handler.request.connection
    return getattr(connection, "stream", None)


class SocketIORouteHandler(EngineIOHandler):
    """One route of the original API: 0.6 transports and Engine.IO v4 together."""

    def initialize(self, engine: Any, enabled_protocols: tuple[str, ...] = LEGACY_TRANSPORTS) -> None:
        super().initialize(engine)
        self.enabled_protocols = enabled_protocols
        self._stream: LegacyStreamTransport | None = None
        self._legacy_poll: LegacyPollingTransport | None = None
        self._legacy_websocket = False  # a 0.6 websocket or flashsocket request

    # -- helpers ---------------------------------------------------------------

    def _legacy_session(self, protocol: str, sid: str | None) -> LegacySession | None:
        session = self.engine.sessions.get(sid or "")
        if not isinstance(session, LegacySession) or session.transport.name != protocol:
            return None
        return session

    def _unknown_session(self) -> None:
        self.set_status(404)
        self.set_header("Connection", "close")
        self.set_header("Content-Type", "text/plain")
        self.finish("unknown session")

    def _legacy_origin_ok(self) -> bool:
        return self.opts.legacy_origin_allowed(self.request.headers.get("Origin"))

    def _legacy_script_origin_ok(self) -> bool:
        """``legacy_origins`` for a script-style load (jsonp-polling, htmlfile).

        Such a load carries the page's cookies but no ``Origin``: unless every
        origin is allowed (``*:*``), the ``Origin`` or else the ``Referer`` must be
        listed or be this server's own origin; a request with neither is refused.
        """
        if "*:*" in self.opts.legacy_origins:
            return True
        origin = self.request.headers.get("Origin") or referer_origin(self.request.headers)
        if origin is None or origin == "null":
            return False
        return self._same_origin(origin) or self.opts.legacy_origin_allowed(origin)

    def _legacy_refuse_origin(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain")
        self.finish("forbidden: origin not allowed (legacy_origins)")

    def _allow_credentials_for(self, origin: str) -> None:
        """CORS headers of a credentialed 0.6 response: the origin echoed, never ``*``."""
        self.set_header("Access-Control-Allow-Origin", origin)
        self.set_header("Access-Control-Allow-Credentials", "true")
        self.add_header("Vary", "Origin")

    def _legacy_info(self) -> Any:
        return self._handshake_info({})

    def _legacy_admit(self) -> bool:
        """Apply the handshake limits to a new 0.6 session; answer the refusal if any."""
        try:
            self.engine.admit(self._client_address())
        except EngineError as error:
            self.set_status(error.status)
            self.set_header("Content-Type", "text/plain")
            self.finish(error.message)
            return False
        return True

    # -- GET -----------------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        protocol = kwargs.get("protocol")
        if protocol is None:
            await super().get(*args, **kwargs)
            return
        if protocol not in self.enabled_protocols:
            self.send_error(404)
            return
        sid = kwargs.get("session_id") or None
        if protocol in SCRIPT_TRANSPORTS and not self._legacy_script_origin_ok():
            self._legacy_refuse_origin()
            return
        if protocol in ("websocket", "flashsocket"):
            if sid is not None or not self._legacy_origin_ok():
                self.set_status(403)
                self.finish("forbidden")
                return
            if not self._legacy_admit():
                return
            self.name = protocol
            self._legacy_websocket = True
            self._nodelay()
            await tornado_websocket_get(self, *args, **kwargs)
        elif protocol in ("xhr-polling", "jsonp-polling"):
            await self._poll_get(protocol, sid, kwargs.get("tail") or "")
        else:
            await self._stream_get(protocol, sid)

    async def _poll_get(self, protocol: str, sid: str | None, tail: str) -> None:
        jsonp_index = None
        if protocol == "jsonp-polling":
            match = _JSONP_INDEX.search(tail)
            jsonp_index = match.group(1) if match else "0"
        if sid is None:
            if not self._legacy_admit():
                return
            transport = LegacyPollingTransport(protocol)
            session = self.engine.handshake(transport, self._legacy_info(), SOCKET_IO_06)
            assert isinstance(session, LegacySession)
            transport.session = session
            if not await session.accepted:
                self.set_status(403)
                self.finish("connection refused")
                return
        else:
            found = self._legacy_session(protocol, sid)
            if found is None:
                self._unknown_session()
                return
            session = found
            transport = session.transport  # type: ignore[assignment]
        self._legacy_poll = transport
        try:
            packets = await transport.poll(self.opts.legacy_poll_duration)
        except asyncio.CancelledError:
            return
        finally:
            self._legacy_poll = None
        payload = session.payload(packets)
        origin = self.request.headers.get("Origin")
        if jsonp_index is not None:
            self.set_header("Content-Type", "text/javascript; charset=UTF-8")
            if origin is not None and not self._legacy_origin_ok():
                self.finish("alert('Cross domain security restrictions not met');")
                return
            self.finish(f"io.JSONP[{jsonp_index}]._({js_string(payload)});")
            return
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        if origin is not None and self._legacy_origin_ok():
            if "Cookie" in self.request.headers and origin != "null":
                self._allow_credentials_for(origin)
            else:
                self.set_header("Access-Control-Allow-Origin", "*" if origin == "null" else origin)
        self.finish(payload.encode())

    async def _stream_get(self, protocol: str, sid: str | None) -> None:
        if sid is not None:
            self._unknown_session()
            return
        if not self._legacy_admit():
            return
        boundary = ""
        if protocol == "htmlfile":
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            preamble = HTMLFILE_PREAMBLE
        else:
            boundary = multipart_boundary()
            self.set_header("Content-Type", f'multipart/x-mixed-replace;boundary="{boundary}"')
            origin = self.request.headers.get("Origin")
            if origin is not None and origin != "null" and self._legacy_origin_ok():
                self._allow_credentials_for(origin)
            preamble = f"--{boundary}\n"
        self.set_header("Connection", "keep-alive")
        self.set_header("Cache-Control", "no-store")
        self.write(preamble)  # buffered: goes out ahead of the first payload
        transport = LegacyStreamTransport(protocol, self, boundary)
        self._stream = transport
        session = self.engine.handshake(transport, self._legacy_info(), SOCKET_IO_06)
        assert isinstance(session, LegacySession)
        transport.session = session
        if not await session.accepted:
            transport.handler = None
            self.clear()
            self.set_status(403)
            self.finish("connection refused")
            return
        await transport.done
        self._stream = None
        compat.finish_once(self)

    # -- POST ----------------------------------------------------------------

    async def post(self, *args: Any, **kwargs: Any) -> None:
        protocol = kwargs.get("protocol")
        if protocol is None:
            await super().post(*args, **kwargs)
            return
        if protocol not in self.enabled_protocols or protocol not in POSTING_TRANSPORTS:
            # websocket and flashsocket sessions send on their socket, never through a POST.
            self.send_error(404)
            return
        origin = self.request.headers.get("Origin")
        if origin is not None and not self._legacy_origin_ok():
            self.set_status(401)
            self.set_header("Content-Type", "text/plain")
            self.finish("unauthorized")
            return
        if protocol in SCRIPT_TRANSPORTS and not self._legacy_script_origin_ok():
            self._legacy_refuse_origin()
            return
        session = self._legacy_session(protocol, kwargs.get("session_id"))
        if session is None:
            self._unknown_session()
            return
        body = self.request.body
        if len(body) > self.opts.max_http_buffer_size:
            self.set_status(413)
            self.finish("Payload Too Large")
            return
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            fields = {}
        data = fields.get("data")
        if data is None:
            self.set_status(400)
            self.set_header("Content-Type", "text/plain")
            self.finish("expected a form field named data")
            return
        dropped: list[str] = []
        try:
            messages = legacy_codec.decode_payload(
                data[0], crlf_tolerant=protocol == "jsonp-polling", max_frames=MAX_POST_FRAMES, dropped=dropped
            )
        except ProtocolError as error:
            self.set_status(413 if isinstance(error, PayloadTooLarge) else 400)
            self.set_header("Content-Type", "text/plain")
            self.finish(str(error))
            return
        self.set_header("Content-Type", "text/plain")
        if origin is not None and origin != "null" and protocol in ("xhr-multipart", "xhr-polling"):
            if protocol == "xhr-multipart" or "Cookie" in self.request.headers:
                self._allow_credentials_for(origin)
            else:
                self.set_header("Access-Control-Allow-Origin", "*")
        self.finish("ok")
        for reason in dropped:
            log.info("session %s: dropped %s", session.sid, reason)
        session.receive_messages(messages)

    async def options(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("protocol") is None:
            await super().options(*args, **kwargs)
            return
        origin = self.request.headers.get("Origin")
        if origin is not None and self._legacy_origin_ok():
            if origin == "null":
                self.set_header("Access-Control-Allow-Origin", "*")
            else:
                self._allow_credentials_for(origin)
            method = self.request.headers.get("Access-Control-Request-Method")
            if method:
                self.set_header("Access-Control-Allow-Methods", method)
            headers = self.request.headers.get("Access-Control-Request-Headers")
            if headers:
                self.set_header("Access-Control-Allow-Headers", headers)
        self.set_header("Content-Type", "text/plain")
        self.finish("ok")

    async def _open_session(self, transport: WebSocketTransport) -> None:
        if not self._legacy_websocket:
            await super()._open_session(transport)
            return
        transport.batch = SOCKET_IO_06.batches_websocket_messages
        session = self.engine.handshake(transport, self._handshake_info({}), SOCKET_IO_06)
        transport.session = session
        assert isinstance(session, LegacySession)
        if not await session.accepted:
            transport.session = None
            transport.conn.close()

    # -- connection ends ---------------------------------------------------------

    def on_close(self) -> None:
        poll = self._legacy_poll
        if poll is not None:
            if poll._waiter is not None and not poll._waiter.done():
                poll._waiter.cancel()
            return
        stream = self._stream
        if stream is not None:
            stream.lost()
            if stream.session is not None:
                stream.session.abort("transport close")
            return
        super().on_close()


async def tornado_websocket_get(handler: SocketIORouteHandler, *args: Any, **kwargs: Any) -> None:
    """Tornado's own WebSocket upgrade, bypassing the Engine.IO checks of the parent class."""
    import tornado.websocket

    await tornado.websocket.WebSocketHandler.get(handler, *args, **kwargs)
