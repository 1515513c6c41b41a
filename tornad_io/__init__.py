"""tornad_io: a Socket.IO server for Tornado.

It speaks today's protocol (Socket.IO v5 over Engine.IO v4) to today's
clients. Start with :class:`Server`; the original SocketTornad.IO API
(``tornad_io.socket_io.SocketIOHandler``, :class:`SocketIOServer`) serves
Socket.IO 0.6 clients and today's clients from one handler class.
"""

# The public names load on first use (PEP 562), so importing a pure module such as
# tornad_io.socketio.codec does not import Tornado or asyncio. Type checkers and
# Sphinx see the imports below.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .adapter import Adapter, AdapterFactory, BroadcastOptions, FetchedSocket, RemoteHandshake
    from .exceptions import (
        AckTimeout,
        ConnectionRefused,
        Disconnected,
        PayloadTooLarge,
        ProtocolError,
        TornadIOError,
    )
    from .httpserver import HTTPServer
    from .legacy_server import SocketIOServer
    from .options import ServerOptions, ServerOptionsDict
    from .process import serve
    from .socketio.broadcast import AckResponses, BroadcastOperator
    from .socketio.namespace import Namespace
    from .socketio.server import Server
    from .socketio.socket import Handshake, Socket

__version__ = "0.2.0"

# Where each public name lives (a module relative to this package).
_HOMES = {
    "Adapter": ".adapter",
    "AdapterFactory": ".adapter",
    "BroadcastOptions": ".adapter",
    "FetchedSocket": ".adapter",
    "RemoteHandshake": ".adapter",
    "AckTimeout": ".exceptions",
    "ConnectionRefused": ".exceptions",
    "Disconnected": ".exceptions",
    "PayloadTooLarge": ".exceptions",
    "ProtocolError": ".exceptions",
    "TornadIOError": ".exceptions",
    "HTTPServer": ".httpserver",
    "SocketIOServer": ".legacy_server",
    "serve": ".process",
    "ServerOptions": ".options",
    "ServerOptionsDict": ".options",
    "AckResponses": ".socketio.broadcast",
    "BroadcastOperator": ".socketio.broadcast",
    "Namespace": ".socketio.namespace",
    "Server": ".socketio.server",
    "Handshake": ".socketio.socket",
    "Socket": ".socketio.socket",
}

__all__ = [
    "AckResponses",
    "AckTimeout",
    "Adapter",
    "AdapterFactory",
    "BroadcastOperator",
    "BroadcastOptions",
    "ConnectionRefused",
    "Disconnected",
    "HTTPServer",
    "FetchedSocket",
    "Handshake",
    "Namespace",
    "PayloadTooLarge",
    "ProtocolError",
    "RemoteHandshake",
    "Server",
    "ServerOptions",
    "ServerOptionsDict",
    "Socket",
    "SocketIOServer",
    "TornadIOError",
    "__version__",
    "serve",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home, __name__), name)
    elif not name.startswith("_"):
        # A subpackage or module (tornad_io.options, ...), as the eager imports used to provide.
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
