"""The sharded format of Node's ``@socket.io/redis-adapter`` (``createShardedAdapter``, Redis ≥ 7).

``SSUBSCRIBE``/``SPUBLISH`` on ``<key>#<nsp>#`` (everything), ``<key>#<nsp>#<uid>#``
(answers to this node) and one channel per public room; messages are Node's
``ClusterAdapter`` envelopes ``{type, data, uid, nsp}``; servers are counted with
``PUBSUB SHARDNUMSUB``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._usercode import spawn
from ..adapter import BroadcastOptions
from ..socketio import codec
from .base import _dumps, _SharedClientFactory, decode_message, log
from .envelope import BROADCAST, EnvelopeAdapter, encode_options, packet_dict

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace

_PRIVATE_ROOM_LENGTH = 20  # socket ids: no room channel for them (Node's "dynamic" subscription mode)


class ShardedRedisAdapter(EnvelopeAdapter):
    """The sharded format (Node's ``createShardedAdapter``, Redis ≥ 7): ``SSUBSCRIBE``/``SPUBLISH``,
    envelopes ``{type, data, uid, nsp}`` in JSON (msgpack when they carry binary), one channel per
    public room, responses on ``<key>#<nsp>#<uid>#``, servers counted with ``PUBSUB SHARDNUMSUB``."""

    #: How the adapter names itself in log messages.
    label = "sharded redis adapter"

    def __init__(
        self,
        nsp: Namespace,
        client: aioredis.Redis,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(nsp, client, key, requests_timeout, connect_timeout)

    async def _subscribe(self, pubsub: Any) -> None:
        await pubsub.ssubscribe(self.channel, self.own_channel, *self._room_channels())

    async def _publish_command(self, channel: str, payload: bytes | str) -> None:
        await self.client.spublish(channel, payload)

    def _room_channels(self) -> list[str]:
        return [f"{self.channel}{room}#" for room in self.rooms if len(room) != _PRIVATE_ROOM_LENGTH]

    # rooms: subscribe to a public room's channel when it appears here, unsubscribe when it goes

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        self._start()
        rooms = list(rooms)
        new = [r for r in rooms if r not in self.rooms and len(r) != _PRIVATE_ROOM_LENGTH]
        super().add_all(sid, rooms)
        if new and self._pubsub is not None:
            spawn(self._subscription(self._pubsub.ssubscribe, [f"{self.channel}{r}#" for r in new]))

    def delete(self, sid: str, room: str) -> None:
        super().delete(sid, room)
        self._maybe_unsubscribe([room])

    def del_all(self, sid: str) -> None:
        rooms = list(self.sids.get(sid, ()))
        super().del_all(sid)
        self._maybe_unsubscribe(rooms)

    def _maybe_unsubscribe(self, rooms: list[str]) -> None:
        gone = [r for r in rooms if r not in self.rooms and len(r) != _PRIVATE_ROOM_LENGTH]
        if gone and self._pubsub is not None:
            spawn(self._subscription(self._pubsub.sunsubscribe, [f"{self.channel}{r}#" for r in gone]))

    async def _subscription(self, command: Any, channels: list[str]) -> None:
        try:
            await command(*channels)
        except (RedisError, OSError) as error:
            log.warning("sharded redis adapter %s: (un)subscribe failed: %s", self.nsp.name, error)

    # transport

    def _encode_envelope(self, envelope: dict[str, Any]) -> bytes | str:
        """Envelopes are JSON, or msgpack when they carry binary (receivers sniff ``{``)."""
        return msgpack.packb(envelope) if codec.has_binary(envelope["data"]) else _dumps(envelope)

    async def server_count(self) -> int:
        try:
            result = await self.client.pubsub_shardnumsub(self.channel)
        except (RedisError, OSError):
            return 1
        return max(1, int(result[0][1])) if result else 1

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "smessage":
            return
        try:
            self._on_envelope(decode_message(message["data"]))
        except Exception:  # noqa: BLE001
            log.exception("sharded redis adapter %s: cannot handle a message", self.nsp.name)

    def _encode_broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> tuple[str, bytes | str]:
        channel = self.channel
        if len(opts.rooms) == 1:
            room = next(iter(opts.rooms))
            if len(room) != _PRIVATE_ROOM_LENGTH:
                channel = f"{self.channel}{room}#"
        data = {"packet": packet_dict(packet), "opts": encode_options(opts)}
        return channel, self._encode_envelope(self._envelope(BROADCAST, data))

    def _cluster_apply(self, kind: int, data: dict[str, Any]) -> None:
        # ClusterAdapter semantics: applied here now, and by the others when Redis delivers it.
        self._publish(self.channel, self._envelope(kind, data))


def sharded_redis_adapter(
    url: str = "redis://127.0.0.1:6379/0",
    key: str = "socket.io",
    requests_timeout: float = 5.0,
    client: aioredis.Redis | None = None,
    connect_timeout: float = 10.0,
) -> Callable[[Namespace], ShardedRedisAdapter]:
    """The ``adapter=`` argument of :class:`~tornad_io.Server` for a sharded cluster (Redis ≥ 7).

    ``Server(adapter=sharded_redis_adapter("redis://host:6379/0"))``: the
    format of Node's ``createShardedAdapter`` (``SSUBSCRIBE``/``SPUBLISH``),
    for Redis Cluster. The parameters are those of :func:`redis_adapter`.
    """

    def build(nsp: Namespace, redis: aioredis.Redis) -> ShardedRedisAdapter:
        return ShardedRedisAdapter(nsp, redis, key, requests_timeout, connect_timeout)

    return _SharedClientFactory(build, url, client, key)
