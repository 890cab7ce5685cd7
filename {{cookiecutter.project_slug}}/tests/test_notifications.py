"""``message.persisted`` from the worker (``chat.notifications``), against the real Redis."""

import asyncio
import uuid

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection
from django.conf import settings

from chat import notifications


@pytest.fixture
async def pubsub_layer():
    layer = RedisPubSubChannelLayer(
        hosts=settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
        prefix=f"notify-test-{uuid.uuid4().hex[:8]}",
    )
    yield layer
    await layer.flush()


async def test_a_batch_is_published_in_one_pipeline_not_one_send_each(pubsub_layer, monkeypatch):
    """Every sender of the batch hears ``persisted`` about its own message, and not through
    the layer's ``send``: on the pub/sub layer each send waits for the one before it."""
    channels = [await pubsub_layer.new_channel() for _ in range(20)]
    records = [{"id": str(uuid.uuid4()), "reply_channel": channel} for channel in channels]
    records.append({"id": str(uuid.uuid4())})  # queued before reply channels existed
    monkeypatch.setattr(notifications.groups, "channel_layer", lambda: pubsub_layer)

    async def one_publish_per_message(self, channel, message):
        raise AssertionError("a notification went out through the layer's own send")

    monkeypatch.setattr(RedisSingleShardConnection, "publish", one_publish_per_message)
    await notifications._send_persisted(records)

    for record in records[:-1]:
        event = await asyncio.wait_for(pubsub_layer.receive(record["reply_channel"]), 5)
        assert event == {"type": "message.persisted", "id": record["id"]}
