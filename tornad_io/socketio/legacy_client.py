"""A Socket.IO 0.6 session seen from the Socket.IO layer.

0.6 has no namespaces, events or acks: only messages. A 0.6 session becomes
one :class:`~tornad_io.socketio.socket.Socket` of the main namespace, so rooms
and broadcasts reach it like any other socket:

- an incoming message is the event ``message`` with the message as argument;
- an outgoing ``message`` event sends each argument as one 0.6 message
  (``str`` as is, anything else as JSON); any other event is sent as the JSON
  message ``{"event": name, "args": [...]}``; binary values become base64 text;
- the connection middleware decides, before the client learns its session id,
  whether the connection is accepted.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from ..engineio import legacy_codec
from ..engineio.legacy_session import LegacySession
from ..engineio.session import Session
from . import codec
from ._calls import spawn

if TYPE_CHECKING:
    from .server import Server
    from .socket import Socket

log = logging.getLogger("tornad_io.socketio")


def _text_binary(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [_text_binary(v) for v in value]
    if isinstance(value, dict):
        return {k: _text_binary(v) for k, v in value.items()}
    return value


def encode_legacy(type: int, nsp: str, data: Any = None, id: int | None = None) -> list[str | bytes]:
    """A Socket.IO packet as 0.6 frames (only events carry anything)."""
    if type != codec.EVENT or not data:
        return []
    if codec.has_binary(data):
        data = _text_binary(data)
    event, args = data[0], data[1:]
    if event == "message":
        return [legacy_codec.encode_message(arg) for arg in args]
    return [legacy_codec.encode_message({"event": event, "args": list(args)})]


class LegacyClient:
    """The Socket.IO side of a 0.6 session: one socket on the main namespace."""

    __slots__ = ("server", "session", "sockets", "closed")

    generation = "0.6"
    supports_acks = False
    supports_recovery = False
    multiplexed = False
    encode = staticmethod(encode_legacy)

    def __init__(self, server: Server, session: Session) -> None:
        assert isinstance(session, LegacySession)
        self.server = server
        self.session: LegacySession = session
        self.sockets: dict[str, Socket] = {}
        self.closed = False
        session.on_message = self._on_message
        session.on_close = self._on_close
        spawn(server.sockets._connect(self, {}))

    def _on_message(self, value: Any) -> None:
        socket = self.sockets.get("/")
        if socket is not None:
            socket._on_event(["message", value], None)

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        log.info("0.6 session %s refused: %s", self.session.sid, message)
        self.session.refuse()

    def _add(self, socket: Socket) -> None:
        self.sockets[socket.nsp.name] = socket
        self.session.accept()

    def _remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def disconnect_all(self) -> None:
        self.session.close("forced close")

    def _on_close(self, reason: str) -> None:
        self.closed = True
        for socket in list(self.sockets.values()):
            socket._on_close(reason)
        self.sockets.clear()
