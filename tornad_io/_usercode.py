"""Calling user code: sync or async, errors logged, never raised into the server.

Shared by every layer that runs the application's functions: the Socket.IO layer
(handlers, listeners, acknowledgements), the adapters (server-side emit handlers)
and the original API.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Awaitable, Callable

from ._logsafe import safe_repr

# The Socket.IO layer's logger, as before this module moved here: logging set-ups that
# filter on it keep seeing errors in handlers.
log = logging.getLogger("tornad_io.socketio")

# Tasks running user coroutines; kept here so they are not garbage-collected mid-flight.
_running: set[asyncio.Task[Any]] = set()


def spawn(awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run *awaitable* in its own task, holding a reference until it is done."""
    task = asyncio.ensure_future(awaitable)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


def call_user(
    fn: Callable[..., Any],
    args: tuple[Any, ...] | list[Any],
    what: str,
    sid: str,
    on_result: Callable[[Any], None] | None = None,
) -> None:
    """Call a user handler; hand its result (awaited if needed) to *on_result*.

    An exception is logged with the socket id and what was being handled, and
    the connection goes on.
    """
    try:
        result = fn(*args)
    except Exception:
        log.exception("error in handler for %s (socket %s)", safe_repr(what), sid)
        return
    if inspect.isawaitable(result):
        spawn(_finish(result, what, sid, on_result))
    elif on_result is not None:
        on_result(result)


async def _finish(awaitable: Awaitable[Any], what: str, sid: str, on_result: Callable[[Any], None] | None) -> None:
    try:
        result = await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("error in handler for %s (socket %s)", safe_repr(what), sid)
        return
    if on_result is not None:
        on_result(result)


def ack_args(result: Any) -> list[Any]:
    """What a handler's return value acknowledges with: None → no arguments,
    a tuple → several, anything else → one."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]
