"""A lean HTTP path for Engine.IO long-polling, beside the Tornado application.

:class:`tornad_io.HTTPServer` gives each request on a connection a
:class:`LeanDelegate`. When the request is a polling ``GET`` or ``POST`` (or a
handshake) for a path that the application routes to
:class:`~tornad_io.transports.engineio.EngineIOHandler`, the delegate answers
it itself, with the same engine calls, checks (:class:`RequestRules`, shared
with the handler) and response headers as the handler, but without a
``RequestHandler``, its life cycle or the application's routing. Every other
request -- another path, a WebSocket upgrade, ``OPTIONS``, ``HEAD``, JSONP, a
form-encoded body, a handshake with an ``allow_request`` hook -- goes to the
application's own delegate, unchanged.

Tornado's ``HTTP1Connection`` still reads and writes the messages, so framing,
keep-alive, pipelining, body size caps and timeouts are Tornado's on both
paths. :class:`EngineRouter` decides from the application's rules, as Tornado's
routing would, and declines (standard path for everything) when the
application could answer differently from the handler: response transforms
(``compress_response``), a ``log_function`` setting, an overridden routing or
logging method, or Tornado's private fast paths being off (then Tornado's own
``_cross_origin_protection`` runs in the handler, see
:mod:`tornad_io._tornado_compat`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from http.client import responses
from typing import Any, Awaitable, Callable

import tornado
import tornado.web
from tornado import httputil
from tornado.log import access_log, app_log
from tornado.routing import PathMatches

from .. import _json
from .. import _tornado_compat as compat
from ..engineio.codec import Encoded
from ..engineio.server import Engine, EngineError, PollingTransport, forbidden
from ..engineio.session import Session
from ..exceptions import ProtocolError, TransportError
from .engineio import EngineIOHandler, _is_binary
from .fast_websocket import send_corked
from .request_rules import RequestRules

log = logging.getLogger("tornad_io.transport")

_SERVER = f"TornadoServer/{tornado.version}"
_INVALID_HEADER_CHAR = re.compile(r"[\x00-\x1f]")  # what RequestHandler refuses in a header value
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")  # Tornado parses these bodies
_APP_METHODS = ("start_request", "find_handler", "get_handler_delegate", "log_request", "__call__")
_CACHE_SIZE = 256

_date_cache: list[Any] = [0, ""]


def _date() -> str:
    """The ``Date`` header, formatted once per second."""
    now = time.time()
    second = int(now)
    if _date_cache[0] != second:
        _date_cache[0] = second
        _date_cache[1] = httputil.format_timestamp(now)
    return str(_date_cache[1])


def _header_value(value: Any) -> str:
    """A header value as ``RequestHandler.set_header`` takes it (str, bytes or int)."""
    if isinstance(value, bytes):
        text = value.decode("latin1")
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"Unsupported header value {value!r}")
    if _INVALID_HEADER_CHAR.search(text):
        raise ValueError(f"Unsafe header value {text!r}")
    return text


_PLAIN_QUERY = re.compile(r"[A-Za-z0-9._~=&-]*")  # nothing to unquote, nothing to decode


class LeanRequest:
    """What the lean path reads of a request, under ``HTTPServerRequest``'s names.

    Tornado's ``HTTPServerRequest`` (built by :meth:`server_request` when a hook
    or an event is given the request) copies and parses more than a poll needs.
    """

    __slots__ = (
        "method",
        "uri",
        "version",
        "path",
        "query",
        "headers",
        "host",
        "remote_ip",
        "protocol",
        "body",
        "connection",
        "server_connection",
        "start_line",
        "start",
        "_server_request",
    )

    def __init__(
        self,
        start_line: httputil.RequestStartLine,
        headers: httputil.HTTPHeaders,
        host: str,
        connection: httputil.HTTPConnection,
        server_connection: object,
    ) -> None:
        self.method = start_line.method
        self.uri = start_line.path
        self.version = start_line.version
        self.path, _, self.query = self.uri.partition("?")
        self.headers = headers
        self.host = host
        context = getattr(connection, "context", None)
        self.remote_ip: str | None = getattr(context, "remote_ip", None)
        self.protocol: str = getattr(context, "protocol", "http")
        self.body = b""
        self.connection = connection
        self.server_connection = server_connection
        self.start_line = start_line
        self.start = time.time()
        self._server_request: httputil.HTTPServerRequest | None = None

    def request_time(self) -> float:
        """Seconds since the request's headers were read."""
        return time.time() - self.start

    def server_request(self) -> httputil.HTTPServerRequest:
        """The same request as Tornado's ``HTTPServerRequest`` (built once)."""
        request = self._server_request
        if request is None:
            request = self._server_request = httputil.HTTPServerRequest(
                connection=self.connection,
                server_connection=self.server_connection,
                start_line=self.start_line,
                headers=self.headers,
            )
            request.body = self.body
        return request

    def __repr__(self) -> str:
        return repr(self.server_request())


class EngineRouter:
    """Which engine, if any, the lean path may answer a request path for, in one Tornado application.

    The answer is what Tornado's routing would pick: the first rule of the
    application whose pattern matches the path must be an
    :class:`~tornad_io.transports.engineio.EngineIOHandler` rule (that exact
    class, no groups in the pattern); host rules, or a rule of another kind
    before it, send the request to the standard path. Answers are cached per
    path and recomputed when rules are added.
    """

    def __init__(self, app: tornado.web.Application) -> None:
        self.app = app
        self._key: tuple[int, int] | None = None
        self._cache: dict[str, Engine | None] = {}
        #: (Host header, HTTP version) -> the request's ``host``, for Host values Tornado accepted.
        self.hosts: dict[tuple[str | None, str], str] = {}
        #: Whether lean connections answer WebSocket handshakes too (``tornad_io.transports.lean_websocket``).
        self.websocket = False

    @staticmethod
    def applies(app: Any) -> bool:
        """Whether *app* is an application whose Engine.IO requests the lean path can answer exactly."""
        if not compat.PRIVATE_OK or not isinstance(app, tornado.web.Application):
            return False
        cls = type(app)
        if any(getattr(cls, name) is not getattr(tornado.web.Application, name) for name in _APP_METHODS):
            return False
        return not app.transforms and "log_function" not in app.settings

    def engine_for(self, path: str) -> Engine | None:
        """The engine to answer *path* with, or None for the standard path."""
        app = self.app
        key = (len(app.default_router.rules), len(app.wildcard_router.rules))
        if key != self._key:
            self._key = key
            self._cache = {}
        cache = self._cache
        try:
            return cache[path]
        except KeyError:
            pass
        engine = self._lookup(path) if key[0] == 1 else None  # 1: no host rules
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[path] = engine
        return engine

    def _lookup(self, path: str) -> Engine | None:
        for rule in self.app.wildcard_router.rules:
            matcher = rule.matcher
            if type(matcher) is not PathMatches:
                return None  # it may match on something else than the path: let Tornado decide
            if matcher.regex.match(path) is None:
                continue
            if rule.target is EngineIOHandler and not matcher.regex.groups:
                engine = rule.target_kwargs.get("engine")
                return engine if isinstance(engine, Engine) else None
            return None
        return None


class LeanDelegate(RequestRules, httputil.HTTPMessageDelegate):
    """One request on a connection of :class:`tornad_io.HTTPServer`: answered here, or by the application.

    See the module's docstring for which requests are answered here.
    """

    request: LeanRequest

    __slots__ = (
        "router",
        "standard_factory",
        "server_conn",
        "request_conn",
        "standard",
        "request",
        "opts",
        "engine",
        "query",
        "chunks",
        "headers",
        "status",
        "transport",
        "finished",
    )

    def __init__(
        self,
        router: EngineRouter,
        standard_factory: Callable[[object, httputil.HTTPConnection], httputil.HTTPMessageDelegate],
        server_conn: object,
        request_conn: httputil.HTTPConnection,
    ) -> None:
        self.router = router
        self.standard_factory = standard_factory
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.standard: httputil.HTTPMessageDelegate | None = None
        self.chunks: list[bytes] = []
        self.transport: PollingTransport | None = None
        self.finished = False

    # -- HTTPMessageDelegate ---------------------------------------------------------

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        if self.accepts(start_line, headers):
            return None
        standard = self.standard = self.standard_factory(self.server_conn, self.request_conn)
        return standard.headers_received(start_line, headers)

    def accepts(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> bool:
        """Whether this request is answered here (then the delegate is ready for its body).

        Raises Tornado's ``HTTPInputError`` where Tornado's routing would (a bad Host or query).
        """
        method = start_line.method
        if (method != "GET" and method != "POST") or "Upgrade" in headers:
            return False
        engine = self.router.engine_for(start_line.path.partition("?")[0])
        if engine is None:
            return False
        query = self._parse(start_line, headers)
        opts = engine.options
        if (
            "j" in query
            or (method == "GET" and "sid" not in query and opts.allow_request is not None)
            or (method == "POST" and headers.get("Content-Type", "").lower().startswith(_FORM_TYPES))
        ):
            return False  # JSONP, a hook that takes the handler, a body Tornado parses: standard path
        self.engine = engine
        self.opts = opts
        self.query = query
        return True

    def _parse(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> dict[str, str]:
        """``self.request`` and the query's last values, with Tornado's checks (``HTTPInputError``, a 400).

        A Host header Tornado has accepted once and a query with nothing to unquote are read here;
        anything else goes through Tornado's ``HTTPServerRequest``, which raises as on the standard path.
        """
        hosts = self.router.hosts
        key = (headers.get("Host"), start_line.version)
        host = hosts.get(key)
        query_string = start_line.path.partition("?")[2]
        limit = compat.query_field_limit()
        if (
            host is not None
            and limit != 0
            and (limit is None or query_string.count("&") < limit)
            and _PLAIN_QUERY.fullmatch(query_string)
        ):
            self.request = LeanRequest(start_line, headers, host, self.request_conn, self.server_conn)
            query: dict[str, str] = {}
            for field in query_string.split("&"):
                if field:
                    name, _, value = field.partition("=")
                    query[name] = value
            return query
        request = LeanRequest(start_line, headers, "", self.request_conn, self.server_conn)
        tornado_request = request.server_request()  # raises HTTPInputError as Tornado's routing would
        request.host = tornado_request.host
        self.request = request
        if key[0] is not None:
            if len(hosts) >= _CACHE_SIZE:
                hosts.clear()
            hosts[key] = tornado_request.host
        return {k: v[-1].decode("utf-8", "replace") for k, v in tornado_request.query_arguments.items()}

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.standard is not None:
            return self.standard.data_received(chunk)
        self.chunks.append(chunk)
        return None

    def finish(self) -> None:
        if self.standard is not None:
            self.standard.finish()
            return
        request = self.request
        request.body = b"".join(self.chunks) if self.chunks else b""
        if request._server_request is not None:
            request._server_request.body = request.body
        self.chunks = []
        self.headers = httputil.HTTPHeaders()
        self.headers["Server"] = _SERVER
        self.headers["Content-Type"] = "text/html; charset=UTF-8"
        self.headers["Date"] = _date()
        self.headers["X-Content-Type-Options"] = "nosniff"
        self.headers["Cache-Control"] = "no-store"
        self.status = 200
        try:
            if request.method == "GET":
                self._get()
            else:
                self._post()
        except Exception:
            self._uncaught()

    def on_connection_close(self) -> None:
        if self.standard is not None:
            self.standard.on_connection_close()
        else:
            self.chunks = []

    # -- what RequestRules needs --------------------------------------------------------

    def _server_request(self) -> httputil.HTTPServerRequest:
        return self.request.server_request()

    def set_header(self, name: str, value: Any) -> None:
        self.headers[name] = _header_value(value)

    def add_header(self, name: str, value: Any) -> None:
        self.headers.add(name, _header_value(value))

    def clear_header(self, name: str) -> None:
        if name in self.headers:
            del self.headers[name]

    # -- the requests, as EngineIOHandler answers them --------------------------------------

    def _get(self) -> None:
        query = self.query
        engine = self.engine
        if not self._origin_allowed():
            self._error(forbidden())
            return
        try:
            session = engine.check_request("GET", query, False)
            if session is None:
                engine.admit(self._client_address())  # no allow_request hook here (see headers_received)
        except EngineError as error:
            self._error(error)
            return
        self._set_cors_headers()
        if session is None:
            transport = PollingTransport()
            session = engine.handshake(transport, self._handshake_info(query), engine.generation_for(query))
            transport.session = session
            self._set_cookie_header(session.sid)
        polling = session.transport
        assert isinstance(polling, PollingTransport)
        if polling.polling:
            # Two GETs at once: the reference closes the session (transport error).
            session.abort("transport error", description=TransportError("overlap from client"))
            self._error(EngineError(3, "Bad request"), refused=False)
            return
        started = polling.start_poll()
        if isinstance(started, list):
            self._answer_poll(session, started)
            return
        self.transport = polling
        set_close_callback = getattr(self.request_conn, "set_close_callback", None)
        if set_close_callback is not None:
            set_close_callback(self._on_close)
        started.add_done_callback(lambda future: self._polled(session, future))

    def _polled(self, session: Session, future: asyncio.Future[list[Encoded]]) -> None:
        transport = self.transport
        self.transport = None
        if transport is not None:
            transport.poll_done()
        if future.cancelled():
            return  # the client went away; the packets stay queued
        try:
            self._answer_poll(session, future.result())
        except Exception:
            self._uncaught()

    def _answer_poll(self, session: Session, packets: list[Encoded]) -> None:
        self._response_headers("sid" not in self.query)
        payload = session.payload(packets)
        if isinstance(payload, bytes):
            body = payload
            self.set_header("Content-Type", "application/octet-stream")
        else:
            body = payload.encode()
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self._finish(self._compressed(body))

    def _on_close(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.cancel_poll()

    def _post(self) -> None:
        query = self.query
        if not self._origin_allowed():
            self._error(forbidden())
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
            self.status = 413
            self._finish(b"Payload Too Large")
            return
        try:
            if _is_binary(self.request.headers.get("Content-Type", "")):
                packets = session.decode_binary_payload(body)
            else:
                packets = session.decode_payload(body.decode("utf-8"))
        except (UnicodeDecodeError, ProtocolError) as exc:
            session.protocol_error(exc if isinstance(exc, ProtocolError) else ProtocolError(str(exc)))
            self._error(EngineError(3, "Bad request"), refused=False)
            return
        self.set_header("Content-Type", "text/html")
        self._response_headers(False)
        self._finish(b"ok")
        try:
            session.receive_many(packets)
        except ProtocolError as exc:
            session.protocol_error(exc)

    # -- the response ------------------------------------------------------------------

    def _error(self, error: EngineError, refused: bool = True) -> None:
        """The reference's error body, as ``EngineIOHandler._error`` writes it."""
        if refused and self.engine.has_listeners("connection_error"):
            self.engine.refused(self.request.server_request(), error)
        self.clear_header("Content-Type")
        self.status = error.status
        self.set_header("Content-Type", "application/json")
        self._finish(_json.dumps({"code": error.code, "message": error.message}).encode())

    def _uncaught(self) -> None:
        """An exception escaped: log it and answer 500, as ``RequestHandler`` does."""
        app_log.error("Uncaught exception %s\n%r", self._summary(), self.request, exc_info=True)
        if self.finished:  # the head could not be written: nothing more can be said on this connection
            close = getattr(self.request_conn, "close", None)
            if close is not None:
                close()
            return
        self.headers = httputil.HTTPHeaders()
        self.headers["Server"] = _SERVER
        self.headers["Content-Type"] = "text/html; charset=UTF-8"
        self.headers["Date"] = _date()
        self.status = 500
        self._finish(b"<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>")

    def _finish(self, body: bytes) -> None:
        self.finished = True
        headers = self.headers
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        connection = self.request_conn
        set_close_callback = getattr(connection, "set_close_callback", None)
        if set_close_callback is not None:
            set_close_callback(None)  # as RequestHandler.finish: nothing to cancel any more
        status = self.status
        send_corked()  # WebSocket frames the server wrote before this answer leave before it
        connection.write_headers(
            httputil.ResponseStartLine("", status, responses.get(status, "Unknown")), headers, body
        )
        connection.finish()
        self._log(status)

    def _summary(self) -> str:
        request = self.request
        if self.opts.access_log_query:
            return f"{request.method} {request.uri} ({request.remote_ip})"
        return f"{request.method} {request.path} ({request.remote_ip})"

    def _log(self, status: int) -> None:
        """The access log line ``Application.log_request`` writes."""
        if status < 400:
            method = access_log.info
            level = logging.INFO
        elif status < 500:
            method = access_log.warning
            level = logging.WARNING
        else:
            method = access_log.error
            level = logging.ERROR
        if access_log.isEnabledFor(level):
            method("%d %s %.2fms", status, self._summary(), 1000.0 * self.request.request_time())
