"""``message.persisted`` from the worker (``chat.notifications``), against the real Redis."""

import asyncio
import uuid

import pytest
from django.conf import settings

from chat import notifications
from config.channel_layer import BoundedRedisChannelLayer, PipelinedPubSubChannelLayer


@pytest.fixture(params=[PipelinedPubSubChannelLayer, BoundedRedisChannelLayer])
async def layer(request):
    """Each of the layers the settings may name, whichever this project was generated with."""
    layer = request.param(
        hosts=settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
        prefix=f"notify-test-{uuid.uuid4().hex[:8]}",
    )
    yield layer
    await layer.flush()
    if isinstance(layer, BoundedRedisChannelLayer):
        await layer.close_pools()


async def test_every_sender_of_the_batch_hears_persisted_about_its_own_message(layer, monkeypatch):
    channels = [await layer.new_channel() for _ in range(20)]
    records = [{"id": str(uuid.uuid4()), "reply_channel": channel} for channel in channels]
    records.append({"id": str(uuid.uuid4())})  # queued before reply channels existed
    monkeypatch.setattr(notifications.groups, "channel_layer", lambda: layer)

    await notifications._send_persisted(records)

    for record in records[:-1]:
        event = await asyncio.wait_for(layer.receive(record["reply_channel"]), 5)
        assert event == {"type": "message.persisted", "ids": [record["id"]]}


async def test_a_sender_hears_of_all_its_messages_in_a_batch_in_one_event(layer, monkeypatch):
    mine, theirs = await layer.new_channel(), await layer.new_channel()
    records = [{"id": str(n), "reply_channel": mine if n % 3 else theirs} for n in range(9)]
    monkeypatch.setattr(notifications.groups, "channel_layer", lambda: layer)

    await notifications._send_persisted(records)

    event = await asyncio.wait_for(layer.receive(mine), 5)
    assert event == {"type": "message.persisted", "ids": ["1", "2", "4", "5", "7", "8"]}
    event = await asyncio.wait_for(layer.receive(theirs), 5)
    assert event == {"type": "message.persisted", "ids": ["0", "3", "6"]}
    with pytest.raises(TimeoutError):  # one event each, nothing more
        await asyncio.wait_for(layer.receive(mine), 0.3)
