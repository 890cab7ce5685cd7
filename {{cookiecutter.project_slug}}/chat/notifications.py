"""``message.persisted``, sent by the worker to each sender's socket once its batch commits.

The channel layer keeps its Redis connections per event loop, and ``async_to_sync`` would
make a new loop, and so open new connections, for every batch (``make bench`` measured that
at several times the cost). So each worker process sends on one loop of its own for its
whole life, made on first use (in the prefork child) and closed when the child exits
(``config/celery.py``). Prefork runs one task at a time per process: one loop is enough.

A batch's notifications go out in one round trip per Redis shard. The pub/sub layer runs
its commands one at a time under a lock per shard, so a batch of 100 sent with ``send``
cost 100 round trips one after another, whatever ``asyncio.gather`` suggested: half the
worker's time in the benchmark's profile (py-spy). Here each shard's ``PUBLISH`` commands
go out in one pipeline, under the same lock, on the layer's own connection; the core layer
(``BoundedRedisChannelLayer``), whose sends run concurrently on its pool, keeps ``send``.
"""

import asyncio
from collections import defaultdict

from channels_redis.pubsub import RedisPubSubChannelLayer

from chat import groups

_runner = asyncio.Runner()


def notify_persisted(records: list[dict]) -> None:
    _runner.run(_send_persisted(records))


async def _send_persisted(records: list[dict]) -> None:
    layer = groups.channel_layer()
    events = [
        (record["reply_channel"], {"type": "message.persisted", "id": record["id"]})
        for record in records
        if record.get("reply_channel")
    ]
    if isinstance(layer, RedisPubSubChannelLayer):
        await publish_pipelined(layer, events)
    else:  # independent sends: they go out together rather than one after another
        await asyncio.gather(*(layer.send(channel, event) for channel, event in events))


async def publish_pipelined(layer: RedisPubSubChannelLayer, events: list[tuple[str, dict]]):
    """What ``layer.send`` does for each event (``PUBLISH`` to the channel's shard), in one
    pipeline per shard. The shard objects are the library's own (``channels_redis.pubsub``);
    ``tests/test_notifications.py`` fails if an upgrade changes them."""
    loop_layer = layer._get_layer()  # this event loop's connections
    by_shard = defaultdict(list)
    for channel, event in events:
        by_shard[loop_layer._get_shard(channel)].append((channel, layer.serialize(event)))
    for shard, messages in by_shard.items():
        async with shard._lock:
            shard._ensure_redis()
            async with shard._redis.pipeline(transaction=False) as pipe:
                for channel, data in messages:
                    pipe.publish(channel, data)
                await pipe.execute()


def close() -> None:
    _runner.close()
