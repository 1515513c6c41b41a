"""tornad_io: a Socket.IO server for Tornado.

It speaks today's protocol (Socket.IO v5 over Engine.IO v4) to today's
clients. Start with :class:`Server`; the original SocketTornad.IO API
(``tornad_io.socket_io.SocketIOHandler``, :class:`SocketIOServer`) serves
Socket.IO 0.6 clients and today's clients from one handler class.
"""

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
from .socketio.broadcast import AckResponses, BroadcastOperator
from .socketio.namespace import Namespace
from .socketio.server import Server
from .socketio.socket import Handshake, Socket

__version__ = "0.2.0"

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
]
