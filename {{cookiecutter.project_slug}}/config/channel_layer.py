"""The project's channel layers: channels_redis's core and pub/sub layers, with what the
project needs of them. The settings name one of the two (``CHANNEL_LAYER_BACKENDS``).

The core layer's Redis connections are bounded. channels-redis gives each event loop a
redis-py pool per shard, which opens a connection for every command in flight up to
``max_connections`` and raises "Too many connections" past it. A burst of handshakes (each
adding its channel to its groups) so held about one Redis connection per socket in flight,
and a smaller cap turned the burst into failed handshakes. Here the pools are redis-py's
``BlockingConnectionPool``: at most ``CHANNEL_LAYER_MAX_CONNECTIONS`` per shard and event
loop, and a command that finds them all busy waits up to ``CHANNEL_LAYER_POOL_TIMEOUT`` for
one, like the project's own Redis clients (``chat.redis_store``).

Its memory is bounded too. The layer files every message for this process's channels in a
per-channel buffer, and only the channel's own ``receive()`` ever removes one. A message
that arrives after its consumer has gone (a ``message.persisted`` for a closed socket, the
room's messages in the moment it leaves) left a buffer nobody reads, one per such socket,
for the process's life (django/channels_redis#384): the soak saw it (docs/operations.md).
Here a buffer that still holds the same messages after the layer's ``expiry`` (the time the
layer already lets a message wait in Redis) is dropped. A live consumer never leaves its
buffer that long: its handlers only queue work (``chat.outbox``), and the library deletes a
buffer as soon as its channel has read it empty, so a channel being read has a new buffer
by then. The sweep costs one clock read per ``receive()``, and a pass over the buffers once
per ``expiry``.

The pub/sub layer builds its pools deep inside per-loop objects (``create_pool`` called
from ``RedisSingleShardConnection._ensure_redis``, made by ``RedisPubSubLoopLayer``, made by
the layer's ``_get_layer``): a waiting pool there would mean overriding three private
classes. It needs none: each shard's connection runs its commands one at a time under a
lock, so its pool holds one subscribed connection and one for commands, whatever the
burst. It keeps the library's pool, capped at those two (``CHANNEL_LAYER_MAX_CONNECTIONS``);
``tests/test_redis_budget.py`` fails if a library upgrade drops the lock. It drops messages
for channels it no longer has.

Both layers add ``send_many(messages)``: ``send`` for each ``(channel, message)`` pair, in
as few round trips as the layer allows. Channels' layer API has no batch send; this one
takes the pairs ``send`` takes, so its caller needs to know nothing of the layer. The
worker sends each batch's ``message.persisted`` events with it (``chat.notifications``).
Sent with ``send``, a batch of 100 was half the worker's time on the pub/sub layer: under
the shard's lock, 100 round trips one after another, whatever ``asyncio.gather`` suggests.
Its ``send_many`` puts each shard's ``PUBLISH`` commands in one pipeline, under the same
lock, on the shard's own connection. That reaches into the library's per-loop objects (the
layer's ``_get_layer``, the loop layer's ``_get_shard``, the shard's ``_lock``,
``_ensure_redis`` and ``_redis``), here and nowhere else; ``tests/test_channel_layer.py``
fails if a library upgrade changes them. The core layer's sends already run together, each
on a connection of its pool, so its ``send_many`` is just that.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable

import redis.asyncio
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

Messages = Iterable[tuple[str, dict]]  # (channel, message) pairs, as ``send`` takes them


class BoundedRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # channel -> its buffer, for the buffers holding messages at the last sweep
        self.unread: dict[str, asyncio.Queue] = {}
        self.sweep_at = time.monotonic() + self.expiry

    def create_pool(self, index):
        host = dict(self.hosts[index])
        return redis.asyncio.BlockingConnectionPool.from_url(
            host.pop("address"), timeout=settings.CHANNEL_LAYER_POOL_TIMEOUT, **host
        )

    async def receive(self, channel):
        if time.monotonic() >= self.sweep_at:
            self.drop_unread_buffers()
        return await super().receive(channel)

    def drop_unread_buffers(self) -> None:
        """Drop the buffers that already held messages one sweep ago and are still the same
        buffers: nothing has read them since."""
        self.sweep_at = time.monotonic() + self.expiry
        for channel, buffer in self.unread.items():
            if self.receive_buffer.get(channel) is buffer:
                del self.receive_buffer[channel]
        self.unread = {
            channel: buffer for channel, buffer in self.receive_buffer.items() if not buffer.empty()
        }

    async def send_many(self, messages: Messages) -> None:
        """``send`` each ``(channel, message)``, all at once: no order between them is kept."""
        await asyncio.gather(*(self.send(channel, message) for channel, message in messages))

    async def discard_channel(self, channel: str) -> None:
        """Forget the buffer of a channel whose consumer has ended."""
        self.receive_buffer.pop(channel, None)


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    async def discard_channel(self, channel: str) -> None:
        """Forget a channel whose consumer has ended: its queue and its Redis subscription.

        The layer does this itself only when the consumer's pending ``receive`` is
        cancelled; a consumer whose last ``receive`` had already returned as it ended (a
        message in the moment of its close) left both behind for the process's life, one
        per socket in the soak (docs/operations.md)."""
        loop_layer = self._get_layer()
        if loop_layer.channels.pop(channel, None) is not None:
            await loop_layer._get_shard(channel).unsubscribe(channel)

    async def send_many(self, messages: Messages) -> None:
        """``send`` each ``(channel, message)``, in one round trip per shard, the shards at
        once: no order between them is kept."""
        loop_layer = self._get_layer()  # this event loop's connections
        by_shard = defaultdict(list)
        for channel, message in messages:
            by_shard[loop_layer._get_shard(channel)].append((channel, self.serialize(message)))
        pipelines = [publish_pipelined(shard, batch) for shard, batch in by_shard.items()]
        await asyncio.gather(*pipelines)


async def publish_pipelined(shard, batch: list[tuple[str, bytes]]) -> None:
    """What the shard's own ``publish`` does for one message, for each of ``batch``."""
    async with shard._lock:
        shard._ensure_redis()
        async with shard._redis.pipeline(transaction=False) as pipe:
            for channel, data in batch:
                pipe.publish(channel, data)
            await pipe.execute()


# The layers the settings may name (CHANNEL_LAYER_BACKENDS): each has send_many.
ChannelLayer = BoundedRedisChannelLayer | PipelinedPubSubChannelLayer
