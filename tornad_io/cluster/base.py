"""What the Redis adapters share: the connection life cycle, the cluster semantics, remote-socket proxies.

:class:`RedisAdapterBase` keeps the subscription alive, publishes with retries, and holds
what a broadcast with acknowledgements, a request that gathers one answer per server,
a remote fetch and a server-side emit *mean*. Each wire format (:mod:`.classic`,
:mod:`.sharded`) supplies only how those are written on Redis and read back, through
the ``_encode_*`` and ``_reply_*`` methods listed in the class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, Iterable, TypeVar

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import RedisError

from .._usercode import call_user, spawn
from ..adapter import Adapter, BroadcastOptions, FetchedSocket, RemoteHandshake
from ..exceptions import ClusterConnectionError, ClusterTimeout
from ..forwarding import RedisNodeDirectory
from ..recovery import carries_offset, deliver_with_offset
from ..socketio import codec

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace
    from ..socketio.socket import Socket

log = logging.getLogger("tornad_io.redis")

_UID_CHARS = string.ascii_letters + string.digits + "_-"


def _dumps(value: Any) -> str:
    """Compact JSON, as Node's JSON.stringify writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def uid() -> str:
    """A 6-character node or request id, like Node's ``uid2(6)``."""
    return "".join(secrets.choice(_UID_CHARS) for _ in range(6))


def redis_location(client: aioredis.Redis) -> str:
    """Where *client* connects, as a URL without credentials (for messages)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    scheme = "rediss" if issubclass(client.connection_pool.connection_class, SSLConnection) else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _plain(value: Any) -> Any:
    """Tuples as lists, sets as lists: what msgpack and JSON take."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def decode_message(payload: bytes) -> Any:
    """A request or response: JSON when it starts with ``{``, msgpack otherwise (as Node sniffs)."""
    if payload[:1] == b"{":
        return json.loads(payload)
    return msgpack.unpackb(payload, raw=False)


def _rooms(values: Iterable[Any] | None) -> frozenset[str]:
    return frozenset(str(v) for v in values or ())


class RemoteSocket:
    """A socket on another server, as ``fetch_sockets()`` returns it.

    ``id``, ``handshake``, ``rooms`` and ``data`` are what the other server
    reported when asked; :meth:`emit`, :meth:`join`, :meth:`leave` and
    :meth:`disconnect` reach the socket through the cluster. It offers what a
    local :class:`~tornad_io.Socket` offers of :class:`~tornad_io.FetchedSocket`.
    """

    def __init__(self, adapter: Adapter, details: dict[str, Any]) -> None:
        self._adapter = adapter
        #: The socket's id.
        self.id: str = details["id"]
        #: Its handshake, readable as a dict or by attribute like a local one.
        self.handshake: RemoteHandshake = RemoteHandshake(details.get("handshake") or {})
        #: The rooms it was in when fetched (a copy).
        self.rooms: set[str] = set(details.get("rooms", ()))
        #: Its ``socket.data`` when fetched (a copy).
        self.data: Any = details.get("data")

    def __repr__(self) -> str:
        return f"<RemoteSocket {self.id}>"

    def _only_me(self) -> BroadcastOptions:
        return BroadcastOptions(rooms=frozenset((self.id,)))

    def emit(self, event: str, *args: Any) -> bool:
        """Send *event* to this socket's client, through the cluster (no acknowledgement)."""
        self._adapter.broadcast(codec.Packet(codec.EVENT, self._adapter.nsp.name, [event, *args]), self._only_me())
        return True

    def join(self, rooms: str | Iterable[str]) -> None:
        """Make the socket join one room or several, on its server."""
        self._adapter.add_sockets(self._only_me(), [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        """Make the socket leave *room*, on its server."""
        self._adapter.del_sockets(self._only_me(), [room])

    def disconnect(self, close: bool = False) -> None:
        """Disconnect the socket (and its whole connection if *close*), on its server."""
        self._adapter.disconnect_sockets(self._only_me(), close)


class Pending:
    """A request waiting for answers from the other servers."""

    __slots__ = ("kind", "expected", "responses", "future", "on_count", "on_ack")

    def __init__(self, kind: int, expected: int) -> None:
        self.kind = kind
        self.expected = expected
        self.responses: list[Any] = []
        self.future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.on_count: Callable[[int], None] | None = None
        self.on_ack: Callable[[str | None, Any], None] | None = None


class _RemoteAckReplies:
    """Answers another server's broadcast with acknowledgements: the local client count, then each local ack."""

    __slots__ = ("adapter", "requester", "request_id")

    def __init__(self, adapter: RedisAdapterBase, requester: str | None, request_id: str) -> None:
        self.adapter = adapter
        self.requester = requester
        self.request_id = request_id

    def client_count(self, count: int) -> None:
        self.adapter._reply_client_count(self.requester, self.request_id, count)

    def ack(self, sid: str | None, response: Any) -> None:
        self.adapter._reply_broadcast_ack(self.requester, self.request_id, response)


class RedisAdapterBase(Adapter):
    """The in-memory adapter plus a Redis subscription kept alive, publishing with retries, and
    the cluster semantics of Node's ``ClusterAdapter``: broadcasts (with acknowledgements),
    requests that gather one answer per other server, remote fetch and server-side emit.

    A wire format subclasses it and supplies the subscription (``_subscribe``,
    ``_publish_command``, ``_on_message``), new request ids (``_new_request_id``), the
    encoded messages (``_encode_broadcast``, ``_encode_broadcast_with_ack``,
    ``_encode_request``), the replies to other servers' requests
    (``_reply_client_count``, ``_reply_broadcast_ack``, ``_reply_server_side_emit``)
    and the remote part of a fetch (``_fetch_remote``).
    """

    #: How the adapter names itself in log messages.
    label = "redis adapter"

    def __init__(
        self, nsp: Namespace, client: aioredis.Redis, requests_timeout: float, connect_timeout: float = 10.0
    ) -> None:
        super().__init__(nsp)
        #: The redis-py asyncio client, shared by the namespaces of one factory.
        self.client = client
        #: Seconds a request to the other servers (fetch, server-side emit) waits for their answers.
        self.requests_timeout = requests_timeout
        #: Seconds :meth:`init` waits for the subscription before it raises :exc:`ClusterConnectionError`.
        self.connect_timeout = connect_timeout
        self._connected_once = False
        self._last_error: BaseException | None = None
        self._pending: dict[str, Pending] = {}
        self._ready = asyncio.Event()
        self._closed = False
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # created before the loop runs: started on first use
        else:
            self._start()

    # -- what a format provides ----------------------------------------------------

    async def _subscribe(self, pubsub: Any) -> None:
        raise NotImplementedError

    async def _publish_command(self, channel: str, payload: bytes | str) -> None:
        raise NotImplementedError

    def _on_message(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def _new_request_id(self) -> str:
        raise NotImplementedError

    def _encode_broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> tuple[str, bytes | str]:
        """The channel and payload that carry a broadcast to the other servers."""
        raise NotImplementedError

    def _encode_broadcast_with_ack(
        self, request_id: str, packet: codec.Packet, opts: BroadcastOptions
    ) -> tuple[str, bytes | str]:
        """The channel and payload of a broadcast that asks the other servers for acknowledgements."""
        raise NotImplementedError

    def _encode_request(self, request_id: str, kind: int, data: dict[str, Any]) -> tuple[str, bytes | str]:
        """The channel and payload of a request of type *kind* that gathers one answer per server."""
        raise NotImplementedError

    def _reply_client_count(self, requester: str | None, request_id: str, count: int) -> None:
        raise NotImplementedError

    def _reply_broadcast_ack(self, requester: str | None, request_id: str, response: Any) -> None:
        raise NotImplementedError

    def _reply_server_side_emit(self, requester: str | None, request_id: str, result: Any) -> None:
        raise NotImplementedError

    async def _fetch_remote(self, opts: BroadcastOptions) -> list[Any]:
        """The descriptions (see :meth:`_describe`) of the other servers' sockets that *opts* selects."""
        raise NotImplementedError

    # -- the connection ------------------------------------------------------------

    def _start(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = spawn(self._listen())

    async def init(self) -> None:
        """Wait until the subscriptions are in place.

        Raises :exc:`ClusterConnectionError`, naming the Redis server, when
        they are not within :attr:`connect_timeout` seconds.
        """
        self._start()
        if self._ready.is_set():
            return
        try:
            await asyncio.wait_for(self._ready.wait(), self.connect_timeout)
        except asyncio.TimeoutError:
            reason = f" (last error: {self._last_error})" if self._last_error is not None else ""
            raise ClusterConnectionError(
                f"{self.label} {self.nsp.name}: could not subscribe on Redis at {redis_location(self.client)} "
                f"within {self.connect_timeout:g} s{reason}"
            ) from None

    async def close(self) -> None:
        """Stop listening; requests still waiting fail with :class:`ClusterTimeout`."""
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
            self._pubsub = pubsub
            try:
                await self._subscribe(pubsub)
                if delay > 0.1 and self._connected_once:
                    self._connection_restored()
                delay = 0.1
                self._connected_once = True
                self._last_error = None
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
                self._last_error = error
                self._connection_lost(error, delay)
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001 - the connection is gone anyway
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _connection_lost(self, error: BaseException, delay: float) -> None:
        """The subscription failed with *error*; another attempt follows in *delay* seconds."""
        if self._connected_once:
            log.warning("%s %s: connection lost (%s); retrying in %.1fs", self.label, self.nsp.name, error, delay)
        else:
            log.warning(
                "%s %s: cannot connect to Redis at %s (%s); retrying in %.1fs",
                self.label,
                self.nsp.name,
                redis_location(self.client),
                error,
                delay,
            )

    def _connection_restored(self) -> None:
        """The subscription is in place again after a failure."""
        log.warning("%s %s: reconnected and subscribed again", self.label, self.nsp.name)

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        self._start()
        super().add_all(sid, rooms)

    def _send(self, channel: str, payload: bytes | str) -> None:
        """Publish in the background, retrying: a pooled connection may be stale after a Redis restart."""
        self._start()

        async def publish() -> None:
            for attempt in range(3):
                try:
                    await self._publish_command(channel, payload)
                    return
                except (RedisError, OSError) as error:
                    if attempt == 2:
                        log.warning("%s %s: publish failed: %s", self.label, self.nsp.name, error)
                        return
                    await asyncio.sleep(0.05 * (attempt + 1))

        spawn(publish())

    # -- the adapter interface ----------------------------------------------------------

    def broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> None:
        if not opts.local:
            self._send(*self._encode_broadcast(packet, opts))
        Adapter.broadcast(self, packet, opts)

    def broadcast_with_ack(
        self,
        packet: codec.Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> list[str]:
        reached = Adapter.broadcast_with_ack(self, packet, opts, client_count, on_ack, on_gone)
        if opts.local:
            return reached
        request_id = self._new_request_id()
        lifetime = opts.timeout if opts.timeout is not None else self.requests_timeout
        self._expect_acks(request_id, client_count, on_ack, lifetime)
        self._send(*self._encode_broadcast_with_ack(request_id, packet, opts))
        return reached

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[FetchedSocket]:
        local: list[FetchedSocket] = list(self.select(opts))
        if opts.local:
            return local
        remote = await self._fetch_remote(opts)
        return local + [RemoteSocket(self, details) for details in remote]

    # -- what other servers ask ----------------------------------------------------

    def _deliver_remote_broadcast(self, data: list[Any], opts: BroadcastOptions, offset: str | None = None) -> None:
        """Deliver another server's broadcast to the local sockets (and publish nothing).

        *offset* is where the cluster transport keeps the message, when it keeps
        messages (Redis Streams): with connection state recovery on, an event that
        :func:`~tornad_io.recovery.carries_offset` gets it as its last argument, for
        the clients that can recover, as on the server that sent it.
        """
        packet = codec.Packet(codec.EVENT, self.nsp.name, data)
        if offset is not None and self.nsp.server.options.recovery is not None and carries_offset(packet, opts):
            deliver_with_offset(self, packet, opts, offset)
        else:
            Adapter.broadcast(self, packet, opts)

    def _answer_broadcast_with_ack(
        self, requester: str | None, request_id: str, data: list[Any], opts: BroadcastOptions
    ) -> None:
        """Deliver another server's broadcast with acknowledgements to the local sockets, and
        answer it with their count and then each acknowledgement."""
        replies = _RemoteAckReplies(self, requester, request_id)
        packet = codec.Packet(codec.EVENT, self.nsp.name, data)
        Adapter.broadcast_with_ack(self, packet, opts, replies.client_count, replies.ack)

    def _answer_server_side_emit(self, requester: str | None, request_id: str | None, data: list[Any]) -> None:
        """Run the handler of a server-side emit ``[event, *args]``; answer it if it asks for an ack."""
        if not data:
            return
        event, args = data[0], data[1:]
        handler = self.nsp.server_side_handler(event)
        if handler is None:
            return
        what = f"server-side {event}"
        if request_id is None:
            call_user(handler, args, what, "-")
            return

        def reply(result: Any) -> None:
            self._reply_server_side_emit(requester, request_id, result)

        call_user(handler, args, what, "-", reply)

    @staticmethod
    def _describe(socket: Socket) -> dict[str, Any]:
        """A local socket as a fetch answer carries it (what :class:`RemoteSocket` is built from)."""
        return {
            "id": socket.id,
            "handshake": socket.handshake.as_dict(),
            "rooms": sorted(socket.rooms),
            "data": socket.data,
        }

    # -- requests ----------------------------------------------------------------

    async def _request(self, kind: int, data: dict[str, Any]) -> list[Any]:
        """Send a request of type *kind* and gather the other servers' answers."""
        request_id = self._new_request_id()
        channel, payload = self._encode_request(request_id, kind, data)
        return await self._gather(kind, request_id, lambda: self._send(channel, payload))

    async def _gather(self, kind: int, request_id: str, publish: Callable[[], None]) -> list[Any]:
        """Publish a request and gather one answer per other server, re-counting servers while
        waiting so a node that dies does not hold the request to its full timeout."""
        expected = await self.server_count() - 1
        if expected <= 0:
            return []
        pending = Pending(kind, expected)
        self._pending[request_id] = pending
        publish()
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
                        return pending.responses  # the missing ones left the cluster
        finally:
            self._pending.pop(request_id, None)

    def _answered(self, pending: Pending, responses: Iterable[Any]) -> None:
        pending.responses.extend(responses)
        pending.expected -= 1
        if pending.expected <= 0 and not pending.future.done():
            pending.future.set_result(pending.responses)

    def _expect_acks(
        self,
        request_id: str,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        lifetime: float,
    ) -> None:
        """Route the client counts and acks of a broadcast with ack back to its caller."""
        pending = Pending(0, 0)
        pending.on_count = client_count
        pending.on_ack = on_ack
        self._pending[request_id] = pending
        asyncio.get_running_loop().call_later(lifetime + 1, self._pending.pop, request_id, None)

    def _emit_with_ack(self, request: Awaitable[list[Any]], on_ack: Callable[..., None]) -> None:
        async def run() -> None:
            try:
                responses = await request
            except ClusterTimeout as error:
                on_ack(error, [])
                return
            on_ack(None, responses)

        spawn(run())


AdapterT = TypeVar("AdapterT", bound=RedisAdapterBase)


class _SharedClientFactory(Generic[AdapterT]):
    """The ``adapter=`` argument that :func:`~tornad_io.cluster.redis_adapter` and
    :func:`~tornad_io.cluster.sharded_redis_adapter` return: builds the adapter of each
    namespace with one redis-py client, the one given or one made from the URL on first use."""

    __slots__ = ("build", "url", "client", "given", "prefix")

    def __init__(
        self,
        build: Callable[[Namespace, aioredis.Redis], AdapterT],
        url: str,
        client: aioredis.Redis | None,
        prefix: str = "socket.io",
    ) -> None:
        self.build = build
        self.url = url
        self.client = client
        self.given = client is not None
        self.prefix = prefix

    def after_fork(self) -> None:
        """In a worker process just forked: a client made from the URL before the fork is made anew."""
        if not self.given:
            self.client = None

    def redis(self) -> aioredis.Redis:
        """The shared client (made from the URL on first use)."""
        if self.client is None:
            self.client = aioredis.Redis.from_url(self.url)
        return self.client

    def node_directory(self) -> RedisNodeDirectory:
        """Where the nodes of this cluster announce their addresses (forwarding, :func:`tornad_io.serve`)."""
        return RedisNodeDirectory(self.redis(), self.prefix)

    def __call__(self, nsp: Namespace) -> AdapterT:
        return self.build(nsp, self.redis())
