"""Who is in a room, across every server process: Redis entries that expire, no database.

Each socket in a room holds one entry in the room's presence set, ``<channel>|<username>``,
scored with the time it runs out. Its process renews the entries of all its sockets
together (``chat.heartbeat``); a process that dies renews nothing, and its entries run out
within ``CHAT_PRESENCE_TTL``.

A user joins a room with their first live socket there and leaves with their last. ``join``
and ``leave`` say whether this socket was that first or last one, and ``reap`` removes the
entries that ran out and says whose last entry went with them, so that a process still in
the room can announce it. Each runs as one Lua script: two sockets racing never both
announce, and an entry that ran out is reaped by exactly one process.
"""

import time
from typing import cast

from django.conf import settings

from chat import redis_store

RENEW_BATCH = 250  # rooms per pipelined round trip of renew_and_reap

# Lua: the username of a member "<channel>|<username>" (channel names have no "|").
USER_OF = "local function user_of(m) return string.sub(m, string.find(m, '|', 1, true) + 1) end\n"

JOIN = (
    USER_OF
    + """
local others = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf')) do
    if m ~= ARGV[1] and user_of(m) == user_of(ARGV[1]) then others = others + 1 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if others == 0 then return 1 end
return 0
"""
)

LEAVE = (
    USER_OF
    + """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
    if user_of(m) == user_of(ARGV[1]) then return 0 end
end
return 1
"""
)

RENEW = (
    USER_OF
    + """
local rejoined, seen = {}, {}
for i = 4, #ARGV do
    if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
        local user, others = user_of(ARGV[i]), 0
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
            if user_of(m) == user then others = others + 1 end
        end
        if others == 0 and not seen[user] then
            seen[user] = true
            table.insert(rejoined, user)
        end
    end
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return rejoined
"""
)

REAP = (
    USER_OF
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if #expired == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local live, gone, seen = {}, {}, {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
    live[user_of(m)] = true
end
for _, m in ipairs(expired) do
    local user = user_of(m)
    if not live[user] and not seen[user] then
        seen[user] = true
        table.insert(gone, user)
    end
end
return gone
"""
)


def member(channel_name: str, username: str) -> str:
    return f"{channel_name}|{username}"


def username_of(entry: str) -> str:
    return entry.split("|", 1)[1]


def key_lifetime() -> int:
    """The whole set goes this long after its last join or renewal: no room keeps a set
    nobody renews. Far longer than an entry lives, so that only whole rooms go this way."""
    return int(max(60, 3 * settings.CHAT_PRESENCE_TTL))


async def join(room: str, entry: str) -> bool:
    """Enter ``entry`` into the room; True if it is its user's first live socket there."""
    now = time.time()
    first = await redis_store.async_client().eval(
        JOIN,
        1,
        redis_store.presence(room),
        entry,
        now + settings.CHAT_PRESENCE_TTL,
        now,
        key_lifetime(),
    )
    return bool(first)


async def leave(room: str, entry: str) -> bool:
    """Take ``entry`` out of the room; True if it was its user's last live socket there."""
    last = await redis_store.async_client().eval(
        LEAVE, 1, redis_store.presence(room), entry, time.time()
    )
    return bool(last)


async def users(room: str) -> list[str]:
    """Who is in the room now, each user once, in alphabetical order."""
    entries = await redis_store.async_client().zrangebyscore(
        redis_store.presence(room), time.time(), "+inf"
    )
    return sorted({username_of(entry) for entry in cast(list[str], entries)})


async def renew_and_reap(rooms: dict[str, set[str]]) -> dict[str, tuple[list[str], list[str]]]:
    """For each room of ``rooms`` (room -> one process's entries there): push back the
    expiry of the entries, then remove the room's entries that ran out. Per room, the users
    who rejoined it (their entries had been reaped meanwhile: the process stalled past the
    TTL) and the users who left it with the entries reaped.

    ``RENEW_BATCH`` rooms per pipelined round trip: a process with sockets in 500 rooms made
    1,000 round trips per renewal one room at a time, a good part of its idle CPU.
    """
    found: dict[str, tuple[list[str], list[str]]] = {}
    names = list(rooms)
    for first in range(0, len(names), RENEW_BATCH):
        batch = names[first : first + RENEW_BATCH]
        now, lifetime = time.time(), key_lifetime()
        async with redis_store.async_client().pipeline(transaction=False) as pipe:
            for room in batch:
                key = redis_store.presence(room)
                until = now + settings.CHAT_PRESENCE_TTL
                pipe.eval(RENEW, 1, key, until, now, lifetime, *rooms[room])
                pipe.eval(REAP, 1, key, now)
            answers = await pipe.execute()
        for n, room in enumerate(batch):
            rejoined, gone = answers[2 * n], answers[2 * n + 1]
            found[room] = (list(cast(list[str], rejoined)), list(cast(list[str], gone)))
    return found
