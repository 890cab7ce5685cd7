"""A task cancelled while it talks to Redis stays cancelled (``config/redis_connection.py``).

On Python 3.11 redis-py lost most cancellations that landed during a loop of commands, and
a lost one left a closed socket's consumer running for good: Channels cancels the
consumer's ``receive()`` on the layer and waits for it to end. Each test cancels a task at a
random moment of such a loop, many times over, and fails if one cancellation is lost. (On
Python 3.12 and later they pass without the fix too: the bug is 3.11's.)
"""

import asyncio
import random
import uuid

import pytest
from django.conf import settings

from chat import redis_store
from config.channel_layer import BoundedRedisChannelLayer

pytestmark = pytest.mark.database_forbidden

TRIES = 200
SETTLE = 5  # seconds a cancelled task may take to end


async def cancel_at_random(work) -> None:
    """Start ``work()`` ``TRIES`` times and cancel it a random moment later; fail at the first
    time it is still running ``SETTLE`` seconds after its cancellation, or ends without
    raising it."""
    for attempt in range(1, TRIES + 1):
        task = asyncio.create_task(work())
        await asyncio.sleep(random.uniform(0, 0.005))  # a random moment, not a wait for one
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=SETTLE)
        if not (done and task.cancelled()):
            task.cancel()
            pytest.fail(f"cancellation {attempt} of {TRIES} was lost")


async def test_a_task_cancelled_between_commands_of_the_store_client_stays_cancelled():
    client = redis_store.async_client()
    name = redis_store.key("test-cancellation", uuid.uuid4().hex)

    async def commands():
        while True:
            await client.incr(name)

    try:
        await cancel_at_random(commands)
    finally:
        await client.delete(name)


async def test_a_closed_sockets_receive_on_the_core_layer_ends_when_cancelled():
    """The consumer of a closed socket: its ``receive()`` is cancelled while the process's
    other consumers keep the layer busy (a message every turn of the loop)."""
    layer = BoundedRedisChannelLayer(
        **{**settings.CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"cancel-{uuid.uuid4().hex}"}
    )
    busy = await layer.new_channel()

    async def others_at_work():
        while True:
            await layer.send(busy, {"type": "room.message"})
            await layer.receive(busy)

    async def closing_socket():
        await layer.receive(await layer.new_channel())

    others = asyncio.create_task(others_at_work())
    try:
        await cancel_at_random(closing_socket)
        assert not others.done(), "the other consumers stopped hearing their messages"
    finally:
        others.cancel()
        await asyncio.wait({others}, timeout=SETTLE)  # it may have lost its cancellation too
        await layer.flush()
        await layer.close_pools()
