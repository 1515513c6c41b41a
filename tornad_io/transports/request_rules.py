"""The rules an Engine.IO request is checked and answered by, shared by both HTTP paths.

:class:`RequestRules` holds what the reference server decides from a request's
headers alone: whether its origin is allowed, its CORS and cookie headers, the
client's address behind trusted proxies, the handshake's description, and the
engine's ``initial_headers``/``headers`` events. Tornado's handler
(:class:`~tornad_io.transports.engineio.EngineIOHandler`) and the lean
delegate (:mod:`tornad_io.transports.lean_http`) both inherit it, so the two
paths run the same code for every check.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._logsafe import safe_repr
from ..engineio.server import Engine, EngineError, forbidden
from ..engineio.session import HandshakeInfo
from ..options import ServerOptions

if TYPE_CHECKING:
    from tornado.httputil import HTTPServerRequest

log = logging.getLogger("tornad_io.transport")

_JSONP_INDEX = re.compile(r"[0-9]{1,9}")  # str.isdigit() would take "²" or "١"

# Refused origins are logged once each, up to this many per engine (a client picks them).
_MAX_LOGGED_ORIGINS = 256


def referer_origin(headers: Any) -> str | None:
    """``scheme://host[:port]`` of the ``Referer`` header, or None."""
    referer = headers.get("Referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


class RequestRules:
    """Checks and response headers of one Engine.IO request, from ``request``, ``opts`` and ``engine``.

    The class using it supplies those three attributes and Tornado's
    ``set_header``, ``add_header`` and ``clear_header``.
    """

    #: Tornado's ``HTTPServerRequest``, or the lean path's ``LeanRequest`` (the same names: ``headers``,
    #: ``protocol``, ``host``, ``remote_ip``, ``uri``, ``method``, ``path``).
    request: Any
    opts: ServerOptions
    engine: Engine

    if TYPE_CHECKING:

        def set_header(self, name: str, value: Any) -> None: ...

        def add_header(self, name: str, value: Any) -> None: ...

        def clear_header(self, name: str) -> None: ...

    def _server_request(self) -> HTTPServerRequest:
        """The request as Tornado's ``HTTPServerRequest``, for hooks and events that are given it."""
        raise NotImplementedError

    def _allowed_origins(self) -> Any:
        """The ``cors_allowed_origins`` rule in force for this request."""
        return self.opts.cors_allowed_origins

    def _scheme(self) -> str:
        if self._behind_proxy():
            return str(self.request.headers.get("X-Forwarded-Proto", self.request.protocol)).lower()
        return str(self.request.protocol).lower()

    def _same_origin(self, origin: str) -> bool:
        """Whether *origin* is this server's own: same scheme, host and port."""
        host = self.request.headers.get("X-Forwarded-Host") if self._behind_proxy() else None
        host = (host or self.request.host or "").lower()
        parts = urlsplit(origin)
        scheme = parts.scheme.lower()
        if scheme in ("ws", "wss"):
            scheme = "http" if scheme == "ws" else "https"
        return scheme == self._scheme() and parts.netloc.lower() == host

    def _origin_ok(self, origin: str) -> bool:
        allowed = self._allowed_origins()
        if allowed == "*":
            return True
        if allowed is None:
            ok = self._same_origin(origin)
        elif callable(allowed):
            ok = bool(allowed(origin))
        elif isinstance(allowed, str):
            ok = origin == allowed
        else:
            ok = origin in allowed
        if not ok:
            self._log_refused_origin(origin)
        return ok

    def _log_refused_origin(self, origin: str) -> None:
        seen = self.engine.refused_origins
        if origin in seen or len(seen) > _MAX_LOGGED_ORIGINS:
            return
        seen.add(origin)
        if len(seen) > _MAX_LOGGED_ORIGINS:
            log.warning("more origins refused; no further ones are logged")
            return
        log.warning(
            "refused a request from origin %s: not allowed by cors_allowed_origins (logged once per origin)",
            safe_repr(origin),
        )

    def _origin_allowed(self) -> bool:
        origin = self.request.headers.get("Origin")
        if origin is None:
            return True
        return self._origin_ok(origin)

    def _jsonp_allowed(self) -> bool:
        """A JSONP request (a script load or form post) passes only from an allowed page.

        Script loads carry no ``Origin``: the ``Referer`` stands for it, and a
        request with neither is refused unless any origin is allowed.
        """
        if self._allowed_origins() == "*":
            return True
        origin = self.request.headers.get("Origin") or referer_origin(self.request.headers)
        return origin is not None and origin != "null" and self._origin_ok(origin)

    def _check_jsonp(self, query: dict[str, str]) -> EngineError | None:
        if "j" not in query:
            return None
        if not self.opts.jsonp:
            return EngineError(3, "JSONP polling is disabled (server option jsonp)")
        if not _JSONP_INDEX.fullmatch(query["j"]):
            return EngineError(3, "Bad request")
        if not self._jsonp_allowed():
            return forbidden()
        return None

    def _set_cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is None:
            return
        if self.opts.cors_allowed_origins == "*" and not self.opts.cors_credentials:
            self.set_header("Access-Control-Allow-Origin", "*")
        else:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.add_header("Vary", "Origin")
        if self.opts.cors_credentials:
            self.set_header("Access-Control-Allow-Credentials", "true")

    def _behind_proxy(self) -> bool:
        return self.opts.is_trusted_proxy(self.request.remote_ip or "")

    def _client_address(self) -> str:
        address: str = self.request.remote_ip or ""
        if not self.opts.is_trusted_proxy(address):
            return address
        forwarded: str = self.request.headers.get("X-Forwarded-For", "")
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if not self.opts.is_trusted_proxy(hop):
                return hop
            address = hop
        return address

    def _handshake_info(self, query: dict[str, str]) -> HandshakeInfo:
        request = self.request
        secure = request.protocol == "https"
        if self._behind_proxy():
            secure = request.headers.get("X-Forwarded-Proto", request.protocol) == "https"
        info = HandshakeInfo(
            headers=request.headers,
            query=query,
            address=self._client_address(),
            secure=secure,
            url=request.uri or "",
            xdomain="Origin" in request.headers,
        )
        return info

    def _set_cookie_header(self, sid: str) -> None:
        cookie = self.opts.cookie
        if not cookie:
            return
        conf: dict[str, Any] = {"name": "io", "path": "/", "httponly": True, "samesite": "Lax"}
        if isinstance(cookie, dict):
            conf.update(cookie)
        parts = [f"{conf['name']}={sid}", f"Path={conf['path']}"]
        if conf.get("httponly"):
            parts.append("HttpOnly")
        if conf.get("samesite"):
            parts.append(f"SameSite={conf['samesite']}")
        if conf.get("secure", self._scheme() == "https"):
            parts.append("Secure")
        self.add_header("Set-Cookie", "; ".join(parts))

    def _response_headers(self, initial: bool) -> None:
        """The engine's ``initial_headers`` and ``headers`` events: listeners may add response headers."""
        engine = self.engine
        if not (engine.has_listeners("headers") or (initial and engine.has_listeners("initial_headers"))):
            return
        headers: dict[str, Any] = {}
        if initial:
            engine.fire("initial_headers", headers, self._server_request())
        engine.fire("headers", headers, self._server_request())
        for name, value in headers.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if name.lower() == "set-cookie":  # added beside the sticky-session cookie, not over it
                for one in values:
                    self.add_header(name, str(one))
            elif isinstance(value, (list, tuple)):
                self.clear_header(name)
                for one in values:
                    self.add_header(name, str(one))
            else:
                self.set_header(name, str(value))

    def _compressed(self, body: bytes) -> bytes:
        """*body* gzipped or deflated when ``http_compression_threshold`` says so and the client accepts it."""
        threshold = self.opts.http_compression_threshold
        if threshold is not None and len(body) >= threshold:
            accepted = self.request.headers.get("Accept-Encoding", "")
            if "gzip" in accepted:
                body = gzip.compress(body, compresslevel=6)
                self.set_header("Content-Encoding", "gzip")
            elif "deflate" in accepted:
                body = zlib.compress(body, 6)
                self.set_header("Content-Encoding", "deflate")
        return body
