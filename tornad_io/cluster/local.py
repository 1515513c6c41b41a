"""The worker processes of one machine as a cluster, with no external service.

:class:`ProcessAdapter` carries Node's ``ClusterAdapter`` envelopes (the
semantics of :class:`~tornad_io.cluster.envelope.EnvelopeAdapter`, shared with
the sharded and Redis Streams formats) over the worker's Unix socket to the
supervisor, which relays each message to the other workers
(:class:`~tornad_io.process.WorkerChannel`). :func:`tornad_io.serve` makes it the
default adapter of every namespace when it runs several processes and no
adapter was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack

from ..adapter import BroadcastOptions
from ..socketio import codec
from .base import decode_message
from .envelope import BROADCAST, EnvelopeAdapter, encode_options, packet_dict

if TYPE_CHECKING:
    from ..process import WorkerChannel
    from ..socketio.namespace import Namespace


class ProcessAdapter(EnvelopeAdapter):
    """Node's ``ClusterAdapter`` messages between the worker processes of :func:`tornad_io.serve`,
    relayed by the supervisor over Unix sockets: broadcasts (with acknowledgements), rooms,
    ``fetch_sockets``, ``sockets_join``/``leave``, ``disconnect_sockets`` and server-side emits
    span the workers. The envelopes are msgpack; servers are the live workers."""

    #: How the adapter names itself in log messages.
    label = "process adapter"

    def __init__(self, nsp: Namespace, channel: WorkerChannel, requests_timeout: float = 5.0) -> None:
        self._channel = channel
        self._subscribed = False
        super().__init__(nsp, None, "socket.io", requests_timeout, 1.0)  # type: ignore[arg-type]  # no Redis

    # -- the transport: the worker's channel ------------------------------------------

    def _start(self) -> None:
        if not self._subscribed and not self._closed:
            self._subscribed = True
            self._channel.subscribe(self._receive)
            self._ready.set()

    async def close(self) -> None:
        """Stop receiving; requests still waiting fail with :class:`~tornad_io.cluster.ClusterTimeout`."""
        self._channel.unsubscribe(self._receive)
        await super().close()

    def _send(self, channel: str, payload: bytes | str) -> None:
        self._start()
        self._channel.publish(channel, payload if isinstance(payload, bytes) else payload.encode())

    def _receive(self, channel: str, payload: bytes) -> None:
        if channel == self.channel or channel == self.own_channel:
            self._on_envelope(decode_message(payload))

    async def server_count(self) -> int:
        return max(1, self._channel.worker.count)

    def _encode_envelope(self, envelope: dict[str, Any]) -> bytes | str:
        return msgpack.packb(envelope, use_bin_type=True)  # type: ignore[no-any-return]

    def _encode_broadcast(self, packet: codec.Packet, opts: BroadcastOptions) -> tuple[str, bytes | str]:
        data = {"packet": packet_dict(packet), "opts": encode_options(opts)}
        return self.channel, self._encode_envelope(self._envelope(BROADCAST, data))

    def _cluster_apply(self, kind: int, data: dict[str, Any]) -> None:
        self._publish(self.channel, self._envelope(kind, data))
