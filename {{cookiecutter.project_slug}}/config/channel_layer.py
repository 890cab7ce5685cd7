"""The core Redis channel layer, with bounded Redis connections and bounded memory.

channels-redis gives each event loop a redis-py pool per shard, which opens a connection for
every command in flight up to ``max_connections`` and raises "Too many connections" past it.
A burst of handshakes (each adding its channel to its groups) so held about one Redis
connection per socket in flight, and a smaller cap turned the burst into failed handshakes.
Here the pools are redis-py's ``BlockingConnectionPool``: at most
``CHANNEL_LAYER_MAX_CONNECTIONS`` per shard and event loop, and a command that finds them
all busy waits up to ``CHANNEL_LAYER_POOL_TIMEOUT`` for one, like the project's own Redis
clients (``chat.redis_store``).

The layer also files every message for this process's channels in a per-channel buffer,
and only the channel's own ``receive()`` ever removes one. A message that arrives after its
consumer has gone (a ``message.persisted`` for a closed socket, the room's messages in the
moment it leaves) left a buffer nobody reads, one per such socket, for the process's life
(django/channels_redis#384): the soak saw it (docs/operations.md). Here a channel's buffer is
dropped once nothing has waited on it for the layer's ``expiry``, the time the layer already
lets a message wait in Redis. Consumers never take that long between two receives: their
handlers only queue work (``chat.outbox``).

The pub/sub layer builds its pools deep inside per-loop objects (``create_pool`` called
from ``RedisSingleShardConnection._ensure_redis``, made by ``RedisPubSubLoopLayer``, made by
the layer's ``_get_layer``): a waiting pool there would mean overriding three private
classes. It needs none: each shard's connection runs its commands one at a time under a
lock, so its pool holds one subscribed connection and one for commands, whatever the
burst. It keeps the library's pool, capped at those two (``CHANNEL_LAYER_MAX_CONNECTIONS``);
``tests/test_redis_budget.py`` fails if a library upgrade drops the lock. It drops messages
for channels it no longer has.
"""

import time
from collections import Counter

import redis.asyncio
from channels_redis.core import RedisChannelLayer
from django.conf import settings


class BoundedRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waiting: Counter[str] = Counter()  # channel -> receive() calls in progress
        self.unread_since: dict[str, float] = {}  # channel -> when its last receive() ended
        self.swept_at = time.monotonic()

    def create_pool(self, index):
        host = dict(self.hosts[index])
        return redis.asyncio.BlockingConnectionPool.from_url(
            host.pop("address"), timeout=settings.CHANNEL_LAYER_POOL_TIMEOUT, **host
        )

    async def receive(self, channel):
        self.waiting[channel] += 1
        try:
            return await super().receive(channel)
        finally:
            self.waiting[channel] -= 1
            if not self.waiting[channel]:
                del self.waiting[channel]
                self.unread_since[channel] = time.monotonic()
            self.drop_unread_buffers()

    def drop_unread_buffers(self) -> None:
        """At most once per ``expiry``: drop the buffers of channels nothing has waited on
        for longer than that."""
        now = time.monotonic()
        if now - self.swept_at < self.expiry:
            return
        self.swept_at = now
        for channel in list(self.receive_buffer):  # filed since the last round, never read
            if channel not in self.waiting:
                self.unread_since.setdefault(channel, now)
        for channel, since in list(self.unread_since.items()):
            if channel in self.waiting:
                del self.unread_since[channel]
            elif now - since > self.expiry:
                del self.unread_since[channel]
                self.receive_buffer.pop(channel, None)
