"""One Engine.IO session seen from Socket.IO: decoding, and its namespace sockets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Hashable, Protocol

from .._logsafe import safe_repr
from ..engineio.clock import Timer
from ..engineio.session import Session
from ..exceptions import ProtocolError
from . import codec
from ._calls import spawn
from .parsers import JSON_PARSER, Parser, encoding_for

if TYPE_CHECKING:
    from .server import Server
    from .socket import Socket

log = logging.getLogger("tornad_io.socketio")


def encode_v5(
    type: int, nsp: str, data: Any = None, id: int | None = None, parser: Parser = JSON_PARSER
) -> list[str | bytes]:
    """A Socket.IO v5 packet as Engine.IO v4 MESSAGE packets, in *parser*'s format (JSON by default)."""
    if parser is JSON_PARSER:
        head, *attachments = codec.encode(type, nsp, data, id)
        assert isinstance(head, str)
        return ["4" + head, *attachments]
    return [("4" + m) if isinstance(m, str) else m for m in parser.encode(codec.Packet(type, nsp, data, id))]


class ClientProtocol(Protocol):
    """The Socket.IO side of one connection, whatever its generation: what namespaces and
    sockets need of it (:class:`Client` for v5, ``LegacyClient`` for 0.6)."""

    server: Server

    @property
    def session(self) -> Session:
        """The Engine.IO session underneath."""

    #: Its sockets by namespace name.
    sockets: dict[str, Socket]
    #: Set once the connection is gone.
    closed: bool
    #: The protocol generation's name (``"v5"``, ``"0.6"``). Sockets of a client class that
    #: has no ``encoding`` attribute are keyed by it (a generation with one wire format).
    generation: str
    #: Whether the client can acknowledge packets.
    supports_acks: bool
    #: Whether the client can recover its session after a dropped connection (and reads offsets).
    supports_recovery: bool
    #: Whether the client can join several namespaces on one connection.
    multiplexed: bool

    def encode(self, type: int, nsp: str, data: Any = None, id: int | None = None) -> list[str | bytes]:
        """A Socket.IO packet in this generation's wire form (nothing, if it cannot carry it)."""

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        """Refuse a connection to *nsp*."""

    def disconnect_all(self) -> None:
        """Disconnect every socket, then close the connection."""

    def _add(self, socket: Socket) -> None: ...

    def _remove(self, socket: Socket) -> None: ...


#: What the server calls for each new session of a generation: ``factory(server, session)``.
ClientFactory = Callable[["Server", Session], Any]


class Client:
    """The Socket.IO side of a session: which namespaces it joined."""

    __slots__ = ("server", "session", "sockets", "parser", "encoding", "decoder", "_connect_timer", "closed")

    #: The protocol generation's name (see :attr:`encoding`).
    generation = "v5"
    #: Whether a client can acknowledge, and join several namespaces.
    supports_acks = True
    supports_recovery = True
    multiplexed = True

    def __init__(self, server: Server, session: Session) -> None:
        self.server = server
        self.session = session
        self.sockets: dict[str, Socket] = {}
        #: The server's packet format (the ``parser`` option).
        self.parser: Parser = server.options.packet_parser
        #: Clients with equal encodings share one encoding of a broadcast: the generation and the
        #: parser (two servers with different parsers never share one).
        self.encoding: Hashable = encoding_for(self.generation, self.parser)
        self.decoder = self.parser.decoder(server.options.max_attachments, server.options.max_http_buffer_size)
        self.closed = False
        session.on_message = self._on_message
        session.on_close = self._on_close
        self._connect_timer: Timer | None = server.engine.clock.call_later(
            server.options.connect_timeout, self._connect_timed_out
        )

    def encode(self, type: int, nsp: str, data: Any = None, id: int | None = None) -> list[str | bytes]:
        """A Socket.IO packet as Engine.IO v4 MESSAGE packets, in the server's format."""
        if self.parser is JSON_PARSER:  # the default parser: the codec directly, no Packet object per emit
            head, *attachments = codec.encode(type, nsp, data, id)
            return ["4" + head, *attachments]  # type: ignore[operator]
        return encode_v5(type, nsp, data, id, self.parser)

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if not self.sockets:
            log.debug("session %s joined no namespace in time", self.session.sid)
            self.session.close("forced close")

    def _on_message(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.add(data)
        except ProtocolError as error:
            log.info("session %s: invalid packet: %s", self.session.sid, error)
            self.session.abort("parse error")
            return
        if packet is None:
            return
        if packet.type == codec.CONNECT:
            self._connect(packet.nsp, packet.data if packet.data is not None else {})
            return
        socket = self.sockets.get(packet.nsp)
        if socket is not None:
            socket._on_packet(packet)

    def _connect(self, name: str, auth: dict[str, Any]) -> None:
        if name in self.sockets:
            log.debug("session %s already connected to %s", self.session.sid, safe_repr(name))
            return
        nsp = self.server._namespaces.get(name)
        if nsp is not None and not nsp._middlewares and "pid" not in auth:
            # The common case needs no task: a known namespace without middleware.
            from .socket import Socket

            nsp._add(Socket(nsp, self, auth), self)
            return
        spawn(self._do_connect(name, auth))

    async def _do_connect(self, name: str, auth: dict[str, Any]) -> None:
        nsp = await self.server._namespace_for(name, auth)
        if self.closed:
            return
        if nsp is None:
            self.refuse(name, "Invalid namespace")
            return
        await nsp._connect(self, auth)

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        """Send CONNECT_ERROR for *nsp*."""
        payload: dict[str, Any] = {"message": message}
        if data is not None:
            payload["data"] = data
        try:
            parts = self.encode(codec.CONNECT_ERROR, nsp, payload)
        except TypeError:
            parts = self.encode(codec.CONNECT_ERROR, nsp, {"message": message})
        self.session.send(parts)

    def _add(self, socket: Socket) -> None:
        self.sockets[socket.nsp.name] = socket
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def _remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def disconnect_all(self) -> None:
        """Disconnect every namespace socket, then close the session."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.session.close("forced close")

    def _on_close(self, reason: str) -> None:
        self.closed = True
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        for socket in list(self.sockets.values()):
            socket._on_close(reason, self.session.close_description)
        self.sockets.clear()
