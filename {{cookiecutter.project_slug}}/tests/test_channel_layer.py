"""The channel layers of ``config/channel_layer.py``, against the real Redis."""

import asyncio
import uuid

import redis.asyncio
from channels_redis.pubsub import RedisSingleShardConnection
from django.conf import settings

from config.channel_layer import BoundedRedisChannelLayer, PipelinedPubSubChannelLayer

EXPIRY = 1  # seconds: the layer's own message expiry, and so how long an unread buffer stays


async def test_late_messages_for_a_gone_channel_do_not_stay_in_memory():
    """A ``message.persisted`` for a socket that has closed: the layer files it in a buffer
    for the gone channel, which nobody will read (django/channels_redis#384). It must be
    dropped once nothing has read it for the expiry, and the live channels' must not be."""
    layer = BoundedRedisChannelLayer(
        hosts=[{"address": settings.REDIS_URL}],
        prefix=f"layer-test-{uuid.uuid4().hex[:8]}",
        expiry=EXPIRY,
    )
    live, gone, quiet = [await layer.new_channel() for _ in range(3)]
    consumer = asyncio.create_task(layer.receive(gone))
    listener = asyncio.create_task(layer.receive(quiet))  # a socket in a room with no news
    await asyncio.sleep(0)  # one turn of the loop: the tasks run up to their first wait
    consumer.cancel()  # the consumer's socket closes
    await layer.send(gone, {"type": "message.persisted", "id": "late"})

    async def one_round_trip():  # another consumer of the process at work
        await layer.send(live, {"type": "room.message"})
        assert (await layer.receive(live))["type"] == "room.message"

    try:
        await one_round_trip()
        assert gone in layer.receive_buffer, "the late message was filed for the gone channel"
        deadline = asyncio.get_running_loop().time() + 10 * EXPIRY
        while gone in layer.receive_buffer:
            assert asyncio.get_running_loop().time() < deadline, "still buffered"
            await one_round_trip()
        await layer.send(quiet, {"type": "room.message"})
        assert (await asyncio.wait_for(listener, 10))["type"] == "room.message"
    finally:
        await layer.flush()
        await layer.close_pools()


async def test_the_pub_sub_layer_sends_many_in_one_pipeline_per_shard(monkeypatch):
    """Not one ``PUBLISH`` at a time through each shard's own ``publish``. ``send_many``
    reaches into the library's per-loop objects: this fails if an upgrade changes them. Two
    shards, both on the one Redis (pub/sub ignores its database numbers)."""
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    layer = PipelinedPubSubChannelLayer(hosts=[host, host], prefix=f"layer-{uuid.uuid4().hex}")
    channels = [await layer.new_channel() for _ in range(20)]

    async def one_publish_per_message(self, channel, message):
        raise AssertionError("a message went out through the shard's own publish")

    monkeypatch.setattr(RedisSingleShardConnection, "publish", one_publish_per_message)
    pipelines = []  # the number of commands in each pipeline sent
    execute = redis.asyncio.client.Pipeline.execute

    async def counted_execute(pipeline, *args, **kwargs):
        pipelines.append(len(pipeline))
        return await execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", counted_execute)
    try:
        messages = [(channel, {"type": "note", "n": n}) for n, channel in enumerate(channels)]
        await layer.send_many(messages)
        for channel, message in messages:
            assert await asyncio.wait_for(layer.receive(channel), 5) == message
        assert len(pipelines) == 2 and sum(pipelines) == len(channels)
    finally:
        await layer.flush()
