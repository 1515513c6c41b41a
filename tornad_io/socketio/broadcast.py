"""Broadcast operators: ``to``, ``except_``, ``volatile``, ``timeout`` … then ``emit``.

Every operator returns a new, immutable :class:`BroadcastOperator`, so a
chain can be kept and reused (``room = io.to("room")``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generator, Iterable, NoReturn

from .._usercode import spawn
from ..adapter import BroadcastOptions
from ..exceptions import AckTimeout
from . import codec

if TYPE_CHECKING:
    from ..adapter import Adapter, FetchedSocket


def _rooms(rooms: tuple[Any, ...]) -> frozenset[str]:
    out: set[str] = set()
    for room in rooms:
        if isinstance(room, str):
            out.add(room)
        else:
            out.update(room)
    return frozenset(out)


class _Done:
    """What a broadcast emit returns: an awaitable that is already finished.

    So python-socketio's ``await sio.emit(...)`` works here too; the emit has
    happened when the call returns, awaiting adds nothing. One shared
    instance: returning it costs a global lookup.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that ends at once

    def __repr__(self) -> str:
        return "<emitted>"


DONE: Awaitable[None] = _Done()

# python-socketio's keyword arguments of emit/send, and what to write here instead.
_INSTEAD = {
    "to": "select the recipients first: io.to({value!r}).emit({event!r}, ...) (a socket id is a room)",
    "room": "select the recipients first: io.to({value!r}).emit({event!r}, ...) (a socket id is a room)",
    "skip_sid": "leave a socket out with io.except_({value!r}).emit({event!r}, ...), or emit from its socket with "
    "socket.broadcast.emit({event!r}, ...)",
    "namespace": "emit on the namespace: io.of({value!r}).emit({event!r}, ...)",
    "data": "pass the event's arguments after its name: emit({event!r}, {value!r})",
    "ignore_queue": "reach only this server's sockets with io.local.emit({event!r}, ...)",
}


def unsupported_arguments(method: str, event: Any, arguments: dict[str, Any]) -> TypeError:
    """The error for keyword arguments an emit does not take, saying what to write instead."""
    name, value = next(iter(arguments.items()))
    message = f"{method}() got an unexpected keyword argument {name!r}"
    instead = _INSTEAD.get(name)
    if instead is not None:
        message += "; that is python-socketio's form, here " + instead.format(value=value, event=event)
    return TypeError(message)


class AckResponses(list):  # type: ignore[type-arg]
    """The answers to a broadcast with acknowledgement, in arrival order.

    Each answer is the first argument the client acknowledged with.
    """

    #: Each answering local socket's id → its answer (answers from other
    #: servers of a cluster are in the list only).
    by_sid: dict[str, Any]


class BroadcastOperator:
    """A selection of sockets and the flags of the next emit.

    Made by ``io.to(...)``, ``io.except_(...)``, ``socket.broadcast`` and the
    like; each operator returns a new one, so a chain can be kept and reused.
    End the chain with :meth:`emit`, :meth:`emit_with_ack` or a bulk
    operation (:meth:`fetch_sockets`, :meth:`sockets_join`, …).
    """

    __slots__ = ("adapter", "_opts")

    def __init__(self, adapter: Adapter, opts: BroadcastOptions | None = None) -> None:
        #: The adapter of the namespace the selection is in.
        self.adapter = adapter
        self._opts = opts or BroadcastOptions()

    def _with(self, **changes: Any) -> BroadcastOperator:
        o = self._opts
        values = {name: getattr(o, name) for name in BroadcastOptions.__slots__}
        values.update(changes)
        return BroadcastOperator(self.adapter, BroadcastOptions(**values))

    # -- selection and flags ---------------------------------------------------

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Target the sockets in any of *rooms* (added to earlier ``to``)."""
        return self._with(rooms=self._opts.rooms | _rooms(rooms))

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Leave out the sockets in any of *rooms* (socket ids are rooms too)."""
        return self._with(except_rooms=self._opts.except_rooms | _rooms(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients that cannot take it right now."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only this server's sockets (matters with a cluster adapter)."""
        return self._with(local=True)

    def compress(self, compress: bool = True) -> BroadcastOperator:
        """Whether the packet may be compressed (permessage-deflate)."""
        return self._with(compress=compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """How long :meth:`emit_with_ack` waits for the acknowledgements."""
        return self._with(timeout=seconds)

    # -- emitting ----------------------------------------------------------------

    def emit(
        self, event: str, *args: Any, callback: Callable[..., Any] | None = None, **unsupported: NoReturn
    ) -> Awaitable[None]:
        """Send *event* with *args* to the selection.

        With *callback*, every client is asked to acknowledge; the callback is
        called once as ``callback(error, responses)`` when all have answered or
        the timeout passed (``error`` is then an :class:`AckTimeout`).

        The packet is on its way when the call returns. The return value may
        be ignored, or awaited (``await io.emit(...)``, as with
        python-socketio), which finishes at once. python-socketio's keyword
        arguments (``to=``, ``room=``, ``skip_sid=``, ``namespace=``) raise a
        :exc:`TypeError` that says what to write instead.
        """
        if unsupported:
            raise unsupported_arguments("emit", event, unsupported)
        if event in codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        packet = codec.Packet(codec.EVENT, self.adapter.nsp.name, [event, *args])
        if callback is None:
            self.adapter.broadcast(packet, self._opts)
            return DONE
        self._broadcast_with_ack(packet, callback)
        return DONE

    async def emit_with_ack(self, event: str, *args: Any) -> AckResponses:
        """Send *event* and wait for every client's acknowledgement.

        Returns the answers (first argument of each ack). Raises
        :class:`AckTimeout` with what did arrive when the operator's
        :meth:`timeout` passes first.
        """
        future: asyncio.Future[AckResponses] = asyncio.get_running_loop().create_future()

        def done(error: AckTimeout | None, responses: AckResponses) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(responses)

        self.emit(event, *args, callback=done)
        return await future

    def _broadcast_with_ack(self, packet: codec.Packet, callback: Callable[..., Any]) -> None:
        gatherer = _AckGatherer(callback, self._opts.timeout)
        gatherer.reached = self.adapter.broadcast_with_ack(
            packet, self._opts, gatherer.client_count, gatherer.ack, gatherer.gone
        )
        spawn(self._count_servers(gatherer))

    async def _count_servers(self, gatherer: _AckGatherer) -> None:
        gatherer.server_count(await self.adapter.server_count())

    # -- bulk operations ---------------------------------------------------------

    async def fetch_sockets(self) -> list[FetchedSocket]:
        """The sockets of the selection (across the cluster with a cluster adapter)."""
        return await self.adapter.fetch_sockets(self._opts)

    def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        """Make the selected sockets join *rooms*."""
        self.adapter.add_sockets(self._opts, _rooms(rooms))

    def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        """Make the selected sockets leave *rooms*."""
        self.adapter.del_sockets(self._opts, _rooms(rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the selected sockets (closing their connection if *close*)."""
        self.adapter.disconnect_sockets(self._opts, close)


class _AckGatherer:
    """The acknowledgements of one broadcast, gathered until complete or timed out.

    Complete when every server has reported how many clients it reached
    (:meth:`client_count`, one call per server, this one included; how many
    servers there are comes later, from :meth:`server_count`) and that many
    answers have arrived, less the recipients that went without answering.
    *callback* is then called once as ``callback(error, responses)``.
    """

    __slots__ = ("callback", "responses", "reached", "expected_servers", "servers", "clients", "done", "timer")

    def __init__(self, callback: Callable[..., Any], timeout: float | None) -> None:
        self.callback = callback
        self.responses = AckResponses()
        self.responses.by_sid = {}
        #: The local sockets asked to acknowledge (for AckTimeout.missing).
        self.reached: list[str] = []
        self.expected_servers = -1  # not known until server_count() answers
        self.servers = 0
        self.clients = 0
        self.done = False
        self.timer: asyncio.TimerHandle | None = None
        if timeout is not None:
            self.timer = asyncio.get_running_loop().call_later(timeout, self.timed_out)

    def client_count(self, count: int) -> None:
        """One server reached *count* clients."""
        self.clients += count
        self.servers += 1
        self.check()

    def server_count(self, count: int) -> None:
        """How many servers will report a client count."""
        self.expected_servers = count
        self.check()

    def ack(self, sid: str | None, response: Any) -> None:
        """One client answered (*sid* is None for a client of another server)."""
        if self.done:
            return
        self.responses.append(response)
        if sid is not None:
            self.responses.by_sid[sid] = response
        self.check()

    def gone(self, sid: str) -> None:
        """A local recipient disconnected without answering: it is not waited for."""
        if not self.done:
            self.clients -= 1
            self.check()

    def check(self) -> None:
        if self.expected_servers == self.servers and len(self.responses) >= self.clients:
            self.finish(None)

    def timed_out(self) -> None:
        missing = [sid for sid in self.reached if sid not in self.responses.by_sid]
        self.finish(AckTimeout("operation has timed out", dict(self.responses.by_sid), missing))

    def finish(self, error: AckTimeout | None) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        self.callback(error, self.responses)
