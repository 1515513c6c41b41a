"""The sharded format of Node's ``@socket.io/redis-adapter`` (``createShardedAdapter``, Redis ≥ 7).

``SSUBSCRIBE``/``SPUBLISH`` on ``<key>#<nsp>#`` (everything), ``<key>#<nsp>#<uid>#``
(answers to this node) and one channel per public room; messages are Node's
``ClusterAdapter`` envelopes ``{type, data, uid, nsp}``; servers are counted with
``PUBSUB SHARDNUMSUB``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._usercode import spawn
from ..adapter import BroadcastOptions
from ..socketio import codec
from .base import RedisAdapterBase, _dumps, _plain, _rooms, _SharedClientFactory, decode_message, log

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace

S_BROADCAST, S_SOCKETS_JOIN, S_SOCKETS_LEAVE, S_DISCONNECT_SOCKETS = 3, 4, 5, 6
S_FETCH_SOCKETS, S_FETCH_SOCKETS_RESPONSE, S_SERVER_SIDE_EMIT, S_SERVER_SIDE_EMIT_RESPONSE = 7, 8, 9, 10
S_BROADCAST_CLIENT_COUNT, S_BROADCAST_ACK = 11, 12
_PRIVATE_ROOM_LENGTH = 20  # socket ids: no room channel for them (Node's "dynamic" subscription mode)


def _hex_id() -> str:
    return secrets.token_hex(8)


def _opts_dict(opts: BroadcastOptions) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    if not opts.compress:
        flags["compress"] = False
    if opts.timeout is not None:
        flags["timeout"] = int(opts.timeout * 1000)
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms), "flags": flags}


class ShardedRedisAdapter(RedisAdapterBase):
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
        #: This server's id in the cluster (16 hexadecimal digits, like Node's).
        self.uid = _hex_id()
        #: The namespace's channel; a public room's is this plus ``<room>#``.
        self.channel = f"{key}#{nsp.name}#"
        #: The channel of answers to this server.
        self.own_channel = f"{self.channel}{self.uid}#"
        super().__init__(nsp, client, requests_timeout, connect_timeout)

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

    @staticmethod
    def _encode_envelope(envelope: dict[str, Any]) -> bytes | str:
        """Envelopes are JSON, or msgpack when they carry binary (receivers sniff ``{``)."""
        return msgpack.packb(envelope) if codec.has_binary(envelope["data"]) else _dumps(envelope)

    def _publish(self, channel: str, envelope: dict[str, Any]) -> None:
        self._send(channel, self._encode_envelope(envelope))

    def _envelope(self, type_: int, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": type_, "data": data, "uid": self.uid, "nsp": self.nsp.name}

    def _reply(self, to_uid: str, type_: int, data: dict[str, Any]) -> None:
        self._publish(f"{self.channel}{to_uid}#", self._envelope(type_, data))

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
            envelope = decode_message(message["data"])
            if envelope.get("uid") == self.uid or envelope.get("nsp", "/") != self.nsp.name:
                return
            self._on_envelope(envelope)
        except Exception:  # noqa: BLE001
            log.exception("sharded redis adapter %s: cannot handle a message", self.nsp.name)

    def _on_envelope(self, envelope: dict[str, Any]) -> None:
        kind, data, sender = envelope["type"], envelope.get("data") or {}, envelope["uid"]
        opts_in = data.get("opts") or {}
        opts = BroadcastOptions(
            rooms=_rooms(opts_in.get("rooms")),
            except_rooms=_rooms(opts_in.get("except")),
            volatile=bool((opts_in.get("flags") or {}).get("volatile")),
        )
        if kind == S_BROADCAST:
            request_id = data.get("requestId")
            if request_id is None:
                self._deliver_remote_broadcast(data["packet"]["data"], opts)
            else:
                self._answer_broadcast_with_ack(sender, request_id, data["packet"]["data"], opts)
        elif kind == S_SOCKETS_JOIN:
            super().add_sockets(opts, _rooms(data.get("rooms")))
        elif kind == S_SOCKETS_LEAVE:
            super().del_sockets(opts, _rooms(data.get("rooms")))
        elif kind == S_DISCONNECT_SOCKETS:
            super().disconnect_sockets(opts, bool(data.get("close")))
        elif kind == S_FETCH_SOCKETS:
            sockets = [self._describe(s) for s in self.select(opts)]
            self._reply(sender, S_FETCH_SOCKETS_RESPONSE, {"requestId": data["requestId"], "sockets": sockets})
        elif kind == S_SERVER_SIDE_EMIT:
            self._answer_server_side_emit(sender, data.get("requestId"), data.get("packet") or [])
        elif kind in (S_FETCH_SOCKETS_RESPONSE, S_SERVER_SIDE_EMIT_RESPONSE):
            pending = self._pending.get(data.get("requestId", ""))
            if pending is not None:
                answers = data.get("sockets") or [] if kind == S_FETCH_SOCKETS_RESPONSE else [data.get("packet")]
                self._answered(pending, answers)
        elif kind in (S_BROADCAST_CLIENT_COUNT, S_BROADCAST_ACK):
            pending = self._pending.get(data.get("requestId", ""))
            if pending is None:
                return
            if kind == S_BROADCAST_CLIENT_COUNT and pending.on_count is not None:
                pending.on_count(int(data.get("clientCount", 0)))
            elif kind == S_BROADCAST_ACK and pending.on_ack is not None:
                pending.on_ack(None, data.get("packet"))

    def _reply_client_count(self, requester: str | None, request_id: str, count: int) -> None:
        self._reply(str(requester), S_BROADCAST_CLIENT_COUNT, {"requestId": request_id, "clientCount": count})

    def _reply_broadcast_ack(self, requester: str | None, request_id: str, response: Any) -> None:
        self._reply(str(requester), S_BROADCAST_ACK, {"requestId": request_id, "packet": _plain(response)})

    def _reply_server_side_emit(self, requester: str | None, request_id: str, result: Any) -> None:
        self._reply(str(requester), S_SERVER_SIDE_EMIT_RESPONSE, {"requestId": request_id, "packet": _plain(result)})

    # the wire format of what this server sends

    def _new_request_id(self) -> str:
        return _hex_id()

    def _encode_broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> tuple[str, bytes | str]:
        channel = self.channel
        if len(opts.rooms) == 1:
            room = next(iter(opts.rooms))
            if len(room) != _PRIVATE_ROOM_LENGTH:
                channel = f"{self.channel}{room}#"
        data = {"packet": {"type": codec.EVENT, "data": _plain(packet.data)}, "opts": _opts_dict(opts)}
        return channel, self._encode_envelope(self._envelope(S_BROADCAST, data))

    def _encode_broadcast_with_ack(
        self, request_id: str, packet: codec.Packet, opts: BroadcastOptions
    ) -> tuple[str, bytes | str]:
        data = {
            "packet": {"type": codec.EVENT, "data": _plain(packet.data)},
            "opts": _opts_dict(opts),
            "requestId": request_id,
        }
        return self.channel, self._encode_envelope(self._envelope(S_BROADCAST, data))

    def _encode_request(self, request_id: str, kind: int, data: dict[str, Any]) -> tuple[str, bytes | str]:
        return self.channel, self._encode_envelope(self._envelope(kind, {**data, "requestId": request_id}))

    async def _fetch_remote(self, opts: BroadcastOptions) -> list[Any]:
        return await self._request(S_FETCH_SOCKETS, {"opts": _opts_dict(opts)})

    # the adapter interface

    def _cluster_apply(self, kind: int, opts: BroadcastOptions, **fields: Any) -> None:
        # ClusterAdapter semantics: applied here now, and by the others when Redis delivers it.
        self._publish(self.channel, self._envelope(kind, {"opts": _opts_dict(opts), **fields}))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        if not opts.local:
            self._cluster_apply(S_SOCKETS_JOIN, opts, rooms=rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        if not opts.local:
            self._cluster_apply(S_SOCKETS_LEAVE, opts, rooms=rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if not opts.local:
            self._cluster_apply(S_DISCONNECT_SOCKETS, opts, close=close)

    def server_side_emit(self, args: list[Any], on_ack: Callable[..., None] | None = None) -> None:
        if on_ack is None:
            self._publish(self.channel, self._envelope(S_SERVER_SIDE_EMIT, {"packet": _plain(args)}))
        else:
            self._emit_with_ack(self._request(S_SERVER_SIDE_EMIT, {"packet": _plain(args)}), on_ack)


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

    return _SharedClientFactory(build, url, client)
