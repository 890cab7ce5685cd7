"""The core channel layer of ``config/channel_layer.py``, against the real Redis."""

import asyncio
import uuid

from django.conf import settings

from config.channel_layer import BoundedRedisChannelLayer

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
