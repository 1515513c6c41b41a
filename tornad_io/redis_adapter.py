"""A Redis adapter in the wire format of Node's ``@socket.io/redis-adapter`` (classic, v8).

Python and Node servers share one cluster, and ``@socket.io/redis-emitter`` can
emit into it::

    from tornad_io import Server
    from tornad_io.redis_adapter import redis_adapter

    io = Server(adapter=redis_adapter("redis://127.0.0.1:6379/0"))

Channels (``key`` defaults to ``socket.io``, one set per namespace):
broadcasts on ``<key>#<nsp>#`` and ``<key>#<nsp>#<room>#`` (msgpack
``[uid, packet, opts]``), requests on ``<key>-request#<nsp>#``, responses on
``<key>-response#<nsp>#``; servers are counted with ``PUBSUB NUMSUB`` on the
request channel. Uses redis-py's asyncio client (well kept, speaks Redis and
Valkey, reconnects) and msgpack (byte-identical to Node's notepack.io for the
values Socket.IO carries).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .adapter import Adapter, BroadcastOptions
from .exceptions import TornadIOError
from .socketio import codec
from .socketio._calls import call_user, spawn

if TYPE_CHECKING:
    from .socketio.namespace import Namespace

log = logging.getLogger("tornad_io.redis")

SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH = 0, 1, 2, 3, 4, 5
SERVER_SIDE_EMIT, BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = 6, 7, 8, 9

_UID_CHARS = string.ascii_letters + string.digits + "_-"


def _dumps(value: Any) -> str:
    """Compact JSON, as Node's JSON.stringify writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def uid() -> str:
    """A 6-character node or request id, like Node's ``uid2(6)``."""
    return "".join(secrets.choice(_UID_CHARS) for _ in range(6))


class ClusterTimeout(TornadIOError, TimeoutError):
    """A cluster request did not get every server's answer in time."""


def _plain(value: Any) -> Any:
    """Tuples as lists, sets as lists: what msgpack and JSON take."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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


def decode_message(payload: bytes) -> Any:
    """A request or response: JSON when it starts with ``{``, msgpack otherwise (as Node sniffs)."""
    if payload[:1] == b"{":
        return json.loads(payload)
    return msgpack.unpackb(payload, raw=False)


def _rooms(values: Iterable[Any] | None) -> frozenset[str]:
    return frozenset(str(v) for v in values or ())


class RemoteSocket:
    """A socket on another server, from ``fetch_sockets()``: data, and the operations that reach it."""

    def __init__(self, adapter: Adapter, details: dict[str, Any]) -> None:
        self._adapter = adapter
        self.id: str = details["id"]
        self.handshake: dict[str, Any] = details.get("handshake", {})
        self.rooms: set[str] = set(details.get("rooms", ()))
        self.data: Any = details.get("data")

    def __repr__(self) -> str:
        return f"<RemoteSocket {self.id}>"

    def _only_me(self) -> BroadcastOptions:
        return BroadcastOptions(rooms=frozenset((self.id,)))

    def emit(self, event: str, *args: Any) -> None:
        self._adapter.broadcast(codec.Packet(codec.EVENT, self._adapter.nsp.name, [event, *args]), self._only_me())

    def join(self, rooms: str | Iterable[str]) -> None:
        self._adapter.add_sockets(self._only_me(), [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        self._adapter.del_sockets(self._only_me(), [room])

    def disconnect(self, close: bool = False) -> None:
        self._adapter.disconnect_sockets(self._only_me(), close)


class _Pending:
    """A request waiting for answers from the other servers."""

    __slots__ = ("kind", "expected", "responses", "future", "on_count", "on_ack")

    def __init__(self, kind: int, expected: int) -> None:
        self.kind = kind
        self.expected = expected
        self.responses: list[Any] = []
        self.future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.on_count: Callable[[int], None] | None = None
        self.on_ack: Callable[[str | None, Any], None] | None = None


class RedisAdapter(Adapter):
    """The in-memory adapter, plus publishing to and listening on Redis."""

    def __init__(
        self,
        nsp: Namespace,
        client: aioredis.Redis,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
    ) -> None:
        super().__init__(nsp)
        self.client = client
        self.uid = uid()
        self.key = key
        self.requests_timeout = requests_timeout
        self.specific_response = publish_on_specific_response_channel
        name = nsp.name
        self.channel = f"{key}#{name}#"
        self.request_channel = f"{key}-request#{name}#"
        self.response_channel = f"{key}-response#{name}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        self._pending: dict[str, _Pending] = {}
        self._ready = asyncio.Event()
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # created before the loop runs: started on first use
        else:
            self._start()

    def _start(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = spawn(self._listen())

    # -- connection --------------------------------------------------------------

    async def init(self) -> None:
        """Wait until the subscriptions are in place."""
        self._start()
        await self._ready.wait()

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(ClusterTimeout("the adapter was closed"))
                pending.future.exception()  # retrieved here: a waiter, if any, still gets it

    async def _listen(self) -> None:
        """Subscribe and dispatch; on a lost connection, reconnect and subscribe again."""
        delay = 0.1
        while not self._closed:
            pubsub = self.client.pubsub()
            try:
                await pubsub.psubscribe(self.channel + "*")
                await pubsub.subscribe(self.request_channel, self.response_channel, self.specific_response_channel)
                if delay > 0.1:
                    log.warning("redis adapter %s: reconnected and subscribed again", self.nsp.name)
                delay = 0.1
                self._ready.set()
                async for message in pubsub.listen():
                    self._on_message(message)
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except (RedisError, OSError) as error:
                self._ready.clear()
                log.warning("redis adapter %s: connection lost (%s); retrying in %.1fs", self.nsp.name, error, delay)
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001 - the connection is gone anyway
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        self._start()
        super().add_all(sid, rooms)

    def _publish(self, channel: str, payload: bytes | str) -> None:
        self._start()

        async def publish() -> None:
            for attempt in range(3):  # a pooled connection may be stale after a Redis restart
                try:
                    await self.client.publish(channel, payload)
                    return
                except (RedisError, OSError) as error:
                    if attempt == 2:
                        log.warning("redis adapter %s: publish failed: %s", self.nsp.name, error)
                        return
                    await asyncio.sleep(0.05 * (attempt + 1))

        spawn(publish())

    async def server_count(self) -> int:
        try:
            result = await self.client.pubsub_numsub(self.request_channel)
        except (RedisError, OSError):
            return 1
        return max(1, int(result[0][1])) if result else 1

    # -- incoming ----------------------------------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind not in ("message", "pmessage"):
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
        super().broadcast(codec.Packet(codec.EVENT, self.nsp.name, packet["data"]), options)

    def _opts(self, request: dict[str, Any]) -> BroadcastOptions:
        opts = request.get("opts") or {}
        return BroadcastOptions(rooms=_rooms(opts.get("rooms")), except_rooms=_rooms(opts.get("except")))

    def _respond(self, request: dict[str, Any], response: dict[str, Any], binary: bool = False) -> None:
        payload: bytes | str = msgpack.packb(response) if binary else _dumps(response)
        channel = self.response_channel
        if self.specific_response and request.get("uid"):
            channel = f"{self.response_channel}{request['uid']}#"
        self._publish(channel, payload)

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
        if kind == SOCKETS:
            sids = sorted(self.sockets(_rooms(request.get("rooms"))))
            self._respond(request, {"requestId": request_id, "sockets": sids})
        elif kind == ALL_ROOMS:
            self._respond(request, {"requestId": request_id, "rooms": list(self.rooms)})
        elif kind == REMOTE_FETCH:
            sockets = [self._describe(s) for s in self._select(self._opts(request))]
            self._respond(request, {"requestId": request_id, "sockets": sockets})
        elif kind == SERVER_SIDE_EMIT:
            self._on_server_side_emit(request)
        elif kind == BROADCAST:
            self._on_remote_broadcast_with_ack(request)

    def _describe(self, socket: Any) -> dict[str, Any]:
        handshake = socket.handshake.as_dict()
        return {"id": socket.id, "handshake": handshake, "rooms": sorted(socket.rooms), "data": socket.data}

    def _on_server_side_emit(self, request: dict[str, Any]) -> None:
        data = request.get("data") or []
        if not data:
            return
        event, args = data[0], data[1:]
        request_id = request.get("requestId")
        handler = self.nsp._server_handlers.get(event)
        if handler is None:
            return
        if request_id is None:
            call_user(handler, args, f"server-side {event}", "-")
            return

        def reply(result: Any) -> None:
            # The ack reply always goes to the shared response channel (as in Node).
            payload = _dumps({"type": SERVER_SIDE_EMIT, "requestId": request_id, "data": _plain(result)})
            self._publish(self.response_channel, payload)

        call_user(handler, args, f"server-side {event}", "-", reply)

    def _on_remote_broadcast_with_ack(self, request: dict[str, Any]) -> None:
        request_id = request["requestId"]
        packet = request["packet"]
        opts = request.get("opts") or {}
        options = BroadcastOptions(rooms=_rooms(opts.get("rooms")), except_rooms=_rooms(opts.get("except")))

        def on_count(count: int) -> None:
            self._respond(request, {"type": BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count})

        def on_ack(sid: str | None, response: Any) -> None:
            self._respond(
                request,
                {"type": BROADCAST_ACK, "requestId": request_id, "packet": _plain(response)},
                binary=True,
            )

        super().broadcast_with_ack(codec.Packet(codec.EVENT, self.nsp.name, packet["data"]), options, on_count, on_ack)

    def _on_response(self, response: dict[str, Any]) -> None:
        pending = self._pending.get(response.get("requestId", ""))
        if pending is None:
            return
        kind = pending.kind
        if kind == BROADCAST:
            if response.get("type") == BROADCAST_CLIENT_COUNT and pending.on_count is not None:
                pending.on_count(int(response.get("clientCount", 0)))
            elif response.get("type") == BROADCAST_ACK and pending.on_ack is not None:
                pending.on_ack(None, response.get("packet"))
            return
        if kind == REMOTE_FETCH:
            pending.responses.extend(response.get("sockets") or [])
        elif kind == ALL_ROOMS:
            pending.responses.extend(response.get("rooms") or [])
        elif kind == SERVER_SIDE_EMIT:
            pending.responses.append(response.get("data"))
        pending.expected -= 1
        if pending.expected <= 0 and not pending.future.done():
            pending.future.set_result(pending.responses)

    # -- outgoing: the adapter interface ---------------------------------------------

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        if not opts.local:
            channel = self.channel
            if len(opts.rooms) == 1:
                channel += next(iter(opts.rooms)) + "#"
            self._publish(channel, encode_broadcast(self.uid, self.nsp.name, packet.data, opts))
        super().broadcast(packet, opts)

    def broadcast_with_ack(
        self,
        packet: codec.Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> list[str]:
        reached = super().broadcast_with_ack(packet, opts, client_count, on_ack, on_gone)
        if opts.local:
            return reached
        request_id = uid()
        pending = _Pending(BROADCAST, 0)
        pending.on_count = client_count
        pending.on_ack = on_ack
        self._pending[request_id] = pending
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
        self._publish(self.request_channel, msgpack.packb(request))
        lifetime = opts.timeout if opts.timeout is not None else self.requests_timeout
        asyncio.get_running_loop().call_later(lifetime + 1, self._pending.pop, request_id, None)
        return reached

    async def _request(self, kind: int, request: dict[str, Any]) -> list[Any]:
        """Publish a request and gather one answer per other server, re-counting servers while
        waiting so a node that dies does not hold the request to its full timeout."""
        expected = await self.server_count() - 1
        if expected <= 0:
            return []
        request_id = uid()
        pending = _Pending(kind, expected)
        self._pending[request_id] = pending
        self._publish(self.request_channel, _dumps({"uid": self.uid, "requestId": request_id, **request}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.requests_timeout
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ClusterTimeout(f"timeout reached while waiting for responses to request type {kind}")
                try:
                    return await asyncio.wait_for(asyncio.shield(pending.future), min(0.5, remaining))
                except asyncio.TimeoutError:
                    servers = await self.server_count() - 1
                    answered = expected - pending.expected
                    if servers <= answered:  # the missing ones left the cluster
                        return pending.responses
        finally:
            self._pending.pop(request_id, None)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local = list(self._select(opts))
        if opts.local:
            return local
        request = {
            "type": REMOTE_FETCH,
            "opts": {"rooms": list(opts.rooms), "except": list(opts.except_rooms)},
        }
        remote = await self._request(REMOTE_FETCH, request)
        return local + [RemoteSocket(self, details) for details in remote]

    async def all_rooms(self) -> set[str]:
        """Every room of the namespace across the cluster."""
        rooms = set(self.rooms)
        rooms.update(await self._request(ALL_ROOMS, {"type": ALL_ROOMS}))
        return rooms

    def _remote(self, kind: int, opts: BroadcastOptions, **fields: Any) -> None:
        request = {
            "uid": self.uid,
            "type": kind,
            "opts": {"rooms": list(opts.rooms), "except": list(opts.except_rooms)},
        }
        request.update(fields)
        # Not applied here: every node applies it when Redis delivers it, this one included.
        self._publish(self.request_channel, _dumps(request))

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
            self._publish(
                self.request_channel,
                _dumps({"uid": self.uid, "type": SERVER_SIDE_EMIT, "data": _plain(args)}),
            )
            return

        async def with_ack() -> None:
            try:
                responses = await self._request(SERVER_SIDE_EMIT, {"type": SERVER_SIDE_EMIT, "data": _plain(args)})
            except ClusterTimeout as error:
                on_ack(error, [])
                return
            on_ack(None, responses)

        spawn(with_ack())


def redis_adapter(
    url: str = "redis://127.0.0.1:6379/0",
    key: str = "socket.io",
    requests_timeout: float = 5.0,
    publish_on_specific_response_channel: bool = False,
    client: aioredis.Redis | None = None,
) -> Callable[[Namespace], RedisAdapter]:
    """The ``adapter=`` argument of :class:`~tornad_io.Server` for a Redis cluster."""
    shared: list[aioredis.Redis] = [client] if client is not None else []

    def make(nsp: Namespace) -> RedisAdapter:
        if not shared:
            shared.append(aioredis.Redis.from_url(url))
        return RedisAdapter(nsp, shared[0], key, requests_timeout, publish_on_specific_response_channel)

    return make


# -- the sharded variant (createShardedAdapter: Redis 7 sharded pub/sub, ClusterAdapter envelope) --------

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


class ShardedRedisAdapter(Adapter):
    """The sharded format (Node's ``createShardedAdapter``, Redis ≥ 7): ``SSUBSCRIBE``/``SPUBLISH``,
    envelopes ``{type, data, uid, nsp}`` in JSON (msgpack when they carry binary), one channel per
    public room, responses on ``<key>#<nsp>#<uid>#``, servers counted with ``PUBSUB SHARDNUMSUB``."""

    def __init__(self, nsp: Namespace, client: aioredis.Redis, key: str = "socket.io", requests_timeout: float = 5.0):
        super().__init__(nsp)
        self.client = client
        self.uid = _hex_id()
        self.requests_timeout = requests_timeout
        self.channel = f"{key}#{nsp.name}#"
        self.own_channel = f"{self.channel}{self.uid}#"
        self._pending: dict[str, _Pending] = {}
        self._pubsub: Any = None
        self._ready = asyncio.Event()
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            self._start()

    def _start(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = spawn(self._listen())

    async def init(self) -> None:
        self._start()
        await self._ready.wait()

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()

    def _room_channels(self) -> list[str]:
        return [f"{self.channel}{room}#" for room in self.rooms if len(room) != _PRIVATE_ROOM_LENGTH]

    async def _listen(self) -> None:
        delay = 0.1
        while not self._closed:
            pubsub = self.client.pubsub()
            self._pubsub = pubsub
            try:
                await pubsub.ssubscribe(self.channel, self.own_channel, *self._room_channels())
                if delay > 0.1:
                    log.warning("sharded redis adapter %s: reconnected and subscribed again", self.nsp.name)
                delay = 0.1
                self._ready.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._on_message(message)
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except (RedisError, OSError) as error:
                self._ready.clear()
                self._pubsub = None
                log.warning("sharded redis adapter %s: connection lost (%s); retrying", self.nsp.name, error)
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

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

    def _publish(self, channel: str, envelope: dict[str, Any]) -> None:
        self._start()
        payload: bytes | str
        payload = msgpack.packb(envelope) if codec.has_binary(envelope["data"]) else _dumps(envelope)

        async def publish() -> None:
            for attempt in range(3):
                try:
                    await self.client.spublish(channel, payload)
                    return
                except (RedisError, OSError) as error:
                    if attempt == 2:
                        log.warning("sharded redis adapter %s: publish failed: %s", self.nsp.name, error)
                        return
                    await asyncio.sleep(0.05 * (attempt + 1))

        spawn(publish())

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
            packet = codec.Packet(codec.EVENT, self.nsp.name, data["packet"]["data"])
            request_id = data.get("requestId")
            if request_id is None:
                super().broadcast(packet, opts)
                return

            def on_count(count: int) -> None:
                self._reply(sender, S_BROADCAST_CLIENT_COUNT, {"requestId": request_id, "clientCount": count})

            def on_ack(sid: str | None, response: Any) -> None:
                self._reply(sender, S_BROADCAST_ACK, {"requestId": request_id, "packet": _plain(response)})

            super().broadcast_with_ack(packet, opts, on_count, on_ack)
        elif kind == S_SOCKETS_JOIN:
            super().add_sockets(opts, _rooms(data.get("rooms")))
        elif kind == S_SOCKETS_LEAVE:
            super().del_sockets(opts, _rooms(data.get("rooms")))
        elif kind == S_DISCONNECT_SOCKETS:
            super().disconnect_sockets(opts, bool(data.get("close")))
        elif kind == S_FETCH_SOCKETS:
            sockets = [
                {"id": s.id, "handshake": s.handshake.as_dict(), "rooms": sorted(s.rooms), "data": s.data}
                for s in self._select(opts)
            ]
            self._reply(sender, S_FETCH_SOCKETS_RESPONSE, {"requestId": data["requestId"], "sockets": sockets})
        elif kind == S_SERVER_SIDE_EMIT:
            self._on_server_side_emit(sender, data)
        elif kind in (S_FETCH_SOCKETS_RESPONSE, S_SERVER_SIDE_EMIT_RESPONSE):
            pending = self._pending.get(data.get("requestId", ""))
            if pending is None:
                return
            if kind == S_FETCH_SOCKETS_RESPONSE:
                pending.responses.extend(data.get("sockets") or [])
            else:
                pending.responses.append(data.get("packet"))
            pending.expected -= 1
            if pending.expected <= 0 and not pending.future.done():
                pending.future.set_result(pending.responses)
        elif kind in (S_BROADCAST_CLIENT_COUNT, S_BROADCAST_ACK):
            pending = self._pending.get(data.get("requestId", ""))
            if pending is None:
                return
            if kind == S_BROADCAST_CLIENT_COUNT and pending.on_count is not None:
                pending.on_count(int(data.get("clientCount", 0)))
            elif kind == S_BROADCAST_ACK and pending.on_ack is not None:
                pending.on_ack(None, data.get("packet"))

    def _on_server_side_emit(self, sender: str, data: dict[str, Any]) -> None:
        packet = data.get("packet") or []
        if not packet:
            return
        handler = self.nsp._server_handlers.get(packet[0])
        if handler is None:
            return
        request_id = data.get("requestId")
        if request_id is None:
            call_user(handler, packet[1:], f"server-side {packet[0]}", "-")
            return

        def reply(result: Any) -> None:
            self._reply(sender, S_SERVER_SIDE_EMIT_RESPONSE, {"requestId": request_id, "packet": _plain(result)})

        call_user(handler, packet[1:], f"server-side {packet[0]}", "-", reply)

    # the adapter interface

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        if not opts.local:
            channel = self.channel
            if len(opts.rooms) == 1:
                room = next(iter(opts.rooms))
                if len(room) != _PRIVATE_ROOM_LENGTH:
                    channel = f"{self.channel}{room}#"
            data = {"packet": {"type": codec.EVENT, "data": _plain(packet.data)}, "opts": _opts_dict(opts)}
            self._publish(channel, self._envelope(S_BROADCAST, data))
        super().broadcast(packet, opts)

    def broadcast_with_ack(
        self,
        packet: codec.Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> list[str]:
        reached = super().broadcast_with_ack(packet, opts, client_count, on_ack, on_gone)
        if opts.local:
            return reached
        request_id = _hex_id()
        pending = _Pending(S_BROADCAST, 0)
        pending.on_count = client_count
        pending.on_ack = on_ack
        self._pending[request_id] = pending
        data = {
            "packet": {"type": codec.EVENT, "data": _plain(packet.data)},
            "opts": _opts_dict(opts),
            "requestId": request_id,
        }
        self._publish(self.channel, self._envelope(S_BROADCAST, data))
        lifetime = opts.timeout if opts.timeout is not None else self.requests_timeout
        asyncio.get_running_loop().call_later(lifetime + 1, self._pending.pop, request_id, None)
        return reached

    async def _request(self, kind: int, data: dict[str, Any]) -> list[Any]:
        expected = await self.server_count() - 1
        if expected <= 0:
            return []
        request_id = _hex_id()
        pending = _Pending(kind, expected)
        self._pending[request_id] = pending
        self._publish(self.channel, self._envelope(kind, {**data, "requestId": request_id}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.requests_timeout
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ClusterTimeout(f"timeout reached while waiting for responses to request type {kind}")
                try:
                    return await asyncio.wait_for(asyncio.shield(pending.future), min(0.5, remaining))
                except asyncio.TimeoutError:
                    if await self.server_count() - 1 <= expected - pending.expected:
                        return pending.responses
        finally:
            self._pending.pop(request_id, None)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local = list(self._select(opts))
        if opts.local:
            return local
        remote = await self._request(S_FETCH_SOCKETS, {"opts": _opts_dict(opts)})
        return local + [RemoteSocket(self, details) for details in remote]

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
            return

        async def with_ack() -> None:
            try:
                responses = await self._request(S_SERVER_SIDE_EMIT, {"packet": _plain(args)})
            except ClusterTimeout as error:
                on_ack(error, [])
                return
            on_ack(None, responses)

        spawn(with_ack())


def sharded_redis_adapter(
    url: str = "redis://127.0.0.1:6379/0",
    key: str = "socket.io",
    requests_timeout: float = 5.0,
    client: aioredis.Redis | None = None,
) -> Callable[[Namespace], ShardedRedisAdapter]:
    """The ``adapter=`` argument of :class:`~tornad_io.Server` for a sharded (Redis 7) cluster."""
    shared: list[aioredis.Redis] = [client] if client is not None else []

    def make(nsp: Namespace) -> ShardedRedisAdapter:
        if not shared:
            shared.append(aioredis.Redis.from_url(url))
        return ShardedRedisAdapter(nsp, shared[0], key, requests_timeout)

    return make
