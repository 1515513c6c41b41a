"""The engine's clock: where sessions, heartbeats, timeouts and rate limits read time.

Every timed rule of the engine and the Socket.IO layer (ping interval and
timeout, upgrade timeout, connect timeout, the 0.6 heartbeats and close
timeout, handshake rate limits) asks :attr:`Engine.clock
<tornad_io.engineio.server.Engine.clock>` for the time and for timers. The
default follows the asyncio loop; tests install a :class:`VirtualClock` and move
time by hand instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any, Callable, Protocol


class Timer(Protocol):
    """A scheduled call that can be cancelled (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None:
        """Do not run the call (nothing happens if it already ran)."""


class Clock(Protocol):
    """What the engine needs of a clock: monotonic seconds, and timers on that scale."""

    def time(self) -> float:
        """Monotonic seconds."""

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` once :meth:`time` reaches *when*."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` after *delay* seconds."""


class LoopClock:
    """The running asyncio loop's clock (the default)."""

    __slots__ = ()

    def time(self) -> float:
        """The loop's monotonic time."""
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """``loop.call_at``."""
        return asyncio.get_running_loop().call_at(when, callback, *args)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """``loop.call_later``."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)


class _VirtualTimer:
    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told to: :meth:`advance` runs the timers now due, in order.

    Install it before the first session: ``io.engine.clock = VirtualClock()``.
    """

    __slots__ = ("now", "_timers", "_order")

    def __init__(self, start: float = 0.0) -> None:
        #: The current virtual time, in seconds.
        self.now = start
        self._timers: list[tuple[float, int, _VirtualTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        """The current virtual time."""
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Schedule ``callback(*args)`` at virtual time *when*."""
        timer = _VirtualTimer(when, callback, args)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Schedule ``callback(*args)`` *delay* virtual seconds from now."""
        return self.call_at(self.now + delay, callback, *args)

    def advance(self, seconds: float) -> int:
        """Move time forward by *seconds*, running every timer due on the way; return how many ran."""
        target = self.now + seconds
        ran = 0
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, when)
            timer.callback(*timer.args)
            ran += 1
        self.now = target
        return ran

    @property
    def pending(self) -> int:
        """How many timers are scheduled and not cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def due(self) -> list[float]:
        """When the scheduled, not cancelled timers are due, earliest first."""
        return sorted(when for when, _, timer in self._timers if not timer.cancelled)
