"""Requests for another node's sessions, forwarded to that node: no sticky load balancer needed.

Every node of a cluster (``serve(app, port, advertise="10.0.0.5:8000")`` with a
Redis, sharded Redis or Redis Streams adapter) starts its session ids with its
*tag* (:class:`~tornad_io._worker.Node`) and announces ``tag -> address, token``
in a :class:`NodeDirectory` kept in the cluster's Redis, with an expiry that it
refreshes. A connection whose request line names a session of another node is
*spliced* to that node: this node opens a TCP connection to the address the
directory gives, sends one line naming itself (the owner's token, and the
address of the peer it accepted), then relays bytes both ways until either side
closes. Nothing is parsed or rewritten, so every transport works the same way
(polling, JSONP, 0.6 streaming, the WebSocket upgrade and everything after it).
Responses carry ``Connection: close`` on forwarding nodes, so the next request
of a client is looked at again on a new connection.

Trust: a client chooses only a tag, never an address; addresses come from the
directory, that is from the cluster's Redis. The owner accepts a forwarded
connection only with its own token, which only the directory holds, so a
client cannot pose as a node either (and then choose the address it is seen
at). A node that is gone (no directory entry, or its address refuses or does
not answer within ``connect_timeout``) is remembered as gone for a while, and
requests for its sessions are answered here at once with the reference's
``Session ID unknown``: the client reconnects, through the balancer, elsewhere.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import socket
import string
import time
from typing import Any, Callable, Protocol

from ._logsafe import safe_repr
from ._worker import TAG_LENGTH, Node

log = logging.getLogger("tornad_io.forwarding")

#: The first bytes of the line a forwarding node sends before the client's bytes.
PREAMBLE = b"TIO-FORWARD/1 "
_PREAMBLE_MAX = 512
#: The most node records a forwarder remembers (live, gone or unknown); tags are client-chosen, so
#: the cache is bounded: past this, expired entries go, then unknown ones.
CACHE_MAX = 1024
_TAG_ALPHABET = string.digits + string.ascii_letters


def new_node() -> Node:
    """A fresh node identity: a random tag and a random forwarding token."""
    tag = "".join(secrets.choice(_TAG_ALPHABET) for _ in range(TAG_LENGTH))
    return Node(tag, secrets.token_hex(16))


class NodeDirectory(Protocol):
    """Where the nodes of a cluster find each other's addresses (the cluster's Redis)."""

    async def announce(self, tag: str, record: str, ttl: float) -> None:
        """Publish *record* under *tag* for *ttl* seconds (announced again before it expires)."""

    async def lookup(self, tag: str) -> str | None:
        """The record of the node *tag*, or None if no live node has it."""

    async def withdraw(self, tag: str) -> None:
        """Remove the node *tag* (it is stopping)."""


class RedisNodeDirectory:
    """A :class:`NodeDirectory` in Redis: one key per node, ``<prefix>#tornad_io#node#<tag>``, with an expiry."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, tag: str) -> str:
        return f"{self.prefix}#tornad_io#node#{tag}"

    async def announce(self, tag: str, record: str, ttl: float) -> None:
        """``SET key record PX ttl``."""
        await self.client.set(self._key(tag), record, px=max(1, int(ttl * 1000)))

    async def lookup(self, tag: str) -> str | None:
        """``GET key``."""
        value = await self.client.get(self._key(tag))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def withdraw(self, tag: str) -> None:
        """``DEL key``."""
        await self.client.delete(self._key(tag))


def parse_address(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``, or a bare host with *default_port*) as a pair."""
    host, sep, port = text.rpartition(":")
    if not sep or (host.count(":") and not host.endswith("]")):  # no port, or a bare IPv6 address
        if default_port is None:
            raise ValueError(f"an address needs a port: {text!r}")
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not an address: {text!r}")
    return host, int(port)


class Record:
    """A node's directory entry: where to reach it and the token it expects."""

    __slots__ = ("host", "port", "token")

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self.token = token

    def encode(self) -> str:
        """As stored in the directory: ``host port token``."""
        return f"{self.host} {self.port} {self.token}"

    @classmethod
    def decode(cls, text: str) -> Record | None:
        """The record stored as *text*, or None if it is not one."""
        parts = text.split(" ")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])


def preamble(token: str, address: Any) -> bytes:
    """The line sent to the owner before the client's bytes: its token and the accepted peer's address."""
    host, port = (address[0], address[1]) if isinstance(address, tuple) and len(address) >= 2 else ("", 0)
    return PREAMBLE + f"{token} {host} {int(port)}\r\n".encode()


def read_preamble(head: bytes, token: str) -> tuple[int, tuple[str, int]] | None:
    """The length of the forwarding line at the start of *head* and the peer address it names,
    or None if the line is malformed or the token is not *token* (the connection is then refused)."""
    end = head.find(b"\n", 0, _PREAMBLE_MAX)
    if end < 0:
        return None
    try:
        given, host, port = head[len(PREAMBLE) : end].decode("ascii").strip().split(" ")
        address = (host, int(port))
    except (UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given.encode(), token.encode()):
        return None
    return end + 1, address


def preamble_complete(head: bytes) -> bool:
    """Whether *head*, which starts like a forwarding line, holds that line and the request line after it."""
    end = head.find(b"\n")
    return end >= 0 and head.find(b"\n", end + 1) >= 0


class Forwarder:
    """This node's side of forwarding: announcing itself, finding owners, splicing connections.

    Made by :func:`tornad_io.serve` in each worker when it is given ``advertise``.
    """

    def __init__(
        self,
        directory: NodeDirectory,
        node: Node,
        address: tuple[str, int],
        ttl: float = 15.0,
        connect_timeout: float = 1.0,
        gone_for: float = 30.0,
        cache_for: float = 5.0,
    ) -> None:
        self.directory = directory
        self.node = node
        self.address = address
        self.ttl = ttl
        self.connect_timeout = connect_timeout
        self.gone_for = gone_for
        self.cache_for = cache_for
        #: Connections forwarded to another node so far, and those answered here because the owner was gone.
        self.forwarded = 0
        self.owner_gone = 0
        self._cache: dict[str, tuple[Record | None, float]] = {}
        self._pending: dict[str, asyncio.Future[Record | None]] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._splices: set[_Splice] = set()

    @property
    def record(self) -> Record:
        """This node's own directory entry."""
        return Record(self.address[0], self.address[1], self.node.token)

    async def start(self) -> None:
        """Announce this node, and keep announcing it every third of the expiry."""
        await self.directory.announce(self.node.tag, self.record.encode(), self.ttl)
        self._refresh = asyncio.ensure_future(self._keep_announcing())

    async def _keep_announcing(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.directory.announce(self.node.tag, self.record.encode(), self.ttl)
            except Exception as error:  # noqa: BLE001 - Redis away for a while: try again next time
                log.warning("node %s: cannot announce itself: %s", self.node.tag, error)

    async def stop(self) -> None:
        """Stop announcing and withdraw this node (its sessions are then answered as unknown elsewhere)."""
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        try:
            await asyncio.wait_for(self.directory.withdraw(self.node.tag), 2.0)
        except Exception as error:  # noqa: BLE001 - the entry expires by itself
            log.info("node %s: cannot withdraw itself: %s", self.node.tag, error)
        for splice in list(self._splices):
            splice.close()

    async def resolve(self, tag: str) -> Record | None:
        """The record of node *tag*: from the cache, else from the directory (one lookup at a time per tag)."""
        now = time.monotonic()
        cached = self._cache.get(tag)
        if cached is not None and cached[1] > now:
            return cached[0]
        pending = self._pending.get(tag)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Record | None] = asyncio.get_running_loop().create_future()
        self._pending[tag] = future
        try:
            try:
                text = await asyncio.wait_for(self.directory.lookup(tag), self.connect_timeout)
            except Exception as error:  # noqa: BLE001 - no directory: treat the owner as unknown, briefly
                log.warning("node %s: cannot look up node %s: %s", self.node.tag, safe_repr(tag), error)
                text = None
            record = Record.decode(text) if text is not None else None
            self._remember(tag, record, now + (self.cache_for if record is not None else 1.0))
            future.set_result(record)
            return record
        finally:
            del self._pending[tag]
            if not future.done():  # pragma: no cover - cancelled
                future.cancel()

    def gone(self, tag: str) -> None:
        """Remember node *tag* as gone: its sessions are answered here for ``gone_for`` seconds."""
        self._remember(tag, None, time.monotonic() + self.gone_for)

    def _remember(self, tag: str, record: Record | None, until: float) -> None:
        cache = self._cache
        if len(cache) >= CACHE_MAX and tag not in cache:
            now = time.monotonic()
            for key in [k for k, (_, expires) in cache.items() if expires <= now]:
                del cache[key]
            if len(cache) >= CACHE_MAX:  # a client inventing tags: forget the unknown ones first
                for key in [k for k, (found, _) in cache.items() if found is None]:
                    del cache[key]
            if len(cache) >= CACHE_MAX:
                cache.clear()
        cache[tag] = (record, until)

    def forward(
        self,
        connection: socket.socket,
        address: Any,
        tag: str,
        local: Callable[[socket.socket, Any], None],
        head: bytes = b"",
    ) -> None:
        """Splice *connection* (accepted from *address*, nothing read yet; *head* is what a peek
        saw of it) to node *tag*; if that node is unknown or gone, serve it with *local* (which
        answers ``Session ID unknown``)."""
        asyncio.ensure_future(self._forward(connection, address, tag, local, head))

    async def _forward(
        self,
        connection: socket.socket,
        address: Any,
        tag: str,
        local: Callable[[socket.socket, Any], None],
        head: bytes,
    ) -> None:
        record = await self.resolve(tag)
        if record is None:
            self.owner_gone += 1
            local(connection, address)
            return
        loop = asyncio.get_running_loop()
        splice = _Splice(self)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: splice.upstream, record.host, record.port), self.connect_timeout
            )
        except (OSError, asyncio.TimeoutError) as error:
            log.info("node %s: node %s at %s:%d is gone (%s)", self.node.tag, tag, record.host, record.port, error)
            self.gone(tag)
            self.owner_gone += 1
            local(connection, address)
            return
        self.forwarded += 1
        assert splice.upstream.transport is not None
        first = b""
        if head:  # the bytes a peek saw, sent with the forwarding line: the owner reads both at once
            try:
                first = connection.recv(len(head))
            except OSError:
                first = b""
        splice.upstream.transport.write(preamble(record.token, address) + first)
        try:
            await loop.connect_accepted_socket(lambda: splice.downstream, sock=connection)
        except OSError:  # pragma: no cover - the client left at this very moment
            splice.close()
            connection.close()


class _Pipe(asyncio.Protocol):
    """One side of a :class:`_Splice`: what it receives is written to the other side."""

    def __init__(self, splice: _Splice) -> None:
        self.splice = splice
        self.transport: asyncio.Transport | None = None
        self.other: _Pipe | None = None
        self.buffered: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        other = self.other
        assert other is not None
        if other.transport is None:  # the client spoke before its side was wrapped: keep it for then
            other.buffered.append(data)
        else:
            other.transport.write(data)

    def eof_received(self) -> bool:
        other = self.other
        assert other is not None
        if other.transport is not None and not other.transport.is_closing() and other.transport.can_write_eof():
            other.transport.write_eof()
        return True  # keep the other direction open until that side closes

    def connection_lost(self, exc: Exception | None) -> None:
        other = self.other
        assert other is not None
        if other.transport is not None:
            other.transport.close()  # after what it still has to write
        self.splice.lost(self)

    def pause_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.resume_reading()


class _Splice:
    """A client connection and its connection to the owner node, relaying bytes both ways."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.upstream = _Pipe(self)
        self.downstream = _DownstreamPipe(self)
        self.upstream.other = self.downstream
        self.downstream.other = self.upstream
        self._open = 2
        forwarder._splices.add(self)

    def lost(self, _pipe: _Pipe) -> None:
        self._open -= 1
        if self._open <= 0:
            self.forwarder._splices.discard(self)

    def close(self) -> None:
        for pipe in (self.upstream, self.downstream):
            if pipe.transport is not None:
                pipe.transport.close()
        self.forwarder._splices.discard(self)


class _DownstreamPipe(_Pipe):
    """The client's side: once wrapped, it passes on what the owner sent before it was ready."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        for data in self.buffered:
            self.transport.write(data)
        self.buffered.clear()
        upstream = self.other
        if upstream is not None and upstream.transport is not None and upstream.transport.is_closing():
            self.transport.close()
