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

from chat import redis_scripts, redis_store
from chat.per_loop import PerLoop
from chat.periodic import Periodic

RENEW_BATCH = 1000  # slots per script call of renew (whole users: a call may hold more)

# KEYS: users' slot sets; ARGV: the claims' new end, the sets' lifetime, then for each user
# their slots in one string, one a line (channel names hold no line break). XX: a slot
# released meanwhile stays released.
RENEW = (
    redis_scripts.LUA
    + """
local expiry, lifetime = ARGV[1], ARGV[2]
for k, key in ipairs(KEYS) do
    zadd_all(key, 'XX', expiry, lines(ARGV[k + 2]))
    redis.call('EXPIRE', key, lifetime)
end
return 0
"""
)


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
    """Renew the claims of ``held`` (user id -> holders), never re-creating a released one.

    ``held`` may be the keeper's own members: they are read before the first await. One
    script call (``RENEW``, sent by its SHA) per ``RENEW_BATCH`` slots, one argument per
    user: a ZADD and an EXPIRE
    per user in a pipeline cost a process with 10,000 idle sockets of 1,000 users 2,000
    commands, their replies and the garbage they leave, every renewal.
    """
    script = redis_store.async_client().register_script(RENEW)
    ttl = settings.CHAT_SOCKET_SLOT_TTL
    for batch in redis_scripts.batches(held, RENEW_BATCH):
        keys = [redis_store.user_sockets(user_id) for user_id, _ in batch]
        await script(keys=keys, args=[time.time() + ttl, int(ttl) + 1, *(s for _, s in batch)])


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
        await renew(self.members)  # read before any await


@PerLoop
def keeper() -> Keeper:
    """The slot keeper of this event loop (of the process, on a server)."""
    return Keeper()
