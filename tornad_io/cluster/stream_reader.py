"""Reading a Redis stream for every namespace of one server, and logging its connection's health.

:class:`StreamReader` is the ``XREAD`` loop of Node's ``@socket.io/redis-streams-adapter``:
one dedicated connection per factory, ``XREAD COUNT <n> BLOCK <ms> STREAMS <stream…> <id…>``
from the last id read, each entry handed to the adapter of its namespace. Unlike Node's
loop, which starts at ``$`` on every connection, it starts from the id of the stream's
last entry (read with ``XREVRANGE``) and keeps the last id it read across a lost
connection, so a Redis restart costs neither an entry nor a duplicate.

:class:`Link` is the one place that reports how the factory's connections fare: one
line when the first of them fails, one when the last is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._usercode import spawn
from .stream_format import EntryId, entry_id

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

log = logging.getLogger("tornad_io.redis")


def text(value: Any) -> str:
    """A Redis reply value as text (redis-py gives bytes, or str with ``decode_responses``)."""
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    """``[k, v, k, v…]`` (RESP2) or a map (RESP3) as pairs."""
    if isinstance(value, dict):
        return list(value.items())
    return list(zip(value[0::2], value[1::2], strict=False))


class StreamConsumer(Protocol):
    """What the reader hands entries to: the adapter of one namespace."""

    def _on_stream_entry(self, entry: str, fields: dict[str, str]) -> None: ...


class Link:
    """The health of one factory's connections to Redis (the reader, every subscription).

    A part that fails reports :meth:`lost`; when it works again, :meth:`ok`. The
    first failure is logged once, as a warning, and so is the moment when every
    part works again; what happens in between goes to the debug log.
    """

    def __init__(self, label: str, location: Callable[[], str]) -> None:
        self.label = label
        self.location = location
        self.failing: set[object] = set()
        self.up_once = False
        self.reader: StreamReader | None = None

    @property
    def down(self) -> bool:
        """Whether some part is failing now."""
        return bool(self.failing)

    def lost(self, part: object, error: BaseException) -> None:
        if not self.failing:
            if self.up_once:
                log.warning("%s: connection to Redis at %s lost (%s); reconnecting", self.label, self.location(), error)
            else:
                log.warning("%s: cannot connect to Redis at %s (%s); retrying", self.label, self.location(), error)
        else:
            log.debug("%s: still no connection to Redis (%s)", self.label, error)
        self.failing.add(part)

    def ok(self, part: object) -> None:
        if part in self.failing:
            self.failing.discard(part)
            if not self.failing:
                if self.up_once:
                    resume = self.reader.describe() if self.reader is not None else ""
                    log.warning("%s: connection to Redis at %s is back%s", self.label, self.location(), resume)
                else:
                    log.info("%s: connected to Redis at %s", self.label, self.location())
        self.up_once = True

    def forget(self, part: object) -> None:
        """*part* is closed: it no longer counts."""
        self.failing.discard(part)

    def failed(self, what: str, error: BaseException) -> None:
        """A one-off command failed (a publish, a session write)."""
        if self.failing:
            log.debug("%s: %s failed: %s", self.label, what, error)
        else:
            log.warning("%s: %s failed: %s", self.label, what, error)


class StreamReader:
    """One ``XREAD`` loop on a dedicated connection for the streams of one factory's namespaces."""

    def __init__(
        self,
        client: aioredis.Redis,
        streams: list[str],
        read_count: int,
        block_time: float,
        link: Link,
    ) -> None:
        self.client = client
        self.streams = list(streams)
        self.read_count = read_count
        self.block_ms = max(1, int(block_time * 1000))
        self.link = link
        link.reader = self
        #: Namespace name → the adapter its entries go to.
        self.consumers: dict[str, StreamConsumer] = {}
        #: Stream → the id of the last entry read (or, before any, of the last entry at start).
        self.last: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._moved: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None

    def describe(self) -> str:
        """Where reading goes on, for the log."""
        if not self.last:
            return ""
        return "; reading on after " + ", ".join(f"{s} {i}" for s, i in self.last.items())

    # -- life cycle -----------------------------------------------------------------

    def attach(self, nsp: str, consumer: StreamConsumer, stream: str) -> None:
        """Hand the entries of namespace *nsp* (on *stream*) to *consumer*; start reading if needed."""
        if self.consumers.get(nsp) is not consumer:
            self.consumers[nsp] = consumer
        if stream not in self.streams:
            self.streams.append(stream)
        if self._task is None:
            self._task = spawn(self._run())

    def detach(self, nsp: str, consumer: StreamConsumer) -> None:
        """Stop handing *nsp*'s entries to *consumer*; the last one out stops the loop."""
        if self.consumers.get(nsp) is consumer:
            del self.consumers[nsp]
        if not self.consumers and self._task is not None:
            self._task.cancel()
            self._task = None
            self.link.forget(self)
            # Started again later (a new server on the same factory), it reads from the stream's end then.
            self.last.clear()
            self._ready = None

    async def ready(self, timeout: float) -> bool:
        """Wait until every stream has a starting point (the reader is connected)."""
        if self._ready is None:
            self._ready = asyncio.Event()
        if all(s in self.last for s in self.streams):
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def position(self, stream: str) -> EntryId | None:
        """The last entry of *stream* handed over (every entry up to it has been), or None."""
        last = self.last.get(stream)
        return None if last is None else entry_id(last)

    async def reach(self, stream: str, target: EntryId, timeout: float) -> bool:
        """Wait until entry *target* of *stream* has been handed over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            position = self.position(stream)
            if position is not None and position >= target:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._moved is None:
                self._moved = asyncio.Event()
            try:
                await asyncio.wait_for(self._moved.wait(), remaining)
            except asyncio.TimeoutError:
                return False

    # -- the loop -----------------------------------------------------------------

    async def _run(self) -> None:
        connection: AbstractConnection = self.client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        delay = 0.1
        try:
            while True:
                try:
                    await self._read_once(connection)
                    delay = 0.1
                except (RedisError, OSError) as error:
                    self.link.lost(self, error)
                    try:
                        await connection.disconnect()
                    except Exception:  # noqa: BLE001 - it is gone anyway
                        pass
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
        finally:
            await asyncio.shield(connection.disconnect())

    async def _command(self, connection: AbstractConnection, *args: Any, timeout: float | None = None) -> Any:
        if not connection.is_connected:
            await connection.connect()  # type: ignore[no-untyped-call]
        await connection.send_command(*args)
        return await connection.read_response(timeout=timeout)

    async def _read_once(self, connection: AbstractConnection) -> None:
        for stream in self.streams:
            if stream not in self.last:
                # Where reading starts: after the stream's last entry now (Node says "$", which a
                # lost connection would turn into a gap).
                newest = await self._command(connection, "XREVRANGE", stream, "+", "-", "COUNT", "1")
                self.last[stream] = text(newest[0][0]) if newest else "0-0"
        if self._ready is None:
            self._ready = asyncio.Event()
        self._ready.set()
        streams = list(self.streams)
        reply = await self._command(
            connection,
            "XREAD",
            "COUNT",
            self.read_count,
            "BLOCK",
            self.block_ms,
            "STREAMS",
            *streams,
            *(self.last[s] for s in streams),
            timeout=self.block_ms / 1000 + 10.0,
        )
        self.link.ok(self)
        if not reply:
            return
        for name, entries in _pairs(reply) if isinstance(reply, dict) else reply:
            stream = text(name)
            for entry in entries:
                identifier = text(entry[0])
                fields = {text(k): text(v) for k, v in _pairs(entry[1] or [])}
                consumer = self.consumers.get(fields.get("nsp", ""))
                if consumer is not None:
                    try:
                        consumer._on_stream_entry(identifier, fields)
                    except Exception:  # noqa: BLE001 - one bad entry must not stop the reader
                        log.exception("%s: cannot handle stream entry %s", self.link.label, identifier)
                self.last[stream] = identifier
        if self._moved is not None:
            moved, self._moved = self._moved, None
            moved.set()
