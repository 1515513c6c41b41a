"""Several server processes as one: Redis adapters in the wire formats of Node's
``@socket.io/redis-adapter`` (classic, and sharded for Redis 7), so Python and Node
servers share a cluster and ``@socket.io/redis-emitter`` emits into it, and of
``@socket.io/redis-streams-adapter`` (Redis Streams), with which a client recovers its
session (connection state recovery) on any server of the cluster.

This is the module to import them from (``from tornad_io.cluster import redis_adapter``);
:mod:`tornad_io.redis_adapter` is an alias of it kept for code written against earlier
releases. :exc:`ClusterTimeout` and :exc:`ClusterConnectionError` are defined in
:mod:`tornad_io.exceptions`, which catches them without the ``redis`` extra, and
re-exported here.
"""

try:
    import msgpack  # noqa: F401
    import redis.asyncio  # noqa: F401
except ModuleNotFoundError as error:  # the optional dependencies are not installed
    missing = (error.name or "").split(".")[0]
    if missing not in ("msgpack", "redis"):
        raise
    raise ImportError(
        f"the Redis adapters need the optional dependencies redis and msgpack ({missing} is missing): "
        "install tornad_io with its redis extra, e.g. pip install '/path/to/tornad_io[redis]' "
        "(see the README: 'In your own project')"
    ) from error

from ..exceptions import ClusterConnectionError, ClusterTimeout
from .base import RedisAdapterBase, RemoteSocket
from .classic import RedisAdapter, encode_broadcast, redis_adapter
from .sharded import ShardedRedisAdapter, sharded_redis_adapter
from .streams import RedisStreamsAdapter, redis_streams_adapter

__all__ = [
    "ClusterConnectionError",
    "ClusterTimeout",
    "RedisAdapter",
    "RedisAdapterBase",
    "RedisStreamsAdapter",
    "RemoteSocket",
    "ShardedRedisAdapter",
    "encode_broadcast",
    "redis_adapter",
    "redis_streams_adapter",
    "sharded_redis_adapter",
]
