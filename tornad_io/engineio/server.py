"""The Engine.IO server: request checks, handshakes and the session table.

No HTTP here: the Tornado transports call :meth:`Engine.check_request` with
what the request said and turn an :class:`EngineError` into the reference
server's response (status and ``{"code", "message"}`` body).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from .._worker import owner_prefix
from ..events import EventEmitter
from ..exceptions import EngineError
from ..options import ServerOptions
from . import codec
from .clock import Clock, LoopClock
from .codec import Encoded
from .generation import Generation
from .session import CLOSED, ENGINE_IO_4, Close, HandshakeInfo, Session, Transport, new_id

log = logging.getLogger("tornad_io.engine")

__all__ = ["Engine", "EngineError", "PollingTransport", "RefusedRequest"]


def unknown_transport(transport: str | None = None) -> EngineError:
    return EngineError(0, "Transport unknown", context={"transport": transport})


def unknown_sid(sid: str | None = None) -> EngineError:
    return EngineError(1, "Session ID unknown", context={"sid": sid})


def bad_handshake_method(method: str | None = None) -> EngineError:
    return EngineError(2, "Bad handshake method", context={"method": method})


def bad_request(context: dict[str, Any] | None = None) -> EngineError:
    return EngineError(3, "Bad request", context=context)


def forbidden(message: str = "Forbidden") -> EngineError:
    return EngineError(4, message, 403, {"message": message})


def unsupported_version(protocol: str | None = None) -> EngineError:
    return EngineError(5, "Unsupported protocol version", context={"protocol": protocol})


class RefusedRequest:
    """What the engine's ``connection_error`` event gives: a request it refused.

    The reference's ``{req, code, message, context}``: *code* and *message*
    are those of the HTTP error body (``0`` "Transport unknown", ``1``
    "Session ID unknown", ``2`` "Bad handshake method", ``3`` "Bad request",
    ``4`` "Forbidden", ``5`` "Unsupported protocol version"), *context* says
    more (``{"sid": ...}``, ``{"name": "TRANSPORT_MISMATCH", "transport": ...,
    "previousTransport": ...}``, …), and *request* is Tornado's
    ``HTTPServerRequest``.
    """

    __slots__ = ("request", "code", "message", "context")

    def __init__(self, request: Any, code: int, message: str, context: dict[str, Any]) -> None:
        #: The refused request (``tornado.httputil.HTTPServerRequest``).
        self.request = request
        #: The Engine.IO error code.
        self.code = code
        #: The error message, as the response body says it.
        self.message = message
        #: Details of the refusal, as the reference gives them.
        self.context = context

    def __repr__(self) -> str:
        return f"<RefusedRequest code={self.code} message={self.message!r} context={self.context!r}>"


class PollingTransport:
    """Long-polling: a pending GET is the only way out, POSTs come in.

    The Tornado handler awaits :meth:`poll` for each GET; the session writes
    into it when a GET is waiting and queues otherwise.
    """

    name = "polling"
    pulls = True
    upgradable = True
    __slots__ = ("_waiter", "_final", "session")

    def __init__(self) -> None:
        self._waiter: asyncio.Future[list[Encoded]] | None = None
        self._final: list[Encoded] | None = None
        self.session: Session | None = None

    @property
    def writable(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    def is_congested(self) -> bool:
        return self._waiter is None

    def deliver(self, packets: list[Encoded]) -> None:
        waiter = self._waiter
        assert waiter is not None and not waiter.done()
        waiter.set_result(packets)

    def end(self, packets: list[Encoded] | None = None) -> None:
        if self.writable:
            assert self._waiter is not None
            self._waiter.set_result(packets or [codec.NOOP_PACKET])
        elif packets:
            self._final = packets

    def finish(self, queue: list[Encoded], mode: Close) -> bool:
        """The session closed: the close rides on the pending poll, or waits for the next one.

        A server close (FLUSH) sends what was queued and then CLOSE; a poll that
        crossed the client's own close (ANSWER) gets a NOOP; in both cases, with no
        poll waiting, the session stays findable until the next poll collects it.
        """
        if mode is Close.FLUSH:
            final = [*queue, codec.CLOSE_PACKET]
        elif mode is Close.NOTIFY:
            final = [codec.CLOSE_PACKET]
        elif mode is Close.ANSWER:
            final = [codec.NOOP_PACKET]
        else:
            final = []
        waiting = self.writable
        self.end(final)
        return not waiting and mode in (Close.FLUSH, Close.ANSWER)

    @property
    def polling(self) -> bool:
        """Whether a GET is waiting right now."""
        return self._waiter is not None

    async def poll(self) -> list[Encoded]:
        """Wait for packets for one GET (the caller checked no GET is waiting)."""
        started = self.start_poll()
        if isinstance(started, list):
            return started
        try:
            return await started
        finally:
            self._waiter = None

    def start_poll(self) -> list[Encoded] | asyncio.Future[list[Encoded]]:
        """Begin one GET (the caller checked no GET is waiting): the packets now, or a future of them.

        With a future, the GET counts as waiting until the caller's done callback calls
        :meth:`poll_done`, one loop turn after the session filled it, as when awaiting :meth:`poll`.
        """
        session = self.session
        assert session is not None
        if self._final is not None:
            final, self._final = self._final, None
            session.engine._forget(session)
            return final
        waiter: asyncio.Future[list[Encoded]] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            session.flush()
        except BaseException:
            self._waiter = None
            raise
        if waiter.done():  # filled at once: awaiting it would not have yielded
            self._waiter = None
            return waiter.result()
        return waiter

    def poll_done(self) -> None:
        """The GET begun by :meth:`start_poll` has its packets (or was cancelled): it waits no longer."""
        self._waiter = None

    def cancel_poll(self) -> None:
        """The GET's connection went away: nothing was written to it."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.cancel()


class Engine(EventEmitter):
    """Sessions by id, and the rules for which request may touch which session.

    Its events (``engine.on(event, listener)``, see
    :class:`~tornad_io.events.EventEmitter`), as the reference server's:
    ``connection`` (a new :class:`~tornad_io.engineio.session.Session`, once the
    Socket.IO layer has it), ``connection_error`` (a :class:`RefusedRequest`),
    ``initial_headers`` and ``headers`` (a dict of response headers the listener
    may add to, and the request: ``initial_headers`` for the request that opens
    a session, ``headers`` for every polling response and WebSocket handshake).
    """

    def __init__(
        self, options: ServerOptions, on_connection: Callable[[Session], None], clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.options = options
        self.on_connection = on_connection
        #: Where sessions, heartbeats, timeouts and the rate limit read time; tests
        #: replace it with a :class:`~tornad_io.engineio.clock.VirtualClock` before the first session.
        self.clock: Clock = clock or LoopClock()
        self.sessions: dict[str, Session] = {}
        #: Set by a graceful shutdown: new handshakes are refused.
        self.closing = False
        self._drained: asyncio.Event | None = None
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, last refill)
        #: Origins already logged as refused (each is logged once).
        self.refused_origins: set[str] = set()
        #: The generations served at the Engine.IO URL, by the ``EIO`` query value that selects them.
        self.generations: dict[str, Generation] = {}
        self.serve_generation(ENGINE_IO_4)
        if options.allow_eio3:
            from .eio3_session import ENGINE_IO_3

            self.serve_generation(ENGINE_IO_3)

    def serve_generation(self, generation: Generation) -> None:
        """Accept handshakes of *generation* (picked by its ``eio_version`` in the ``EIO`` query parameter)."""
        if generation.eio_version is None:
            raise ValueError(f"{generation!r} is not served at the Engine.IO URL")
        self.generations[generation.eio_version] = generation

    def admit(self, address: str) -> None:
        """Check a new handshake against shutdown, ``max_connections`` and the per-address rate."""
        if self.closing:
            raise EngineError(3, "Server is shutting down", 503)
        limit = self.options.max_connections
        if limit is not None and len(self.sessions) >= limit:
            raise EngineError(3, "Too many connections", 503)
        rate = self.options.handshake_rate_per_ip
        if rate is None:
            return
        now = self.clock.time()
        burst = max(1.0, 2 * rate)  # below 0.5/s a burst of one still passes
        tokens, last = self._buckets.get(address, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            raise EngineError(3, "Too many handshakes", 429)
        self._buckets[address] = (tokens - 1, now)
        if len(self._buckets) > 100_000:  # forget full buckets, keeping the table small
            self._buckets = {a: b for a, b in self._buckets.items() if b[0] + (now - b[1]) * rate < burst}

    #: A fresh id (120 random bits, URL-safe), as the Socket.IO layer uses for sockets.
    generate_id = staticmethod(new_id)

    @property
    def clients_count(self) -> int:
        """How many sessions are open (the reference's ``engine.clientsCount``)."""
        # Counted when asked (the Admin UI asks every 2 s): a closed long-polling session stays in
        # the table until its last poll collects the close, and is not counted.
        return sum(1 for session in self.sessions.values() if session.state != CLOSED)

    def refused(self, request: Any, error: EngineError) -> None:
        """Tell ``connection_error`` listeners that *request* was refused with *error*."""
        if self._events is not None:
            self.fire("connection_error", RefusedRequest(request, error.code, error.message, error.context))

    def check_request(self, method: str, query: dict[str, str], websocket: bool) -> Session | None:
        """Apply the reference server's checks; return the session a request names.

        Raises :class:`~tornad_io.exceptions.EngineError` for a request to refuse. ``None`` means the
        request is a handshake.
        """
        transport = query.get("transport")
        if transport not in self.options.transports or (transport == "websocket") != websocket:
            if transport == "websocket" and not websocket and "websocket" in self.options.transports:
                raise bad_request({"name": "TRANSPORT_HANDSHAKE_ERROR"})
            raise unknown_transport(transport)
        generation = self.generations.get(query.get("EIO", ""))
        sid = query.get("sid")
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None:
                raise unknown_sid(sid)
            if session.transport.name != transport and not (websocket and session.can_upgrade()):
                raise bad_request(
                    {"name": "TRANSPORT_MISMATCH", "transport": transport, "previousTransport": session.transport.name}
                )
            if session.generation is not generation:
                raise bad_request({"name": "PROTOCOL_MISMATCH"})
            return session
        if method != "GET":
            raise bad_handshake_method(method)
        if generation is None:
            raise unsupported_version(query.get("EIO"))
        return None

    def generation_for(self, query: dict[str, str]) -> Generation:
        """The generation a handshake's ``EIO`` query parameter asks for (checked by :meth:`check_request`)."""
        generation = self.generations.get(query.get("EIO", ""))
        if generation is None:
            raise unsupported_version()
        return generation

    def handshake(self, transport: Transport, info: HandshakeInfo, generation: Generation = ENGINE_IO_4) -> Session:
        """Create and open a session of *generation* on *transport*, then announce it upward."""
        owner = owner_prefix()  # the worker that owns the session, under several processes
        sid = owner + generation.new_id()
        while sid in self.sessions:  # pragma: no cover - 120 random bits
            sid = owner + generation.new_id()
        session = generation.session_class(self, sid, transport, info)
        self.sessions[sid] = session
        upgrades = (
            ["websocket"]
            if transport.upgradable and self.options.allow_upgrades and "websocket" in self.options.transports
            else []
        )
        session.open(upgrades)
        log.debug("session %s opened over %s", sid, transport.name)
        self.on_connection(session)
        if self._events is not None:
            self.fire("connection", session)
        return session

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
            if not self.sessions and self._drained is not None:
                self._drained.set()

    async def drain(self, timeout: float) -> None:
        """Wait until every session is gone (the last polls collected), at most *timeout* s.

        Sessions still there at the deadline are closed at once.
        """
        if self.sessions:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except asyncio.TimeoutError:
                for session in list(self.sessions.values()):
                    session.abort("server shutting down", Close.DROP)
                    self._forget(session)

    def close_all(self, reason: str = "server shutting down") -> None:
        """Refuse new handshakes and close every session, after what it had queued."""
        self.closing = True
        for session in list(self.sessions.values()):
            session.close(reason)
