"""The format of Node's ``@socket.io/redis-streams-adapter`` 0.3.x: a Redis stream, plus PUB/SUB.

What every server must see in order goes to one stream (``socket.io`` by default):
broadcasts, and the joins, leaves and disconnects of remote sockets, each an entry
``XADD <stream> MAXLEN ~ <max_len> * uid <uid> nsp <nsp> type <type> [data <data>]``
whose ``data`` is JSON, or base64 msgpack when it carries binary. Every server reads
the stream (:mod:`.stream_reader`). The rest of Node's ``ClusterAdapter`` messages
(broadcasts with acks, server-side emits, fetches) are msgpack envelopes PUBLISHed
on ``<prefix>#<nsp>#``, and answers go to the asker's ``<prefix>#<nsp>#<uid>#``;
servers are counted with ``PUBSUB NUMSUB`` on the first.

The stream doubles as the packet log of connection state recovery: the id ``XADD``
returns is the broadcast's offset, and a session is a key
``SET sio:session:<pid> <base64 msgpack {sid, pid, rooms, data}> PX <ms>``, so a
client cut off from one server (Python or Node) recovers on any other.
"""

from __future__ import annotations

import asyncio
import base64
import collections
from typing import TYPE_CHECKING, Any, Callable

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .._usercode import spawn
from ..adapter import Adapter, BroadcastOptions
from ..exceptions import ClusterConnectionError
from ..forwarding import RedisNodeDirectory
from ..recovery import RestoredSession, carries_offset, deliver_with_offset, encode_with_offset
from ..socketio import codec
from .base import log, redis_location
from .envelope import (
    BROADCAST,
    EnvelopeAdapter,
    encode_options,
    packet_dict,
)
from .stream_format import (
    EntryId,
    decode_entry,
    encode_entry,
    encode_session,
    entry_id,
    is_offset,
    next_offset,
    reaches,
    stream_for,
)
from .stream_reader import Link, StreamReader, text

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace

_RANGE_COUNT = 1000  # entries per XRANGE while restoring a session
_RESTORE_ROUNDS = 100  # XRANGE rounds to catch up with what this server delivered meanwhile (Node's bound)
_BATCH = 256  # XADDs per pipeline


class _Outgoing:
    """Something to do in publishing order: an entry to add (or None), then what follows with its id."""

    __slots__ = ("fields", "then")

    def __init__(self, fields: dict[str, str] | None, then: Callable[[str | None], None] | None) -> None:
        self.fields = fields
        self.then = then


class _Shared:
    """What the namespaces of one :func:`redis_streams_adapter` share: the client, the reader, the log."""

    def __init__(self, url: str, client: aioredis.Redis | None, settings: dict[str, Any]) -> None:
        self.url = url
        self.client = client
        self.given = client is not None
        self.settings = settings
        self.reader: StreamReader | None = None
        self.link: Link | None = None

    def redis(self) -> aioredis.Redis:
        if self.client is None:
            self.client = aioredis.Redis.from_url(self.url)
        return self.client

    def after_fork(self) -> None:
        """In a worker process just forked: what was made from the URL before the fork is made anew."""
        if not self.given:
            self.client = None
        self.reader = None
        self.link = None

    def node_directory(self) -> RedisNodeDirectory:
        """Where the nodes of this cluster announce their addresses (forwarding, :func:`tornad_io.serve`)."""
        return RedisNodeDirectory(self.redis(), self.settings["channel_prefix"])

    def ensure(self) -> tuple[StreamReader, Link]:
        if self.reader is None or self.link is None:
            client = self.redis()
            self.link = Link(RedisStreamsAdapter.label, lambda: redis_location(client))
            settings = self.settings
            count = settings["stream_count"]
            name = settings["stream_name"]
            streams = [name] if count == 1 else [f"{name}-{i}" for i in range(count)]
            self.reader = StreamReader(client, streams, settings["read_count"], settings["block_time"], self.link)
        return self.reader, self.link

    def __call__(self, nsp: Namespace) -> RedisStreamsAdapter:
        return RedisStreamsAdapter(nsp, self.redis(), self)


class RedisStreamsAdapter(EnvelopeAdapter):
    """Node's ``@socket.io/redis-streams-adapter`` 0.3.x format, with connection state recovery
    across the cluster. Made by :func:`redis_streams_adapter`; see there for the options."""

    #: How the adapter names itself in log messages.
    label = "redis streams adapter"

    def __init__(self, nsp: Namespace, client: aioredis.Redis, shared: _Shared) -> None:
        settings = shared.settings
        self._shared = shared
        self._reader, self._link = shared.ensure()
        #: The stream this namespace writes to and reads from.
        self.stream = stream_for(nsp.name, settings["stream_name"], settings["stream_count"])
        #: ``MAXLEN ~`` of every ``XADD``: about how many entries the stream keeps.
        self.max_len: int = settings["max_len"]
        #: The prefix of session keys (``sio:session:`` as in Node).
        self.session_key_prefix: str = settings["session_key_prefix"]
        #: Whether data is always written as JSON, even when it holds binary (Node's ``onlyPlaintext``).
        self.only_plaintext: bool = settings["only_plaintext"]
        #: Whether PUB/SUB is sharded (``SPUBLISH``/``SSUBSCRIBE``, Node's ``useShardedPubSub``).
        self.sharded_pubsub: bool = settings["use_sharded_pubsub"]
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None
        self._own_upto: EntryId = (0, 0)  # the last of this server's entries delivered here
        super().__init__(
            nsp, client, settings["channel_prefix"], settings["requests_timeout"], settings["connect_timeout"]
        )

    # -- life cycle ---------------------------------------------------------------------

    def _start(self) -> None:
        super()._start()
        if not self._closed:
            self._reader.attach(self.nsp.name, self, self.stream)

    async def init(self) -> None:
        """Wait until the subscriptions are in place and the stream reader has its starting point.

        Raises :exc:`ClusterConnectionError`, naming the Redis server, when that takes
        more than :attr:`~tornad_io.cluster.RedisAdapterBase.connect_timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        await super().init()
        if not await self._reader.ready(max(0.0, self.connect_timeout - (loop.time() - started))):
            raise ClusterConnectionError(
                f"{self.label} {self.nsp.name}: could not read the stream {self.stream} on Redis at "
                f"{redis_location(self.client)} within {self.connect_timeout:g} s"
            )

    async def close(self) -> None:
        """Stop reading and listening; what is not published yet is dropped."""
        self._reader.detach(self.nsp.name, self)
        self._link.forget(self)
        if self._drainer is not None:
            self._drainer.cancel()
        self._outbox.clear()
        await super().close()

    def _connection_lost(self, error: BaseException, delay: float) -> None:
        self._link.lost(self, error)

    def _connection_restored(self) -> None:
        self._link.ok(self)

    # -- PUB/SUB -----------------------------------------------------------------------

    async def _subscribe(self, pubsub: Any) -> None:
        if self.sharded_pubsub:
            await pubsub.ssubscribe(self.channel, self.own_channel)
        else:
            await pubsub.subscribe(self.channel, self.own_channel)
        self._link.ok(self)

    async def _publish_command(self, channel: str, payload: bytes | str) -> None:
        if self.sharded_pubsub:
            await self.client.spublish(channel, payload)
        else:
            await self.client.publish(channel, payload)

    def _encode_envelope(self, envelope: dict[str, Any]) -> bytes | str:
        """PUB/SUB carries the whole envelope as msgpack (binary stays binary)."""
        return msgpack.packb(envelope)  # type: ignore[no-any-return]

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") not in ("message", "smessage"):
            return
        try:
            self._on_envelope(msgpack.unpackb(message["data"], raw=False))
        except Exception:  # noqa: BLE001 - one bad message must not stop the listener
            log.exception("%s %s: cannot handle a message", self.label, self.nsp.name)

    async def server_count(self) -> int:
        try:
            if self.sharded_pubsub:
                result = await self.client.pubsub_shardnumsub(self.channel)
            else:
                result = await self.client.pubsub_numsub(self.channel)
        except (RedisError, OSError):
            return 1
        return max(1, int(result[0][1])) if result else 1

    # -- the stream ---------------------------------------------------------------------

    def _on_stream_entry(self, entry: str, fields: dict[str, str]) -> None:
        """Another server's entry (the reader's call): act on it, its id as the offset."""
        if fields.get("uid") == self.uid:
            return  # delivered here when it was added
        envelope = decode_entry(fields)
        if envelope is not None:
            self._on_envelope(envelope, entry)

    def _in_order(self, fields: dict[str, str] | None, then: Callable[[str | None], None] | None) -> None:
        """Add *fields* to the stream (if any), then call *then* with the entry's id (None if not
        added), after everything asked before: local deliveries keep the order of the calls."""
        if fields is None and self._drainer is None and then is not None:
            then(None)
            return
        self._outbox.append(_Outgoing(fields, then))
        if self._drainer is None:
            self._start()
            self._drainer = spawn(self._drain())

    async def _drain(self) -> None:
        try:
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(_BATCH, len(self._outbox)))]
                ids = iter(await self._xadd([item.fields for item in batch if item.fields is not None]))
                for item in batch:
                    offset = next(ids) if item.fields is not None else None
                    if offset is not None:
                        self._own_upto = entry_id(offset)
                    if item.then is not None:
                        try:
                            item.then(offset)
                        except Exception:  # noqa: BLE001 - a socket's fault must not stop the others
                            log.exception("%s %s: delivery failed", self.label, self.nsp.name)
        finally:
            self._drainer = None

    async def _xadd(self, entries: list[dict[str, str]]) -> list[str | None]:
        """``XADD`` each entry (one pipeline, in order); their ids, None where one failed."""
        if not entries:
            return []
        results: list[Any] = []
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for fields in entries:
                pipe.xadd(self.stream, fields, maxlen=self.max_len, approximate=True)  # type: ignore[arg-type]
            try:
                results = await pipe.execute(raise_on_error=False)
                break
            except RedisConnectionError as error:
                # Pooled connections outlive a Redis restart, and a pipeline is not retried on one
                # (redis-py): the server closed it, so nothing was added. Drop the idle ones, once.
                if attempt == 0:
                    await self.client.connection_pool.disconnect(inuse_connections=False)
                    continue
                self._link.failed(f"{self.nsp.name}: adding to the stream {self.stream}", error)
                return [None] * len(entries)
            except (RedisError, OSError) as error:
                self._link.failed(f"{self.nsp.name}: adding to the stream {self.stream}", error)
                return [None] * len(entries)
        ids: list[str | None] = []
        for result in results:
            if isinstance(result, Exception):
                self._link.failed(f"{self.nsp.name}: adding to the stream {self.stream}", result)
                ids.append(None)
            else:
                ids.append(text(result))
        return ids

    def _deliver_own(self, packet: codec.Packet, opts: BroadcastOptions, offset: str | None) -> None:
        if offset is not None and self.nsp.server.options.recovery is not None and carries_offset(packet, opts):
            deliver_with_offset(self, packet, opts, offset)
        else:
            Adapter.broadcast(self, packet, opts)

    # -- the adapter interface ------------------------------------------------------------

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        """Add the broadcast to the stream, then deliver it here with the entry's id as its offset.

        Broadcasts are added and delivered in the order of the calls. A ``local`` one is not
        added (nor given an offset) but still waits its turn; a socket's own emit
        (:attr:`~tornad_io.BroadcastOptions.socket_emit`) is added, as in Node, unless it
        is volatile or asks for an ack.
        """
        if opts.local and not (opts.socket_emit and carries_offset(packet, opts)):
            # Not in the stream: local, or a socket's own emit that cannot be replayed anyway
            # (volatile, or with an ack id; Node writes those too, and its restore replays them).
            self._in_order(None, lambda _: Adapter.broadcast(self, packet, opts))
            return
        data = {"packet": packet_dict(packet), "opts": encode_options(opts)}
        fields = encode_entry(self.uid, self.nsp.name, BROADCAST, data, self.only_plaintext)
        self._in_order(fields, lambda offset: self._deliver_own(packet, opts, offset))

    def broadcast_with_ack(
        self,
        packet: codec.Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Deliver and publish like the other cluster adapters, after the broadcasts asked before it."""
        if self._drainer is None:
            return super().broadcast_with_ack(packet, opts, client_count, on_ack, on_gone)
        reached: list[str] = []  # filled when its turn comes (read only once answers are late)

        def send(_: str | None) -> None:
            reached.extend(
                super(RedisStreamsAdapter, self).broadcast_with_ack(packet, opts, client_count, on_ack, on_gone)
            )

        self._in_order(None, send)
        return reached

    def _cluster_apply(self, kind: int, data: dict[str, Any]) -> None:
        self._in_order(encode_entry(self.uid, self.nsp.name, kind, data, self.only_plaintext), None)

    # -- connection state recovery --------------------------------------------------------

    def _session_key(self, pid: str) -> str:
        return self.session_key_prefix + pid

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """``SET sio:session:<pid> <base64 msgpack {sid, pid, rooms, data}> PX <max_disconnection_duration>``
        (in the background), as Node does: any server of the cluster can restore it."""
        settings = self.nsp.server.options.recovery
        if settings is None:
            return
        ordered = [sid, *sorted(r for r in rooms if r != sid)] if sid in rooms else sorted(rooms)
        try:
            value = encode_session(sid, pid, ordered, data)
        except (TypeError, ValueError, OverflowError) as error:
            log.warning(
                "%s %s: socket %s: its data cannot be kept for recovery: %s", self.label, self.nsp.name, sid, error
            )
            return
        milliseconds = max(1, int(settings.max_disconnection_duration * 1000))
        key = self._session_key(pid)

        async def write() -> None:
            try:
                await self.client.set(key, value, px=milliseconds)
            except (RedisError, OSError) as error:
                self._link.failed(f"{self.nsp.name}: keeping the session of {sid}", error)

        spawn(write())

    async def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        """The session *pid* left in Redis (by this server or any other, Python or Node) and
        the packets it missed after *offset*, or None.

        As in Node: the offset must still be in the stream, the session key is read and
        deleted in one ``MULTI``/``EXEC``, and the missed packets are this namespace's
        broadcasts after *offset* that reached the session's rooms. Unlike Node, the key is
        only taken when the restore can succeed; volatile packets and packets sent with an
        ack id are not replayed (the client saw them live, without an offset, or never
        should); and the replay ends where this server's live deliveries take over, so
        that nothing comes twice.
        """
        if self.nsp.server.options.recovery is None or not is_offset(offset):
            return None
        start = entry_id(offset)
        key = self._session_key(pid)
        try:
            if not await self.client.xrange(self.stream, offset, offset):
                return None  # trimmed away (or never there): the client starts afresh
            if not await self._reader.reach(self.stream, start, self.requests_timeout):
                log.warning("%s %s: the stream reader is behind; session not restored", self.label, self.nsp.name)
                return None
            entries: list[tuple[str, dict[str, str]]] = []
            cursor = await self._read_after(offset, entries)
            raw = await self._take_session(key)
        except (RedisError, OSError) as error:
            self._link.failed(f"{self.nsp.name}: restoring a session", error)
            return None
        if raw is None:
            return None
        try:
            for _ in range(_RESTORE_ROUNDS):
                if not self._behind(cursor):
                    break
                cursor = await self._read_after(cursor, entries)
            else:
                raise RedisError("the stream grows faster than it can be read")
        except (RedisError, OSError) as error:
            self._link.failed(f"{self.nsp.name}: restoring a session", error)
            await self._put_back(key, raw)
            return None
        # No await from here on: the namespace adds the socket before the next delivery.
        session = msgpack.unpackb(base64.b64decode(raw), raw=False)
        rooms = [str(r) for r in session.get("rooms") or ()]
        missed = self._missed(entries, start, rooms)
        return RestoredSession(str(session["sid"]), str(session.get("pid", pid)), rooms, session.get("data"), missed)

    async def _read_after(self, cursor: str, into: list[tuple[str, dict[str, str]]]) -> str:
        """Append the entries after *cursor* to *into*; the id of the last one read."""
        while True:
            batch = await self.client.xrange(self.stream, next_offset(cursor), "+", count=_RANGE_COUNT) or []
            for identifier, fields in batch:
                cursor = text(identifier)
                into.append((cursor, {text(k): text(v) for k, v in (fields or {}).items()}))
            if len(batch) < _RANGE_COUNT:
                return cursor

    def _behind(self, cursor: str) -> bool:
        """Whether this server delivered entries that the restore has not read yet."""
        read = entry_id(cursor)
        position = self._reader.position(self.stream)
        return (position is not None and position > read) or self._own_upto > read

    async def _take_session(self, key: str) -> str | None:
        """``MULTI GET DEL EXEC`` (GETDEL for any Redis version): the session, taken by one server only."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key)
        pipe.delete(key)
        value, _ = await pipe.execute()
        return None if value is None else text(value)

    async def _put_back(self, key: str, raw: str) -> None:
        settings = self.nsp.server.options.recovery
        if settings is None:
            return
        try:
            await self.client.set(key, raw, px=max(1, int(settings.max_disconnection_duration * 1000)), nx=True)
        except (RedisError, OSError):
            pass  # the session is lost with the connection

    def _missed(
        self, entries: list[tuple[str, dict[str, str]]], start: EntryId, rooms: list[str]
    ) -> list[list[str | bytes]]:
        """The packets among *entries* a socket in *rooms* missed, each with its offset."""
        position = self._reader.position(self.stream) or (0, 0)
        missed: list[list[str | bytes]] = []
        for identifier, fields in entries:
            at = entry_id(identifier)
            if at <= start or fields.get("nsp") != self.nsp.name or fields.get("type") != str(BROADCAST):
                continue
            # Delivered here already (by this server when it added it, by the reader otherwise)? If
            # not, the live delivery will reach the restored socket: not replayed.
            if at > (self._own_upto if fields.get("uid") == self.uid else position):
                continue
            envelope = decode_entry(fields)
            data = envelope.get("data") if envelope is not None else None
            if not isinstance(data, dict) or data.get("requestId") is not None:
                continue
            packet, opts = data.get("packet") or {}, data.get("opts") or {}
            if packet.get("id") is not None or (opts.get("flags") or {}).get("volatile"):
                continue  # sent live without an offset: replaying it would repeat it
            if reaches(rooms, opts):
                missed.append(
                    encode_with_offset(
                        self.nsp.name,
                        list(packet.get("data") or []),
                        identifier,
                        self.nsp.server.options.packet_parser,
                    )
                )
        return missed


def redis_streams_adapter(
    url: str = "redis://127.0.0.1:6379/0",
    stream_name: str = "socket.io",
    max_len: int = 10_000,
    read_count: int = 100,
    block_time: float = 5.0,
    *,
    stream_count: int = 1,
    channel_prefix: str = "socket.io",
    session_key_prefix: str = "sio:session:",
    use_sharded_pubsub: bool = False,
    only_plaintext: bool = False,
    requests_timeout: float = 5.0,
    client: aioredis.Redis | None = None,
    connect_timeout: float = 10.0,
) -> Callable[[Namespace], RedisStreamsAdapter]:
    """The ``adapter=`` argument of :class:`~tornad_io.Server` for a cluster on Redis Streams.

    ``Server(adapter=redis_streams_adapter("redis://host:6379/0"), connection_state_recovery=True)``:
    the format of Node's ``@socket.io/redis-streams-adapter`` 0.3.x, so Python and Node
    servers share a cluster, and a client whose connection drops recovers its session
    on any of them. The options are Node's, in seconds where Node has milliseconds:
    *stream_name* (the stream, or with *stream_count* > 1 the prefix of
    ``<stream_name>-<i>``), *max_len* (``MAXLEN ~`` of each ``XADD``), *read_count*
    (``XREAD COUNT``), *block_time* (``XREAD BLOCK``, Node's ``blockTimeInMs``),
    *channel_prefix* (the PUB/SUB channels), *session_key_prefix*,
    *use_sharded_pubsub* and *only_plaintext*. *requests_timeout*, *client* and
    *connect_timeout* are those of :func:`~tornad_io.cluster.redis_adapter`.
    """
    if stream_count < 1 or max_len < 1 or read_count < 1 or block_time <= 0:
        raise ValueError("stream_count, max_len, read_count and block_time must be positive")
    settings = {
        "stream_name": stream_name,
        "stream_count": stream_count,
        "max_len": max_len,
        "read_count": read_count,
        "block_time": block_time,
        "channel_prefix": channel_prefix,
        "session_key_prefix": session_key_prefix,
        "use_sharded_pubsub": use_sharded_pubsub,
        "only_plaintext": only_plaintext,
        "requests_timeout": requests_timeout,
        "connect_timeout": connect_timeout,
    }
    return _Shared(url, client, settings)
