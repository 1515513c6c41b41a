"""Type variables of the decorator API, so that a decorated function keeps its own type.

``@io.on("chat")`` returns the function it was given, unchanged; typing the
decorators with these variables tells mypy so (instead of an untyped ``Any``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from .socketio.namespace import Namespace
    from .socketio.socket import Socket

#: An event handler or listener: any callable, sync or async.
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
#: A connection middleware: called with the :class:`~tornad_io.Socket`, sync or async.
ConnectMiddlewareT = TypeVar("ConnectMiddlewareT", bound="Callable[[Socket], object]")
#: A per-packet middleware: called with ``[event, *args]``, sync or async.
PacketMiddlewareT = TypeVar("PacketMiddlewareT", bound=Callable[[list[Any]], object])
#: A :class:`~tornad_io.Namespace` or subclass, given back as it came.
NamespaceT = TypeVar("NamespaceT", bound="Namespace")
