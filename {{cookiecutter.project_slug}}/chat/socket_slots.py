"""How many sockets one user holds at once, counted in Redis across every ASGI process.

Each open socket holds a slot: a member of the user's sorted set, scored with the time its
claim runs out. A live socket's claim is renewed every third of ``CHAT_SOCKET_SLOT_TTL``; a
socket whose process died without saying goodbye is renewed no more, and its slot frees
itself when the claim runs out, so a crash never locks a user out for longer than that.

The renewals of a process's sockets go together (``Keeper``): one task per process and one
pipelined round trip per third of the TTL (``chat.periodic`` says why: a task per socket
cost a process with 10,000 idle sockets the better part of its idle CPU).
"""

import time

from django.conf import settings

from chat import redis_store
from chat.per_loop import PerLoop
from chat.periodic import Periodic

RENEW_BATCH = 500  # users per pipelined round trip


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


async def release(user_id: int, holder: str) -> None:
    await redis_store.async_client().zrem(redis_store.user_sockets(user_id), holder)


async def renew(held: dict[int, set[str]]) -> None:
    """Renew the claims of ``held`` (user id -> holders), never re-creating a released one."""
    ttl = settings.CHAT_SOCKET_SLOT_TTL
    users = list(held.items())
    for first in range(0, len(users), RENEW_BATCH):
        until = time.time() + ttl
        async with redis_store.async_client().pipeline(transaction=False) as pipe:
            for user_id, holders in users[first : first + RENEW_BATCH]:
                key = redis_store.user_sockets(user_id)
                pipe.zadd(key, dict.fromkeys(holders, until), xx=True)
                pipe.expire(key, int(ttl) + 1)
            await pipe.execute()


class Keeper(Periodic[int]):
    """The slots this process's sockets hold (user id -> channel names), all renewed
    together every third of the TTL."""

    failure = "Socket slots not renewed"

    @property
    def interval(self) -> float:
        return settings.CHAT_SOCKET_SLOT_TTL / 3

    async def work(self) -> None:
        """Renew every slot. If Redis is down for a while, it comes back or the claims run
        out: both are safe."""
        await renew(self.snapshot())


@PerLoop
def keeper() -> Keeper:
    """The slot keeper of this event loop (of the process, on a server)."""
    return Keeper()
