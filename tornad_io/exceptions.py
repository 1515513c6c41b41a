"""Every exception tornad_io raises or lets a user raise, in one place."""

from __future__ import annotations

from typing import Any


class TornadIOError(Exception):
    """Base class of the package's own exceptions."""


class ProtocolError(TornadIOError, ValueError):
    """Input that does not follow the wire protocol.

    Codecs raise it and nothing else on bad input; the session that sent the
    input is closed with the reference server's reason.
    """


class PayloadTooLarge(ProtocolError):
    """Input above a size or count limit (``max_http_buffer_size``, attachments, frames)."""


class EngineError(TornadIOError):
    """An Engine.IO request the reference server refuses, with its code and message.

    The transports answer it as the reference does: HTTP *status* with the body
    ``{"code": code, "message": message}``.
    """

    def __init__(self, code: int, message: str, status: int = 400, context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        #: What the reference's ``connection_error`` event says about the refusal
        #: (``{"sid": ...}``, ``{"name": "TRANSPORT_MISMATCH", ...}``), or empty.
        self.context: dict[str, Any] = context or {}


class FrameError(ProtocolError):
    """A WebSocket frame that breaks RFC 6455; ``code`` is the close code to send (1002, 1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        #: The WebSocket close code that answers the frame.
        self.code = code
        #: Why the frame was refused (the close reason).
        self.reason = reason


class ConnectionRefused(TornadIOError):
    """Raise it from a connection middleware to refuse a client.

    The client receives a CONNECT_ERROR packet whose ``message`` is *message*
    and, when given, whose ``data`` is *data* (any JSON-encodable value).
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        #: What the client receives as the error's ``message``.
        self.message = message
        #: What the client receives as the error's ``data`` (None: none sent).
        self.data = data


class AckTimeout(TornadIOError, TimeoutError):
    """An acknowledgement did not arrive in time.

    For a broadcast, ``responses`` holds the answers that did arrive (keyed by
    socket id) and ``missing`` the ids of the sockets that did not answer.
    """

    def __init__(
        self,
        message: str = "operation has timed out",
        responses: dict[str, Any] | None = None,
        missing: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        #: The answers that did arrive, by socket id (broadcasts only).
        self.responses: dict[str, Any] = responses or {}
        #: The ids of the sockets that did not answer in time (broadcasts only).
        self.missing: list[str] = missing or []


class ClusterTimeout(TornadIOError, TimeoutError):
    """A cluster request did not get every server's answer in time.

    Raised by a cluster adapter (:mod:`tornad_io.cluster`) for ``fetch_sockets()``,
    ``server_side_emit_with_ack()`` and the other requests that gather one answer
    per server, after its ``requests_timeout``; also by a request still waiting
    when the adapter closes.
    """


class ClusterConnectionError(TornadIOError, ConnectionError):
    """The adapter could not reach Redis within its ``connect_timeout`` (from ``await io.init()``).

    The message names the server tried and the last error. The adapter keeps
    trying in the background; ``await io.shutdown()`` stops it.
    """


class Disconnected(TornadIOError):
    """The socket disconnected before an awaited acknowledgement arrived."""


class TransportError(TornadIOError):
    """What went wrong on a connection closed with the reason ``transport error``.

    The reference server's description of such a close: ``disconnect``
    handlers that take a third argument get it after the reason, and the
    session's ``close`` listeners get it too.
    """
