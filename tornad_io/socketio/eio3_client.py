"""An Engine.IO v3 session seen from Socket.IO: protocol v4 (socket.io-parser 3.x).

What socket.io-client 2.x speaks on top of Engine.IO v3. The packet types and
their text form are v5's, binary attachments (``_placeholder``) and acks
included; what differs:

- the main namespace ``/`` is joined without asking: the server connects the
  client to it on the handshake, through the namespace's middleware, and
  sends ``40`` itself;
- CONNECT carries no payload either way: to join another namespace the client
  sends ``0/admin?token=x,``, the query in the namespace string (it becomes the
  socket's ``handshake.auth``, as the reference makes it), and the answer is
  ``40/admin,``;
- a refusal is an ERROR packet whose payload is the refusal's data, or else
  its message: ``44/admin,"Not authorized"``;
- there is no connection state recovery.

A 2.x client derives ``socket.id`` from its Engine.IO session id; here, as for
every other generation, the server gives each socket a random id of its own
(the session id stays private), so the two differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ..engineio.session import Session
from . import codec
from .client import Client

if TYPE_CHECKING:
    from .server import Server


def encode_v4(type: int, nsp: str, data: Any = None, id: int | None = None) -> list[str | bytes]:
    """A Socket.IO v4-protocol packet as Engine.IO MESSAGE packets (CONNECT without payload)."""
    if type == codec.CONNECT:
        return ["40" if nsp == "/" else f"40{nsp},"]
    head, *attachments = codec.encode(type, nsp, data, id)
    assert isinstance(head, str)
    return ["4" + head, *attachments]


def split_namespace(name: str) -> tuple[str, dict[str, str]]:
    """``/admin?token=x`` → ``("/admin", {"token": "x"})``: a v4-protocol CONNECT's namespace and query."""
    path, _, query = name.partition("?")
    return path or "/", dict(parse_qsl(query, keep_blank_values=True))


class Eio3Client(Client):
    """The Socket.IO side of an Engine.IO v3 session (socket.io-client 2.x)."""

    __slots__ = ()

    #: Clients of one generation share one encoding of a broadcast.
    generation = "eio3"
    supports_recovery = False
    encode = staticmethod(encode_v4)

    def __init__(self, server: Server, session: Session) -> None:
        super().__init__(server, session)
        self._connect("/", {})  # joined on the handshake, as the reference does for v3 clients

    def _connect(self, name: str, auth: dict[str, Any]) -> None:
        path, query = split_namespace(name)
        super()._connect(path, query)

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        """Send an ERROR packet for *nsp*: the refusal's data if it has any, else its message."""
        try:
            parts = encode_v4(codec.CONNECT_ERROR, nsp, message if data is None else data)
        except (TypeError, ValueError):
            parts = encode_v4(codec.CONNECT_ERROR, nsp, message)
        self.session.send_one(parts[0])
