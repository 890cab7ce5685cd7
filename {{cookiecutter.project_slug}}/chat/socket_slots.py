"""How many sockets one user holds at once, counted in Redis across every ASGI process.

Each open socket holds a slot: a member of the user's sorted set, scored with the time its
claim runs out. A live socket renews its claim every third of ``CHAT_SOCKET_SLOT_TTL``; a
socket whose process died without saying goodbye stops renewing, and its slot frees itself
when the claim runs out, so a crash never locks a user out for longer than that.
"""

import asyncio
import contextlib
import time

from django.conf import settings
from redis.exceptions import RedisError

from chat import redis_store


async def claim(user_id: int, holder: str) -> bool:
    """Take a slot for ``holder`` (a channel name); False if the user has none left.

    Claim first, count after, in one transaction: two sockets racing for the last slot
    may both be refused, never both admitted.
    """
    now, ttl = time.time(), settings.CHAT_SOCKET_SLOT_TTL
    key = redis_store.user_sockets(user_id)
    async with redis_store.async_client().pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now)  # claims that ran out
        pipe.zadd(key, {holder: now + ttl})
        pipe.zcard(key)
        pipe.expire(key, int(ttl) + 1)
        *_, held, _ = await pipe.execute()
    if held > settings.CHAT_MAX_SOCKETS_PER_USER:
        await release(user_id, holder)
        return False
    return True


async def renew(user_id: int, holder: str) -> None:
    ttl = settings.CHAT_SOCKET_SLOT_TTL
    key = redis_store.user_sockets(user_id)
    async with redis_store.async_client().pipeline(transaction=True) as pipe:
        pipe.zadd(key, {holder: time.time() + ttl}, xx=True)
        pipe.expire(key, int(ttl) + 1)
        await pipe.execute()


async def release(user_id: int, holder: str) -> None:
    await redis_store.async_client().zrem(redis_store.user_sockets(user_id), holder)


async def keep_renewing(user_id: int, holder: str) -> None:
    """Run for as long as the socket is open (the consumer cancels it at disconnect)."""
    while True:
        await asyncio.sleep(settings.CHAT_SOCKET_SLOT_TTL / 3)
        # Redis down for a while: it comes back, or the claim runs out; both are safe.
        with contextlib.suppress(OSError, RedisError):
            await renew(user_id, holder)
