"""Protocol generations of the engine layer, as objects.

A generation says which session class serves it, how its session ids look,
and how a WebSocket carries its packets. The engine creates sessions from a
generation (:meth:`Engine.handshake <tornad_io.engineio.server.Engine.handshake>`);
the Socket.IO layer maps each generation to its client class
(:meth:`Server.register_generation <tornad_io.Server.register_generation>`).
Adding a generation is adding its modules (codec, session, client, transports)
and one :class:`Generation` object, not new branches in shared code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .session import Session


class Generation:
    """One protocol generation: its session class, its ids and its WebSocket framing.

    Compared by identity: each generation's module defines exactly one.
    """

    __slots__ = ("name", "session_class", "new_id", "batches_websocket_messages", "eio_version")

    def __init__(
        self,
        name: str,
        session_class: type[Session],
        new_id: Callable[[], str],
        batches_websocket_messages: bool = False,
        eio_version: str | None = None,
    ) -> None:
        #: A readable name, for logs and reprs only (never compared).
        self.name = name
        #: The session class that speaks this generation.
        self.session_class = session_class
        #: Makes a fresh session id.
        self.new_id = new_id
        #: Whether a WebSocket message carries every queued packet at once (0.6) or one each.
        self.batches_websocket_messages = batches_websocket_messages
        #: The ``EIO`` query value that selects this generation at the Engine.IO URL
        #: (None: a generation with URLs of its own, as 0.6).
        self.eio_version = eio_version

    def __repr__(self) -> str:
        return f"<Generation {self.name}>"
