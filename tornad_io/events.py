"""Listeners by event name: the small emitter behind the library's hooks.

The engine (``connection``, ``connection_error``, ``initial_headers``,
``headers``), each Engine.IO session (``socket.conn``: ``upgrading``,
``upgrade``, ``packet``, ``packet_create``, ``drain``, ``close``) and each
adapter (``create-room``, ``delete-room``, ``join-room``, ``leave-room``) tell
observers what happens through an :class:`EventEmitter`, with the names and
arguments of the reference server's events. Tools such as the Admin UI
(:mod:`tornad_io.admin`) are built on them, without reaching into private state.

A listener may be a plain function or a coroutine function; an exception in it
is logged and does not reach the server. Listeners run in the order they were
added, synchronously, at the moment the event happens: one that must change
something at that moment (the ``headers`` events) must do it before its first
``await``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, overload

from ._logsafe import safe_repr
from ._typing import HandlerT
from ._usercode import spawn

log = logging.getLogger("tornad_io.events")

__all__ = ["EventEmitter"]

Listener = Callable[..., Any]


class _Once:
    """A listener that removes itself before its first call."""

    __slots__ = ("emitter", "event", "listener")

    def __init__(self, emitter: EventEmitter, event: str, listener: Listener) -> None:
        self.emitter = emitter
        self.event = event
        self.listener = listener

    def __call__(self, *args: Any) -> Any:
        self.emitter.off(self.event, self)
        return self.listener(*args)


class EventEmitter:
    """Listeners by event name, in the shape of Node's ``EventEmitter``.

    ``on`` and ``once`` (both usable as decorators), ``off``, ``listeners``
    and ``remove_all_listeners``; :meth:`fire` calls the listeners of an
    event. Costs one attribute while nobody listens.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[str, list[Listener]] | None = None

    @overload
    def on(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def on(self, event: str, listener: HandlerT) -> HandlerT: ...

    def on(self, event: str, listener: Listener | None = None) -> Any:
        """Call *listener* every time *event* happens; usable as a decorator (``@x.on("close")``)."""

        def register(fn: Listener) -> Listener:
            self._add(event, fn)
            return fn

        return register(listener) if listener is not None else register

    @overload
    def once(self, event: str) -> Callable[[HandlerT], HandlerT]: ...

    @overload
    def once(self, event: str, listener: HandlerT) -> HandlerT: ...

    def once(self, event: str, listener: Listener | None = None) -> Any:
        """Call *listener* the next time *event* happens, then forget it; usable as a decorator."""

        def register(fn: Listener) -> Listener:
            self._add(event, _Once(self, event, fn))
            return fn

        return register(listener) if listener is not None else register

    def _add(self, event: str, listener: Listener) -> None:
        if self._events is None:
            self._events = {}
        self._events.setdefault(event, []).append(listener)

    def off(self, event: str, listener: Listener | None = None) -> None:
        """Remove one listener of *event* (also one added with :meth:`once`), or all of them."""
        events = self._events
        if events is None or event not in events:
            return
        if listener is None:
            del events[event]
        else:
            kept = [fn for fn in events[event] if fn is not listener and getattr(fn, "listener", None) is not listener]
            if kept:
                events[event] = kept
            else:
                del events[event]
        if not events:
            self._events = None

    def remove_all_listeners(self, event: str | None = None) -> None:
        """Remove every listener of *event*, or of every event."""
        if event is None:
            self._events = None
        else:
            self.off(event)

    def listeners(self, event: str) -> list[Listener]:
        """The listeners of *event*, in calling order (those added with :meth:`once` as given)."""
        events = self._events
        if events is None:
            return []
        return [getattr(fn, "listener", fn) if isinstance(fn, _Once) else fn for fn in events.get(event, ())]

    def has_listeners(self, event: str) -> bool:
        """Whether *event* has at least one listener."""
        events = self._events
        return events is not None and event in events

    def fire(self, event: str, *args: Any) -> bool:
        """Call the listeners of *event* with *args*; whether there were any.

        What the library calls when the event happens; applications listen
        rather than fire. Errors in listeners are logged, never raised.
        """
        events = self._events
        if events is None:
            return False
        listeners = events.get(event)
        if not listeners:
            return False
        for listener in list(listeners):
            try:
                result = listener(*args)
            except Exception:
                log.exception("error in a listener of %s", safe_repr(event))
                continue
            if inspect.isawaitable(result):
                spawn(_finish(result, event))
        return True


async def _finish(awaitable: Any, event: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("error in a listener of %s", safe_repr(event))
