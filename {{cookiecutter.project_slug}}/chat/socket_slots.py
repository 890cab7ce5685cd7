"""How many sockets one user holds at once, counted in Redis across every ASGI process.

Each open socket holds a slot: a member of the user's sorted set, scored with the time its
claim runs out. A live socket's claim is renewed every third of ``CHAT_SOCKET_SLOT_TTL``; a
socket whose process died without saying goodbye is renewed no more, and its slot frees
itself when the claim runs out, so a crash never locks a user out for longer than that.

The renewals of a process's sockets go together (``Keeper``): one task per process and one
pipelined round trip per third of the TTL. A task per socket, each with its own timer and
transaction, cost a process with 10,000 idle sockets about 500 Redis transactions a second,
the better part of its idle CPU (docs/benchmark.md, "Sockets").
"""

import asyncio
import logging
import time
import weakref

from django.conf import settings
from redis.exceptions import RedisError

from chat import redis_store

logger = logging.getLogger(__name__)
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


class Keeper:
    """The slots this process's sockets hold, and the one task that renews them. It runs
    while the process holds slots, and stops after the last one has gone."""

    def __init__(self) -> None:
        self.held: dict[int, set[str]] = {}  # user id -> channel names of this process
        self.task: asyncio.Task | None = None

    def hold(self, user_id: int, holder: str) -> None:
        self.held.setdefault(user_id, set()).add(holder)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def let_go(self, user_id: int, holder: str) -> None:
        holders = self.held.get(user_id, set())
        holders.discard(holder)
        if not holders:
            self.held.pop(user_id, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(settings.CHAT_SOCKET_SLOT_TTL / 3)
            try:
                await renew({user: set(holders) for user, holders in self.held.items()})
            except (OSError, RedisError) as error:
                # Redis down for a while: it comes back, or the claims run out; both are safe.
                logger.warning("Socket slots not renewed: %r", error)
            if not self.held:
                return  # the next claim starts another (no await since the check)


_keepers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keeper() -> Keeper:
    """The slot keeper of this process's event loop."""
    return _keepers.setdefault(asyncio.get_running_loop(), Keeper())
