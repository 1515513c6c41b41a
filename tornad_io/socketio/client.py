"""One Engine.IO session seen from Socket.IO: decoding, and its namespace sockets."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .._logsafe import safe_repr
from ..engineio.session import Session
from ..exceptions import ProtocolError
from . import codec
from ._calls import spawn

if TYPE_CHECKING:
    from .server import Server
    from .socket import Socket

log = logging.getLogger("tornad_io.socketio")


def encode_v5(type: int, nsp: str, data: Any = None, id: int | None = None) -> list[str | bytes]:
    """A Socket.IO v5 packet as Engine.IO v4 MESSAGE packets."""
    parts = codec.encode(type, nsp, data, id)
    out: list[str | bytes] = ["4" + parts[0]]  # type: ignore[operator]
    out.extend(parts[1:])
    return out


class Client:
    """The Socket.IO side of a session: which namespaces it joined."""

    __slots__ = ("server", "session", "sockets", "decoder", "_connect_timer", "closed")

    #: Clients of one generation share one encoding of a broadcast.
    generation = "v5"
    #: Whether a client can acknowledge, and join several namespaces.
    supports_acks = True
    multiplexed = True
    encode = staticmethod(encode_v5)

    def __init__(self, server: Server, session: Session) -> None:
        self.server = server
        self.session = session
        self.sockets: dict[str, Socket] = {}
        self.decoder = codec.Decoder(server.options.max_attachments, server.options.max_http_buffer_size)
        self.closed = False
        session.on_message = self._on_message
        session.on_close = self._on_close
        self._connect_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            server.options.connect_timeout, self._connect_timed_out
        )

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
        if nsp is not None and not nsp._middlewares:
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
            parts = codec.encode(codec.CONNECT_ERROR, nsp, payload)
        except TypeError:
            parts = codec.encode(codec.CONNECT_ERROR, nsp, {"message": message})
        self.session.send_one("4" + parts[0])  # type: ignore[operator]

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
            socket._on_close(reason)
        self.sockets.clear()
