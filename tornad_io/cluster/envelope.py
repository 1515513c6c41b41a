"""Node's ``ClusterAdapter`` messages (``socket.io-adapter`` 2.5), shared by two wire formats.

The sharded format (:mod:`.sharded`) and the Redis Streams format (:mod:`.streams`)
both carry Node's envelope ``{type, data, uid, nsp}`` with the same message types
and the same ``data`` of each type; they differ in where an envelope travels and
how its bytes are written. :class:`EnvelopeAdapter` holds what they share: the
types, how options are written, the requests and replies, what an arriving
envelope means, and join, leave and disconnect applied here at once and sent to
the others. A format supplies :meth:`~EnvelopeAdapter._encode_envelope` (bytes of
an envelope on a channel) and :meth:`~EnvelopeAdapter._cluster_apply` (how a
join, leave or disconnect reaches the others), plus the subscription and the
plain broadcast of :class:`~tornad_io.cluster.RedisAdapterBase`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterable

import redis.asyncio as aioredis

from ..adapter import BroadcastOptions
from ..socketio import codec
from .base import RedisAdapterBase, _plain, _rooms

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace

# Node's MessageType (socket.io-adapter 2.5); 1, 2 and 13 are the heartbeats of
# ClusterAdapterWithHeartbeat, which neither format here sends.
BROADCAST, SOCKETS_JOIN, SOCKETS_LEAVE, DISCONNECT_SOCKETS = 3, 4, 5, 6
FETCH_SOCKETS, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE = 7, 8, 9, 10
BROADCAST_CLIENT_COUNT, BROADCAST_ACK = 11, 12


def hex_id() -> str:
    """A server or request id: 16 hexadecimal digits, like Node's ``randomBytes(8)``."""
    return secrets.token_hex(8)


def encode_options(opts: BroadcastOptions) -> dict[str, Any]:
    """``{rooms, except, flags}`` as Node's ``encodeOptions`` writes them (``local`` never travels).

    Rooms are sets here, so they are written sorted (Node writes them in insertion order).
    """
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    if not opts.compress:
        flags["compress"] = False
    if opts.timeout is not None:
        flags["timeout"] = int(opts.timeout * 1000)
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms), "flags": flags}


def decode_options(raw: Any) -> BroadcastOptions:
    """The options of an arriving message (what :func:`encode_options` wrote, or Node)."""
    raw = raw if isinstance(raw, dict) else {}
    flags = raw.get("flags") or {}
    return BroadcastOptions(
        rooms=_rooms(raw.get("rooms")),
        except_rooms=_rooms(raw.get("except")),
        volatile=bool(flags.get("volatile")),
        compress=flags.get("compress", True) is not False,
    )


def packet_dict(packet: codec.Packet) -> dict[str, Any]:
    """A packet as a broadcast message carries it: ``{type, data}``, plus ``id`` if it asks for an ack."""
    body: dict[str, Any] = {"type": codec.EVENT, "data": _plain(packet.data)}
    if packet.id is not None:
        body["id"] = packet.id
    return body


class EnvelopeAdapter(RedisAdapterBase):
    """The cluster semantics of Node's ``ClusterAdapter`` in its own messages
    ``{type, data, uid, nsp}``: requests on ``<prefix>#<nsp>#``, replies on the
    requester's ``<prefix>#<nsp>#<uid>#``.

    A format subclasses it and supplies ``_encode_envelope`` (the bytes of an
    envelope on a channel), ``_cluster_apply`` (how a join, leave or disconnect
    reaches the others), and what :class:`~tornad_io.cluster.RedisAdapterBase`
    asks of a format for the subscription and the plain broadcast.
    """

    def __init__(
        self,
        nsp: Namespace,
        client: aioredis.Redis,
        prefix: str,
        requests_timeout: float,
        connect_timeout: float,
    ) -> None:
        #: This server's id in the cluster (16 hexadecimal digits, like Node's).
        self.uid = hex_id()
        #: The namespace's channel (requests to every server).
        self.channel = f"{prefix}#{nsp.name}#"
        #: The channel of answers to this server.
        self.own_channel = f"{self.channel}{self.uid}#"
        super().__init__(nsp, client, requests_timeout, connect_timeout)

    # -- what a format provides ------------------------------------------------------

    def _encode_envelope(self, envelope: dict[str, Any]) -> bytes | str:
        """The bytes of *envelope* on a channel."""
        raise NotImplementedError

    def _cluster_apply(self, kind: int, data: dict[str, Any]) -> None:
        """Send a join, leave or disconnect (already applied here) to the other servers."""
        raise NotImplementedError

    # -- envelopes ---------------------------------------------------------------

    def _envelope(self, kind: int, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "data": data, "uid": self.uid, "nsp": self.nsp.name}

    def _publish(self, channel: str, envelope: dict[str, Any]) -> None:
        self._send(channel, self._encode_envelope(envelope))

    def _reply(self, to_uid: str, kind: int, data: dict[str, Any]) -> None:
        self._publish(f"{self.channel}{to_uid}#", self._envelope(kind, data))

    def _on_envelope(self, envelope: dict[str, Any], offset: str | None = None) -> None:
        """Act on another server's envelope; *offset* is where the transport keeps it, if it does."""
        if envelope.get("uid") == self.uid or envelope.get("nsp", "/") != self.nsp.name:
            return
        kind, data, sender = envelope.get("type"), envelope.get("data") or {}, envelope.get("uid")
        opts = decode_options(data.get("opts"))
        if kind == BROADCAST:
            packet = data.get("packet") or {}
            request_id = data.get("requestId")
            if request_id is None:
                if packet.get("id") is not None:
                    offset = None  # a packet that asked its sender for an ack gets no offset (as in Node)
                self._deliver_remote_broadcast(packet.get("data") or [], opts, offset)
            else:
                self._answer_broadcast_with_ack(sender, request_id, packet.get("data") or [], opts)
        elif kind == SOCKETS_JOIN:
            RedisAdapterBase.add_sockets(self, opts, _rooms(data.get("rooms")))
        elif kind == SOCKETS_LEAVE:
            RedisAdapterBase.del_sockets(self, opts, _rooms(data.get("rooms")))
        elif kind == DISCONNECT_SOCKETS:
            RedisAdapterBase.disconnect_sockets(self, opts, bool(data.get("close")))
        elif kind == FETCH_SOCKETS:
            sockets = [self._describe(s) for s in self.select(opts)]
            self._reply(str(sender), FETCH_SOCKETS_RESPONSE, {"requestId": data.get("requestId"), "sockets": sockets})
        elif kind == SERVER_SIDE_EMIT:
            self._answer_server_side_emit(sender, data.get("requestId"), data.get("packet") or [])
        elif kind in (FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT_RESPONSE):
            pending = self._pending.get(data.get("requestId", ""))
            if pending is not None:
                answers = data.get("sockets") or [] if kind == FETCH_SOCKETS_RESPONSE else [data.get("packet")]
                self._answered(pending, answers)
        elif kind in (BROADCAST_CLIENT_COUNT, BROADCAST_ACK):
            pending = self._pending.get(data.get("requestId", ""))
            if pending is None:
                return
            if kind == BROADCAST_CLIENT_COUNT and pending.on_count is not None:
                pending.on_count(int(data.get("clientCount", 0)))
            elif kind == BROADCAST_ACK and pending.on_ack is not None:
                pending.on_ack(None, data.get("packet"))

    # -- replies to other servers' requests ---------------------------------------------

    def _reply_client_count(self, requester: str | None, request_id: str, count: int) -> None:
        self._reply(str(requester), BROADCAST_CLIENT_COUNT, {"requestId": request_id, "clientCount": count})

    def _reply_broadcast_ack(self, requester: str | None, request_id: str, response: Any) -> None:
        self._reply(str(requester), BROADCAST_ACK, {"requestId": request_id, "packet": _plain(response)})

    def _reply_server_side_emit(self, requester: str | None, request_id: str, result: Any) -> None:
        self._reply(str(requester), SERVER_SIDE_EMIT_RESPONSE, {"requestId": request_id, "packet": _plain(result)})

    # -- what this server asks (keys in Node's order) ----------------------------------

    def _new_request_id(self) -> str:
        return hex_id()

    def _encode_broadcast_with_ack(
        self, request_id: str, packet: codec.Packet, opts: BroadcastOptions
    ) -> tuple[str, bytes | str]:
        # Without the ack id the local delivery gave it: each server gives its own (as in Node).
        body = {"type": codec.EVENT, "data": _plain(packet.data)}
        data = {"packet": body, "requestId": request_id, "opts": encode_options(opts)}
        return self.channel, self._encode_envelope(self._envelope(BROADCAST, data))

    def _encode_request(self, request_id: str, kind: int, data: dict[str, Any]) -> tuple[str, bytes | str]:
        if kind == SERVER_SIDE_EMIT:
            body = {"requestId": request_id, **data}
        else:
            body = {**data, "requestId": request_id}
        return self.channel, self._encode_envelope(self._envelope(kind, body))

    async def _fetch_remote(self, opts: BroadcastOptions) -> list[Any]:
        return await self._request(FETCH_SOCKETS, {"opts": encode_options(opts)})

    # -- the adapter interface ------------------------------------------------------

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        if not opts.local:
            self._cluster_apply(SOCKETS_JOIN, {"opts": encode_options(opts), "rooms": sorted(rooms)})

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        if not opts.local:
            self._cluster_apply(SOCKETS_LEAVE, {"opts": encode_options(opts), "rooms": sorted(rooms)})

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if not opts.local:
            self._cluster_apply(DISCONNECT_SOCKETS, {"opts": encode_options(opts), "close": close})

    def server_side_emit(self, args: list[Any], on_ack: Callable[..., None] | None = None) -> None:
        if on_ack is None:
            self._publish(self.channel, self._envelope(SERVER_SIDE_EMIT, {"packet": _plain(args)}))
        else:
            self._emit_with_ack(self._request(SERVER_SIDE_EMIT, {"packet": _plain(args)}), on_ack)
