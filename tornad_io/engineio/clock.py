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
import math
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


#: Timers due this far ahead or more share deadline slots (see :class:`LoopClock`).
COARSE_AFTER = 1.0
#: The width of a deadline slot, in seconds: a coarse timer runs at most this late.
SLOT = 0.01


class _SlotTimer:
    """A timer in a shared deadline slot: cancelling it only marks it."""

    __slots__ = ("callback", "args", "cancelled")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Slots:
    """The shared deadline slots of one loop: one loop timer per occupied slot."""

    __slots__ = ("loop", "slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots: dict[int, list[_SlotTimer]] = {}

    def add(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> _SlotTimer:
        index = math.ceil(when / SLOT)
        timer = _SlotTimer(callback, args)
        timers = self.slots.get(index)
        if timers is None:
            self.slots[index] = [timer]
            self.loop.call_at(index * SLOT, self._run, index)
        else:
            timers.append(timer)
        return timer

    def _run(self, index: int) -> None:
        for timer in self.slots.pop(index, ()):
            if timer.cancelled:
                continue
            timer.cancelled = True  # ran: a later cancel() is a no-op, as with asyncio's handles
            try:
                timer.callback(*timer.args)
            except Exception as error:  # noqa: BLE001 - one failing timer must not stop the others
                self.loop.call_exception_handler(
                    {"message": f"Exception in timer callback {timer.callback!r}", "exception": error}
                )


class LoopClock:
    """The running asyncio loop's clock (the default).

    Timers due at least :data:`~tornad_io.engineio.clock.COARSE_AFTER` seconds ahead (heartbeats, ping
    and connect timeouts: one or two per connection) share deadline slots of
    :data:`~tornad_io.engineio.clock.SLOT` seconds: one loop timer per slot rather than one per timer,
    and a cancel is a flag, not a heap entry left behind. With 100 000
    connections and the default 25 s ping interval that is about 2 500 loop
    timers in flight instead of 200 000, and no per-timer context copy. Such a
    timer runs up to one slot late. Shorter timers go to the loop as they are.
    """

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[asyncio.AbstractEventLoop, _Slots] = {}

    def time(self) -> float:
        """The loop's monotonic time."""
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """``loop.call_at``; a timer :data:`~tornad_io.engineio.clock.COARSE_AFTER` s ahead or more
        goes to a shared deadline slot."""
        loop = asyncio.get_running_loop()
        if when - loop.time() < COARSE_AFTER:
            return loop.call_at(when, callback, *args)
        slots = self._slots.get(loop)
        if slots is None:
            if len(self._slots) > 4:  # loops that are gone (tests run many): forget them
                self._slots = {lp: sl for lp, sl in self._slots.items() if not lp.is_closed()}
            slots = self._slots[loop] = _Slots(loop)
        return slots.add(when, callback, args)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """:meth:`call_at` *delay* seconds from now."""
        return self.call_at(asyncio.get_running_loop().time() + delay, callback, *args)


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
