"""The server side of the Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5).

:func:`instrument` does for a :class:`~tornad_io.Server` what the
reference's ``instrument(io, options)`` does for a Node server: it opens the
admin namespace (``/admin``), checks the UI's login, and sends it what the UI
shows (server stats every 2 seconds; in development mode every socket, room
and event as they happen) and carries out what the UI asks (emit, join,
leave, disconnect) unless read-only::

    from tornad_io.admin import instrument

    instrument(io, auth={"type": "basic", "username": "admin",
                         "password": "$2b$10$..."})  # a bcrypt hash

Point the UI (the hosted one, or the static files of the npm package
``@socket.io/admin-ui``, folder ``ui/dist``) at the server's URL. Basic
authentication needs the ``bcrypt`` package (the ``admin`` extra).

With a cluster adapter, every server is instrumented the same way: the UI's
events go through the admin namespace's adapter, so a UI connected to any
server sees every server's stats and sockets (``fetch_sockets`` across the
cluster) and its operations reach every server, as with the reference.

It is built on the library's public hooks (engine and session events, room
events of the adapter, namespace connection listeners, catch-all listeners):
see ``docs/architecture.md``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket as _socket
import weakref
from typing import TYPE_CHECKING, Any, Literal, Mapping

from .._usercode import spawn
from ..engineio.clock import Timer
from ..engineio.session import EnginePacket, Session, Transport
from ..exceptions import ConnectionRefused
from . import _report
from .stores import InMemoryStore, RedisStore, Store

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace
    from ..socketio.server import Server
    from ..socketio.socket import Socket

__all__ = ["InMemoryStore", "Instrumentation", "RedisStore", "Store", "instrument"]

log = logging.getLogger("tornad_io.admin")

#: Seconds between two ``server_stats`` events (the reference's interval).
STATS_INTERVAL = 2.0

# A bcrypt hash as bcrypt and bcryptjs write it: $2a$/$2b$/$2y$, cost, 53 characters of salt and hash.
_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")


def _bcrypt() -> Any:
    try:
        import bcrypt
    except ModuleNotFoundError as error:
        raise ImportError(
            "the Admin UI's basic authentication needs the optional dependency bcrypt: install tornad_io with "
            "its admin extra, e.g. pip install '/path/to/tornad_io[admin]' (or pass auth=False for a local demo)"
        ) from error
    return bcrypt


def instrument(
    io: Server,
    *,
    auth: Literal[False] | Mapping[str, str],
    mode: Literal["development", "production"] = "development",
    read_only: bool = False,
    namespace_name: str = "/admin",
    server_id: str | None = None,
    store: Store | None = None,
) -> Instrumentation:
    """Serve the Admin UI's protocol on *io*, at the namespace *namespace_name*.

    *auth* is required, as in the reference: ``False`` (no login; only for a
    local demo) or ``{"type": "basic", "username": ..., "password": ...}``,
    the password as a bcrypt hash (``$2b$...``, e.g. from
    ``bcrypt.hashpw(b"secret", bcrypt.gensalt())``). *mode* ``"production"``
    sends only the aggregated stats, not each socket and event. *read_only*
    refuses the UI's operations (emit, join, leave, disconnect). *server_id*
    names this server in the UI (default: the host name; give each process its
    own when several run on one host). *store* keeps login sessions
    (:class:`InMemoryStore` by default, :class:`RedisStore` for a cluster).

    Returns the :class:`Instrumentation`; its ``close()`` stops the stats timer.
    """
    return Instrumentation(io, auth, mode, read_only, namespace_name, server_id, store)


class Instrumentation:
    """One server instrumented for the Admin UI (what :func:`instrument` returns)."""

    def __init__(
        self,
        io: Server,
        auth: Literal[False] | Mapping[str, str],
        mode: str = "development",
        read_only: bool = False,
        namespace_name: str = "/admin",
        server_id: str | None = None,
        store: Store | None = None,
    ) -> None:
        if mode not in ("development", "production"):
            raise ValueError(f'mode must be "development" or "production", not {mode!r}')
        #: The instrumented server.
        self.io = io
        #: Whether each socket and event is reported (``"development"``) or only the stats.
        self.mode = mode
        #: Whether the UI's operations are refused.
        self.read_only = read_only
        #: Where login sessions are kept.
        self.store: Store = store if store is not None else InMemoryStore()
        #: The admin namespace the UI connects to.
        self.namespace: Namespace = io.of(namespace_name)
        #: What the UI may do, as the ``config`` event tells it.
        self.features: list[str] = [] if read_only else ["EMIT", "JOIN", "LEAVE", "DISCONNECT"]
        if not read_only:
            self.features += ["MJOIN", "MLEAVE", "MDISCONNECT"]
        self.features.append("AGGREGATED_EVENTS")
        if mode == "development":
            self.features.append("ALL_EVENTS")
        hostname = _socket.gethostname()
        self._base_stats = {"serverId": server_id or hostname, "hostname": hostname, "pid": os.getpid()}
        self._events = _report.EventBuffer()
        self._polling = 0
        self._timer: Timer | None = None
        self._closed = False
        # A login's session id, sent to its socket once the socket is connected.
        self._sessions: weakref.WeakKeyDictionary[Socket, str] = weakref.WeakKeyDictionary()
        self._watched: set[str] = set()
        self._credentials = self._check_auth(auth)
        if self._credentials is not None:
            self.namespace.use(self._authenticate)
        io.engine.on("connection", self._on_session)
        if mode == "development":
            for nsp in io.namespaces.values():
                self._watch(nsp)
            io.on("new_namespace", self._watch)
        self.namespace.add_connection_listener(self._on_admin)
        self._start()

    # -- authentication -----------------------------------------------------------

    def _check_auth(self, auth: Any) -> tuple[str, bytes] | None:
        if auth is None:
            raise ValueError("the auth option must be given, or explicitly set to False")
        if auth is False:
            log.warning("Admin UI: authentication is disabled (auth=False): use with caution")
            return None
        if not isinstance(auth, Mapping) or auth.get("type") != "basic":
            raise ValueError('invalid auth option: False, or {"type": "basic", "username": ..., "password": ...}')
        username, password = auth.get("username"), auth.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not _BCRYPT_HASH.fullmatch(password):
            raise ValueError("the auth password must be a valid bcrypt hash ($2b$...) and the username a string")
        _bcrypt()  # fail now, not at the first login, when bcrypt is missing
        return username, password.encode()

    async def _authenticate(self, socket: Socket) -> None:
        """The admin namespace's middleware: a known session id, or the right username and password."""
        assert self._credentials is not None
        auth = socket.handshake.auth
        session_id = auth.get("sessionId")
        if isinstance(session_id, str) and session_id and await self.store.does_session_exist(session_id):
            return
        username, hashed = self._credentials
        password = auth.get("password")
        if auth.get("username") == username and isinstance(password, str):
            bcrypt = _bcrypt()
            # bcrypt takes tens of milliseconds on purpose: off the event loop.
            loop = asyncio.get_running_loop()
            if await loop.run_in_executor(None, bcrypt.checkpw, password.encode(), hashed):
                session_id = secrets.token_hex(8)
                await self.store.save_session(session_id)
                self._sessions[socket] = session_id
                return
        raise ConnectionRefused("invalid credentials")

    # -- the admin namespace --------------------------------------------------------

    def _on_admin(self, socket: Socket) -> None:
        """An admin UI connected: its session, its features, then (development) every socket."""
        session_id = self._sessions.pop(socket, None)
        if session_id is not None:
            socket.emit("session", session_id)
        if not self.read_only:
            socket.on("emit", self._do_emit)
            socket.on("join", self._do_join)
            socket.on("leave", self._do_leave)
            socket.on("_disconnect", self._do_disconnect)
        socket.emit("config", {"supportedFeatures": self.features})
        if self.mode == "development":
            spawn(self._send_all_sockets(socket))
        self._start()

    async def _send_all_sockets(self, socket: Socket) -> None:
        sockets: list[dict[str, Any]] = []
        for nsp in list(self.io.namespaces.values()):
            for found in await nsp.fetch_sockets():
                sockets.append(_report.serialize(found, nsp.name))
        socket.emit("all_sockets", sockets)

    def _target(self, nsp: Any, selection: Any) -> Any:
        """The namespace *nsp*, narrowed to the room *selection* if one is given."""
        namespace = self.io.of(nsp)
        return namespace.in_(selection) if isinstance(selection, str) and selection else namespace

    def _do_emit(self, nsp: Any = None, selection: Any = None, event: Any = None, *args: Any) -> None:
        if isinstance(nsp, str) and isinstance(event, str):
            self._target(nsp, selection).emit(event, *args)

    def _do_join(self, nsp: Any = None, room: Any = None, selection: Any = None, *_: Any) -> None:
        if isinstance(nsp, str) and isinstance(room, str):
            self._target(nsp, selection).sockets_join(room)

    def _do_leave(self, nsp: Any = None, room: Any = None, selection: Any = None, *_: Any) -> None:
        if isinstance(nsp, str) and isinstance(room, str):
            self._target(nsp, selection).sockets_leave(room)

    def _do_disconnect(self, nsp: Any = None, close: Any = False, selection: Any = None, *_: Any) -> None:
        if isinstance(nsp, str):
            self._target(nsp, selection).disconnect_sockets(bool(close))

    def _tell(self, event: str, *args: Any) -> None:
        """Send *event* to every admin UI (across the cluster, through the admin namespace's adapter)."""
        try:
            self.namespace.emit(event, *args)
        except (TypeError, ValueError) as error:
            log.warning("Admin UI: could not send %s: %s", event, error)

    # -- development mode: every socket, room and event -------------------------------

    def _watch(self, nsp: Namespace) -> None:
        if nsp.name in self._watched:
            return
        self._watched.add(nsp.name)
        name = nsp.name
        nsp.add_connection_listener(lambda socket: self._on_socket(name, socket))
        nsp.adapter.on("join-room", lambda room, sid: self._tell("room_joined", name, room, sid, _report.timestamp()))

        def left(room: str, sid: str) -> None:
            # After the disconnect is told, as the reference does (it defers this to the next tick).
            asyncio.get_running_loop().call_soon(self._tell, "room_left", name, room, sid, _report.timestamp())

        nsp.adapter.on("leave-room", left)

    def _on_socket(self, name: str, socket: Socket) -> None:
        conn = socket.conn
        data = socket.data

        def data_changed() -> None:
            self._tell("socket_updated", {"id": socket.id, "nsp": name, "data": _report.data_without_admin(observed)})

        observed = _report.ObservedData(data_changed)
        if isinstance(data, Mapping):
            for key, value in data.items():
                observed.quietly(key, value)
        observed.quietly("_admin", {"clientId": conn.sid[:12], "transport": conn.transport.name})
        socket.data = observed
        self._tell("socket_connected", _report.serialize(socket, name), _report.timestamp())

        def upgraded(transport: Transport) -> None:
            admin = observed.get("_admin")
            if isinstance(admin, dict):
                dict.__setitem__(admin, "transport", transport.name)
            self._tell("socket_updated", {"id": socket.id, "nsp": name, "transport": transport.name})

        conn.on("upgrade", upgraded)
        if name != self.namespace.name:
            sid = socket.id
            socket.on_any(lambda *event: self._tell("event_received", name, sid, list(event), _report.timestamp()))
            socket.on_any_outgoing(lambda *event: self._tell("event_sent", name, sid, list(event), _report.timestamp()))

        def disconnected(reason: str) -> None:
            conn.off("upgrade", upgraded)
            self._tell("socket_disconnected", name, socket.id, reason, _report.timestamp())

        socket.on("disconnect", disconnected)

    # -- engine events and stats (both modes) ------------------------------------------

    def _on_session(self, session: Session) -> None:
        events = self._events
        events.push("rawConnection")
        self._start()
        if session.transport.pulls:
            self._polling += 1
            counted = [True]

            def not_polling(*_: Any) -> None:
                if counted[0]:
                    counted[0] = False
                    self._polling -= 1

            session.once("upgrade", not_polling)
            session.once("close", not_polling)

        def created(packet: EnginePacket) -> None:
            if packet.data:
                events.push("packetsOut")
                events.push("bytesOut", None, _byte_length(packet.data))

        def received(packet: EnginePacket) -> None:
            if packet.data:
                events.push("packetsIn")
                events.push("bytesIn", None, _byte_length(packet.data))

        session.on("packet_create", created)
        session.on("packet", received)
        session.on("close", lambda reason, description: events.push("rawDisconnection", reason))

    def stats(self) -> dict[str, Any]:
        """The next ``server_stats`` payload (which takes the event counts gathered so far)."""
        return {
            **self._base_stats,
            "uptime": _report.uptime(),
            "clientsCount": self.io.engine.clients_count,
            "pollingClientsCount": self._polling,
            "aggregatedEvents": self._events.take(),
            "namespaces": [{"name": nsp.name, "socketsCount": len(nsp.sockets)} for nsp in self.io.namespaces.values()],
        }

    def _start(self) -> None:
        """Emit stats now and every :data:`STATS_INTERVAL` seconds, once an event loop runs."""
        if self._timer is not None or self._closed:
            return
        try:
            self._timer = self.io.engine.clock.call_later(STATS_INTERVAL, self._tick)
        except RuntimeError:  # no running loop yet: the first connection starts it
            return
        self._tell("server_stats", self.stats())

    def _tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        self._timer = self.io.engine.clock.call_later(STATS_INTERVAL, self._tick)
        self._tell("server_stats", self.stats())

    def close(self) -> None:
        """Stop sending stats (the listeners stay, and the UI may stay connected)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _byte_length(data: str | bytes) -> int:
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode())
    return len(data)
