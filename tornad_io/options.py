"""Server options, with the reference server's defaults.

Durations are seconds here (the Python API) and milliseconds on the wire,
exactly as the reference server advertises them in the handshake.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Any, Callable, Sequence, TypedDict, Union
from urllib.parse import urlsplit

from .socketio.parsers import Parser, resolve

OriginSetting = Union[None, str, Sequence[str], Callable[[str], bool]]


@dataclasses.dataclass
class ServerOptions:
    """Every tunable of a :class:`tornad_io.Server`, with its default.

    Pass any of these as keyword arguments to ``Server(...)``.

    :ivar recovery: The settings of connection state recovery in force (a
        :class:`~tornad_io.options.RecoveryOptions`, made from
        ``connection_state_recovery``), or None when recovery is off.
    """

    #: URL path the server answers on (reference: ``/socket.io/``).
    path: str = "/socket.io/"
    #: Seconds between two server pings (reference: 25 s).
    ping_interval: float = 25.0
    #: Seconds to wait for the pong before the peer is declared dead (reference: 20 s).
    ping_timeout: float = 20.0
    #: Seconds an unfinished polling→WebSocket upgrade may take (reference: 10 s).
    upgrade_timeout: float = 10.0
    #: Largest HTTP body or WebSocket message accepted, in bytes (reference: 1e6); also the
    #: most bytes the binary attachments of one packet may add up to (stricter than the
    #: reference, which caps each attachment only).
    max_http_buffer_size: int = 1_000_000
    #: Transports offered to clients.
    transports: tuple[str, ...] = ("polling", "websocket")
    #: Whether a polling session may upgrade to WebSocket.
    allow_upgrades: bool = True
    #: WebSocket permessage-deflate: off by default (memory), ``True`` or a dict
    #: of Tornado compression options to enable it.
    per_message_deflate: bool | dict[str, Any] = False
    #: gzip/deflate of polling responses at or above this many bytes; ``None`` disables.
    http_compression_threshold: int | None = 1024
    #: Allowed cross-origin callers: ``None`` = same origin only (default: scheme, host
    #: and port of the ``Origin`` equal the request's), ``"*"`` = any, a list of origins,
    #: or a predicate ``f(origin) -> bool``. Requests with no ``Origin`` header pass
    #: (non-browser clients, same-origin XHR GETs), except JSONP polling, whose script
    #: loads never carry one: see :attr:`jsonp`.
    cors_allowed_origins: OriginSetting = None
    #: Send ``Access-Control-Allow-Credentials: true`` to allowed origins.
    cors_credentials: bool = False
    #: Sticky-session cookie: ``False`` (default), ``True`` (name ``io``) or a
    #: dict with ``name``, ``path``, ``httponly``, ``samesite``.
    cookie: bool | dict[str, Any] = False
    #: Peers (addresses or networks) whose ``X-Forwarded-For`` is believed.
    trusted_proxies: Sequence[str] = ()
    #: Seconds a client may stay connected without joining a namespace (reference: 45 s).
    connect_timeout: float = 45.0
    #: Bytes that may wait for a client that does not read (polling queue or WebSocket
    #: send buffer) before it is disconnected ("transport error"); volatile packets are
    #: dropped for such a client long before.
    max_buffered_bytes: int = 4_000_000
    #: Most sessions at once; further handshakes get HTTP 503. ``None``: no limit.
    max_connections: int | None = None
    #: Handshakes allowed per second from one address (bursts of twice that); further ones
    #: get HTTP 429. ``None``: no limit.
    handshake_rate_per_ip: float | None = None
    #: Most binary attachments one packet may declare.
    max_attachments: int = 100
    #: Socket.IO 0.6 sessions: seconds between heartbeats (reference: 10 s) …
    legacy_heartbeat_interval: float = 10.0
    #: … and to wait for each echo (reference: 8 s).
    legacy_heartbeat_timeout: float = 8.0
    #: Seconds a 0.6 polling session lives after a GET without the next one (reference: 8 s).
    legacy_close_timeout: float = 8.0
    #: Seconds a 0.6 long-poll is held before an empty reply (reference: 20 s).
    legacy_poll_duration: float = 20.0
    #: Origins 0.6 clients may come from, as ``host:port`` with ``*`` wildcards (reference: ``*:*``).
    #: With anything but ``*:*``: a request with an ``Origin`` header must match; the
    #: script-style transports (``jsonp-polling``, ``htmlfile``), whose loads carry no
    #: ``Origin``, must carry a ``Referer`` that matches (or is the server's own origin);
    #: other requests with no ``Origin`` (same-origin XHR, non-browser clients) pass.
    legacy_origins: Sequence[str] = ("*:*",)
    #: Hook ``f(handler) -> bool | str``: return False or an error text to refuse
    #: a handshake before it starts (like ``allowRequest``).
    allow_request: Callable[[Any], Any] | None = None
    #: Engine.IO JSONP polling (``j=`` requests; reference: served). Off by default:
    #: a ``<script>`` load carries the victim's cookies but no ``Origin``, so any site
    #: could open a session as the logged-in user. When on, such requests must carry a
    #: ``Referer`` allowed by :attr:`cors_allowed_origins` (any, with ``"*"``).
    jsonp: bool = False
    #: Remove a dynamic namespace's child once its last socket leaves (reference: off).
    #: On by default here: off, every name a client invents stays in memory.
    cleanup_empty_child_namespaces: bool = True
    #: Whether Tornado's access log shows the query string of Engine.IO requests
    #: (session ids, tokens): off by default, the path alone is logged.
    access_log_query: bool = False
    #: Connection state recovery (reference: off): ``True`` for the defaults, or a dict with
    #: ``max_disconnection_duration`` (seconds a disconnected client may come back within;
    #: reference: 120), ``skip_middlewares`` (a recovered client skips the connection
    #: middleware; reference: True) and ``max_stored_bytes`` (packets kept for returning
    #: clients, per namespace, oldest dropped first; 16 MB). See ``docs/recovery.md``.
    connection_state_recovery: bool | dict[str, Any] = False
    #: Serve Engine.IO v3 clients (socket.io-client 2.x, ``EIO=3``) beside v4 ones, as the
    #: reference's ``allowEIO3`` does (reference: off; on in the original API's routes). Off,
    #: their handshakes are refused with "Unsupported protocol version".
    allow_eio3: bool = False
    #: The Socket.IO packet format of v5 clients (reference: the JSON one): ``"json"``, ``"msgpack"``
    #: (``socket.io-msgpack-parser`` 3.x; needs the ``msgpack`` extra) or a
    #: :class:`~tornad_io.socketio.parsers.Parser` object. Clients must use the same one.
    parser: Union[str, Parser] = "json"
    #: Serve the client bundle at ``<path>socket.io.js`` (and ``.min.js``, ``.esm.min.js``,
    #: ``.msgpack.min.js``, their source maps), as the reference's ``serveClient`` does: the
    #: folder of an installed ``socket.io-client`` package (e.g. ``node_modules/socket.io-client``).
    #: ``None`` (default): not served.
    serve_client: str | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        if not self.path.startswith("/"):
            self.path = "/" + self.path
        if not self.path.endswith("/"):
            self.path += "/"
        for name in (
            "ping_interval",
            "ping_timeout",
            "upgrade_timeout",
            "connect_timeout",
            "legacy_heartbeat_interval",
            "legacy_heartbeat_timeout",
            "legacy_close_timeout",
            "legacy_poll_duration",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_http_buffer_size <= 0:
            raise ValueError("max_http_buffer_size must be positive")
        unknown = set(self.transports) - {"polling", "websocket"}
        if unknown or not self.transports:
            raise ValueError(f"unknown transports: {sorted(unknown)}")
        self.transports = tuple(self.transports)
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies]
        self._recovery = RecoveryOptions.from_setting(self.connection_state_recovery)
        self._parser = resolve(self.parser)
        bundle = self.serve_client
        if bundle is not None and not os.path.isfile(os.path.join(bundle, "dist", "socket.io.js")):
            raise ValueError(
                f"serve_client: no dist/socket.io.js in {self.serve_client!r}: give the folder of an installed "
                "socket.io-client package (e.g. node_modules/socket.io-client)"
            )

    @property
    def recovery(self) -> RecoveryOptions | None:
        """The connection state recovery settings in force, or None when recovery is off."""
        return self._recovery

    @property
    def packet_parser(self) -> Parser:
        """The :class:`~tornad_io.socketio.parsers.Parser` object the ``parser`` option names."""
        return self._parser

    def legacy_origin_allowed(self, origin: str | None) -> bool:
        """The 0.6 ``origins`` rule: ``host:port`` entries, ``*`` in either half.

        A missing Origin passes only with ``*:*`` listed.
        """
        entries = set(self.legacy_origins)
        if "*:*" in entries:
            return True
        if not origin:
            return False
        parts = urlsplit(origin)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        except ValueError:
            return False
        return bool({f"{host}:{port}", f"{host}:*", f"*:{port}"} & entries)

    def is_trusted_proxy(self, address: str) -> bool:
        """Whether *address* is one of ``trusted_proxies``."""
        if not self._proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._proxies)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ServerOptions:
        """Build options, rejecting unknown names with a clear message."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(f"unknown server option(s): {', '.join(sorted(unknown))}")
        return cls(**kwargs)


class ServerOptionsDict(TypedDict, total=False):
    """The keyword arguments of ``Server(...)``: the fields of :class:`ServerOptions`.

    Every key is optional; a missing one keeps its default. It exists so that
    editors complete the options of :class:`~tornad_io.Server` and mypy checks
    their types (``Server(**options: Unpack[ServerOptionsDict])``). The test
    ``tests/test_options.py`` fails when a field is added to one and not the other.
    """

    path: str
    ping_interval: float
    ping_timeout: float
    upgrade_timeout: float
    max_http_buffer_size: int
    transports: tuple[str, ...]
    allow_upgrades: bool
    per_message_deflate: bool | dict[str, Any]
    http_compression_threshold: int | None
    cors_allowed_origins: OriginSetting
    cors_credentials: bool
    cookie: bool | dict[str, Any]
    trusted_proxies: Sequence[str]
    connect_timeout: float
    max_buffered_bytes: int
    max_connections: int | None
    handshake_rate_per_ip: float | None
    max_attachments: int
    legacy_heartbeat_interval: float
    legacy_heartbeat_timeout: float
    legacy_close_timeout: float
    legacy_poll_duration: float
    legacy_origins: Sequence[str]
    allow_request: Callable[[Any], Any] | None
    jsonp: bool
    cleanup_empty_child_namespaces: bool
    access_log_query: bool
    connection_state_recovery: bool | dict[str, Any]
    allow_eio3: bool
    parser: str | Parser
    serve_client: str | None


def _check_types(options: ServerOptions) -> None:
    """Raise :exc:`TypeError` naming the first option whose value is not of its annotated type.

    Lenient where it harms nothing: an int is a float, and a list (or set) of
    strings stands for a tuple or sequence of them.
    """
    for name, hint in _option_types().items():
        value = getattr(options, name)
        if not _matches(value, hint):
            message = f"option {name} must be {_describe(hint)}, not {type(value).__name__}: {value!r}"
            if name == "ping_interval" and isinstance(value, (tuple, list)):
                message += (
                    " (python-socketio's (interval, grace) pair has no equivalent here: give ping_interval"
                    " alone, and set ping_timeout for how long a pong may take)"
                )
            raise TypeError(message)


_HINTS: dict[str, Any] = {}


def _option_types() -> dict[str, Any]:
    """Each field of :class:`ServerOptions` with its annotation, resolved (computed once)."""
    if not _HINTS:
        import typing

        hints = typing.get_type_hints(ServerOptions)
        _HINTS.update((field.name, hints[field.name]) for field in dataclasses.fields(ServerOptions))
    return _HINTS


def _matches(value: Any, hint: Any) -> bool:
    import collections.abc
    import types
    import typing

    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple or origin is collections.abc.Sequence:
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple, set, frozenset)) and all(_matches(v, item) for v in value)
    if origin is collections.abc.Callable:
        return callable(value)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    try:
        return isinstance(value, origin or hint)
    except TypeError:  # a kind of annotation not checked here: let the value through
        return True


def _describe(hint: Any) -> str:
    """The expected type in words: ``a number``, ``a list or tuple of str``, ``an int or None``…"""
    import collections.abc
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is None or hint is type(None):
        return "None"
    if hint is float:
        return "a number"
    if hint is int:
        return "an int"
    if origin is tuple or origin is collections.abc.Sequence:
        return f"a list or tuple of {typing.get_args(hint)[0].__name__}"
    if origin is collections.abc.Callable:
        return "a callable"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in typing.get_args(hint))
    name = getattr(origin or hint, "__name__", str(hint))
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


@dataclasses.dataclass(frozen=True)
class RecoveryOptions:
    """The settings of connection state recovery (``connection_state_recovery``)."""

    #: Seconds a disconnected client may come back within (reference: 2 minutes).
    max_disconnection_duration: float = 120.0
    #: Whether a recovered client skips the connection middleware (reference: True).
    skip_middlewares: bool = True
    #: Bytes of packets kept for returning clients, per namespace; the oldest go first.
    max_stored_bytes: int = 16_000_000

    @classmethod
    def from_setting(cls, setting: bool | dict[str, Any]) -> RecoveryOptions | None:
        """The settings for the option's value (None: recovery off)."""
        if setting is False:
            return None
        if setting is True:
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(setting) - known
        if unknown:
            raise TypeError(f"unknown connection_state_recovery setting(s): {', '.join(sorted(unknown))}")
        options = cls(**setting)
        if options.max_disconnection_duration <= 0 or options.max_stored_bytes <= 0:
            raise ValueError(
                "connection_state_recovery: max_disconnection_duration and max_stored_bytes must be positive"
            )
        return options
