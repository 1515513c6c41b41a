"""Several server processes as one: Redis adapters in the wire formats of Node's
``@socket.io/redis-adapter`` (classic, and sharded for Redis 7), so Python and Node
servers share a cluster and ``@socket.io/redis-emitter`` emits into it."""

from .base import ClusterTimeout, RedisAdapterBase, RemoteSocket
from .classic import RedisAdapter, encode_broadcast, redis_adapter
from .sharded import ShardedRedisAdapter, sharded_redis_adapter

__all__ = [
    "ClusterTimeout",
    "RedisAdapter",
    "RedisAdapterBase",
    "RemoteSocket",
    "ShardedRedisAdapter",
    "encode_broadcast",
    "redis_adapter",
    "sharded_redis_adapter",
]
