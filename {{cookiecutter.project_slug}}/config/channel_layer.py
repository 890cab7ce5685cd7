"""The core Redis channel layer, on pools that wait instead of growing.

channels-redis gives each event loop a redis-py pool per shard, which opens a connection for
every command in flight up to ``max_connections`` and raises "Too many connections" past it.
A burst of handshakes (each adding its channel to its groups) so held about one Redis
connection per socket in flight, and a smaller cap turned the burst into failed handshakes.
Here the pools are redis-py's ``BlockingConnectionPool``: at most
``CHANNEL_LAYER_MAX_CONNECTIONS`` per shard and event loop, and a command that finds them
all busy waits up to ``CHANNEL_LAYER_POOL_TIMEOUT`` for one, like the project's own Redis
clients (``chat.redis_store``).

The pub/sub layer builds its pools deep inside per-loop objects, out of reach of a
subclass; it subscribes on one connection per shard and opens more only for publishes in
flight, so it keeps the library's pool with a high cap (``config/settings.py``), and
``tests/test_redis_connections.py`` shows its count flat with the number of sockets too.
"""

import redis.asyncio
from channels_redis.core import RedisChannelLayer
from django.conf import settings


class BoundedRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        return redis.asyncio.BlockingConnectionPool.from_url(
            host.pop("address"), timeout=settings.CHANNEL_LAYER_POOL_TIMEOUT, **host
        )
