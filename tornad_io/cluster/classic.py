"""The classic format of Node's ``@socket.io/redis-adapter`` v8 (``createAdapter``).

Channels (``key`` defaults to ``socket.io``, one set per namespace): broadcasts on
``<key>#<nsp>#`` and ``<key>#<nsp>#<room>#`` (msgpack ``[uid, packet, opts]``),
requests on ``<key>-request#<nsp>#``, responses on ``<key>-response#<nsp>#``;
servers are counted with ``PUBSUB NUMSUB`` on the request channel. This is the
format ``@socket.io/redis-emitter`` speaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..adapter import BroadcastOptions
from ..socketio import codec
from .base import RedisAdapterBase, _dumps, _plain, _rooms, _SharedClientFactory, decode_message, log, uid

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace

SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH = 0, 1, 2, 3, 4, 5
SERVER_SIDE_EMIT, BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = 6, 7, 8, 9


def encode_broadcast(sender: str, nsp: str, data: list[Any], opts: BroadcastOptions) -> bytes:
    """The msgpack broadcast message ``[uid, {type, data, nsp}, {rooms, except, flags}]``."""
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    if not opts.compress:
        flags["compress"] = False
    packet = {"type": codec.EVENT, "data": _plain(data), "nsp": nsp}
    options = {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms), "flags": flags}
    return msgpack.packb([sender, packet, options])  # type: ignore[no-any-return]


class RedisAdapter(RedisAdapterBase):
    """The classic format: PUBLISH/PSUBSCRIBE, msgpack broadcasts, numbered JSON requests."""

    def __init__(
        self,
        nsp: Namespace,
        client: aioredis.Redis,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        #: This server's id in the cluster (6 characters, like Node's).
        self.uid = uid()
        #: The prefix of every channel (``socket.io`` by default, as in Node).
        self.key = key
        #: Whether answers go to the requester's own response channel.
        self.specific_response = publish_on_specific_response_channel
        name = nsp.name
        #: The broadcast channel of the namespace; a room's is this plus ``<room>#``.
        self.channel = f"{key}#{name}#"
        #: The channel of requests to every server of the namespace.
        self.request_channel = f"{key}-request#{name}#"
        #: The channel of answers to requests.
        self.response_channel = f"{key}-response#{name}#"
        #: The channel of answers to this server only.
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        super().__init__(nsp, client, requests_timeout, connect_timeout)

    async def _subscribe(self, pubsub: Any) -> None:
        await pubsub.psubscribe(self.channel + "*")
        await pubsub.subscribe(self.request_channel, self.response_channel, self.specific_response_channel)

    async def _publish_command(self, channel: str, payload: bytes | str) -> None:
        await self.client.publish(channel, payload)

    async def server_count(self) -> int:
        try:
            result = await self.client.pubsub_numsub(self.request_channel)
        except (RedisError, OSError):
            return 1
        return max(1, int(result[0][1])) if result else 1

    # -- incoming ----------------------------------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") not in ("message", "pmessage"):
            return
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        data: bytes = message["data"]
        try:
            if channel.startswith(self.channel):
                self._on_broadcast(channel, data)
            elif channel == self.request_channel:
                self._on_request(decode_message(data))
            elif channel.startswith(self.response_channel):
                self._on_response(decode_message(data))
        except Exception:  # noqa: BLE001 - one bad message must not stop the listener
            log.exception("redis adapter %s: cannot handle a message on %s", self.nsp.name, channel)

    def _on_broadcast(self, channel: str, payload: bytes) -> None:
        room = channel[len(self.channel) :]
        if room:
            room = room[:-1] if room.endswith("#") else room
            if room not in self.rooms:
                return
        sender, packet, opts = msgpack.unpackb(payload, raw=False)
        if sender == self.uid:
            return
        if packet.get("nsp", "/") != self.nsp.name:
            return
        flags = opts.get("flags") or {}
        options = BroadcastOptions(
            rooms=_rooms(opts.get("rooms")),
            except_rooms=_rooms(opts.get("except")),
            volatile=bool(flags.get("volatile")),
            compress=flags.get("compress", True) is not False,
        )
        self._deliver_remote_broadcast(packet["data"], options)

    def _opts(self, request: dict[str, Any]) -> BroadcastOptions:
        opts = request.get("opts") or {}
        return BroadcastOptions(rooms=_rooms(opts.get("rooms")), except_rooms=_rooms(opts.get("except")))

    def _respond(self, requester: str | None, response: dict[str, Any], binary: bool = False) -> None:
        payload: bytes | str = msgpack.packb(response) if binary else _dumps(response)
        channel = self.response_channel
        if self.specific_response and requester:
            channel = f"{self.response_channel}{requester}#"
        self._send(channel, payload)

    def _on_request(self, request: dict[str, Any]) -> None:
        kind = request.get("type")
        request_id = request.get("requestId")
        if request_id in self._pending:
            return  # our own request, echoed
        if kind in (REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT):
            # Applied by every node when Redis delivers it, the sender included (as in Node).
            if "opts" in request:
                opts = self._opts(request)
            elif "sid" in request:  # the legacy v6 form
                opts = BroadcastOptions(rooms=frozenset((request["sid"],)))
            else:
                return
            if kind == REMOTE_JOIN:
                super().add_sockets(opts, _rooms(request.get("rooms") or [request.get("room")]))
            elif kind == REMOTE_LEAVE:
                super().del_sockets(opts, _rooms(request.get("rooms") or [request.get("room")]))
            else:
                super().disconnect_sockets(opts, bool(request.get("close")))
            return
        if request.get("uid") == self.uid:
            return
        requester = request.get("uid")
        if kind == SOCKETS:
            sids = sorted(self.sockets(_rooms(request.get("rooms"))))
            self._respond(requester, {"requestId": request_id, "sockets": sids})
        elif kind == ALL_ROOMS:
            self._respond(requester, {"requestId": request_id, "rooms": list(self.rooms)})
        elif kind == REMOTE_FETCH:
            sockets = [self._describe(s) for s in self.select(self._opts(request))]
            self._respond(requester, {"requestId": request_id, "sockets": sockets})
        elif kind == SERVER_SIDE_EMIT:
            self._answer_server_side_emit(requester, request_id, request.get("data") or [])
        elif kind == BROADCAST:
            self._answer_broadcast_with_ack(
                requester, request["requestId"], request["packet"]["data"], self._opts(request)
            )

    def _reply_client_count(self, requester: str | None, request_id: str, count: int) -> None:
        self._respond(requester, {"type": BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count})

    def _reply_broadcast_ack(self, requester: str | None, request_id: str, response: Any) -> None:
        self._respond(
            requester, {"type": BROADCAST_ACK, "requestId": request_id, "packet": _plain(response)}, binary=True
        )

    def _reply_server_side_emit(self, requester: str | None, request_id: str, result: Any) -> None:
        # The ack reply always goes to the shared response channel (as in Node).
        payload = _dumps({"type": SERVER_SIDE_EMIT, "requestId": request_id, "data": _plain(result)})
        self._send(self.response_channel, payload)

    def _on_response(self, response: dict[str, Any]) -> None:
        pending = self._pending.get(response.get("requestId", ""))
        if pending is None:
            return
        kind = response.get("type")
        if kind == BROADCAST_CLIENT_COUNT and pending.on_count is not None:
            pending.on_count(int(response.get("clientCount", 0)))
        elif kind == BROADCAST_ACK and pending.on_ack is not None:
            pending.on_ack(None, response.get("packet"))
        elif pending.kind == REMOTE_FETCH:
            self._answered(pending, response.get("sockets") or [])
        elif pending.kind == ALL_ROOMS:
            self._answered(pending, response.get("rooms") or [])
        elif pending.kind == SERVER_SIDE_EMIT:
            self._answered(pending, [response.get("data")])

    # -- outgoing: the wire format -----------------------------------------------------

    def _new_request_id(self) -> str:
        return uid()

    def _encode_broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> tuple[str, bytes | str]:
        channel = self.channel
        if len(opts.rooms) == 1:
            channel += next(iter(opts.rooms)) + "#"
        return channel, encode_broadcast(self.uid, self.nsp.name, packet.data, opts)

    def _encode_broadcast_with_ack(
        self, request_id: str, packet: codec.Packet, opts: BroadcastOptions
    ) -> tuple[str, bytes | str]:
        flags: dict[str, Any] = {}
        if opts.timeout is not None:
            flags["timeout"] = int(opts.timeout * 1000)
        request = {
            "uid": self.uid,
            "requestId": request_id,
            "type": BROADCAST,
            "packet": {"type": codec.EVENT, "data": _plain(packet.data), "nsp": self.nsp.name},
            "opts": {"rooms": list(opts.rooms), "except": list(opts.except_rooms), "flags": flags},
        }
        return self.request_channel, msgpack.packb(request)

    def _encode_request(self, request_id: str, kind: int, data: dict[str, Any]) -> tuple[str, bytes | str]:
        return self.request_channel, _dumps({"uid": self.uid, "requestId": request_id, "type": kind, **data})

    async def _fetch_remote(self, opts: BroadcastOptions) -> list[Any]:
        return await self._request(
            REMOTE_FETCH, {"opts": {"rooms": list(opts.rooms), "except": list(opts.except_rooms)}}
        )

    async def all_rooms(self) -> set[str]:
        """Every room of the namespace across the cluster."""
        rooms = set(self.rooms)
        rooms.update(await self._request(ALL_ROOMS, {}))
        return rooms

    def _remote(self, kind: int, opts: BroadcastOptions, **fields: Any) -> None:
        request = {
            "uid": self.uid,
            "type": kind,
            "opts": {"rooms": list(opts.rooms), "except": list(opts.except_rooms)},
        }
        request.update(fields)
        # Not applied here: every node applies it when Redis delivers it, this one included.
        self._send(self.request_channel, _dumps(request))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        if opts.local:
            super().add_sockets(opts, rooms)
        else:
            self._remote(REMOTE_JOIN, opts, rooms=list(rooms))

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        if opts.local:
            super().del_sockets(opts, rooms)
        else:
            self._remote(REMOTE_LEAVE, opts, rooms=list(rooms))

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if opts.local:
            super().disconnect_sockets(opts, close)
        else:
            self._remote(REMOTE_DISCONNECT, opts, close=close)

    def server_side_emit(self, args: list[Any], on_ack: Callable[..., None] | None = None) -> None:
        if on_ack is None:
            self._send(self.request_channel, _dumps({"uid": self.uid, "type": SERVER_SIDE_EMIT, "data": _plain(args)}))
        else:
            self._emit_with_ack(self._request(SERVER_SIDE_EMIT, {"data": _plain(args)}), on_ack)


def redis_adapter(
    url: str = "redis://127.0.0.1:6379/0",
    key: str = "socket.io",
    requests_timeout: float = 5.0,
    publish_on_specific_response_channel: bool = False,
    client: aioredis.Redis | None = None,
    connect_timeout: float = 10.0,
) -> Callable[[Namespace], RedisAdapter]:
    """The ``adapter=`` argument of :class:`~tornad_io.Server` for a Redis cluster (classic format).

    ``Server(adapter=redis_adapter("redis://host:6379/0"))``: every server
    (Python or Node, with ``@socket.io/redis-adapter``'s ``createAdapter``)
    using the same Redis and *key* forms one cluster. *requests_timeout* bounds
    the wait for other servers' answers (``fetch_sockets``, server-side emit
    with acks); *publish_on_specific_response_channel* is Node's option of that
    name. Pass *client* to share a redis-py asyncio client; otherwise one is
    made from *url* on first use and shared by the server's namespaces.
    ``await io.init()`` raises :exc:`ClusterConnectionError` when Redis cannot
    be reached within *connect_timeout* seconds.
    """

    def build(nsp: Namespace, redis: aioredis.Redis) -> RedisAdapter:
        return RedisAdapter(nsp, redis, key, requests_timeout, publish_on_specific_response_channel, connect_timeout)

    return _SharedClientFactory(build, url, client, key)
