"""Who is in a room, across every server process: Redis entries that expire, no database.

Each socket in a room holds one entry in the room's presence set, ``<channel>|<username>``,
scored with the time it runs out. Its process renews the entries of all its sockets
together (``chat.heartbeat``); a process that dies renews nothing, and its entries run out
within ``CHAT_PRESENCE_TTL``.

A user joins a room with their first live socket there and leaves with their last. ``join``
and ``leave`` say whether this socket was that first or last one, and ``renew_and_reap``
removes the entries that ran out and says whose last entry went with them, so that a
process still in the room can announce it. Each runs as one Lua script: two sockets racing
never both announce, and an entry that ran out is reaped by exactly one process.
"""

import time
from typing import cast

from django.conf import settings

from chat import redis_scripts, redis_store

RENEW_BATCH = 1000  # entries per script call of renew_and_reap (whole rooms: may hold more)

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

# For many rooms in one call: renew the entries (an entry that was reaped meanwhile is added
# back, and its user announced as rejoining if no other entry of theirs is live), then reap
# the entries that ran out. KEYS: the rooms' sets; ARGV: the entries' new expiry, now, the
# sets' lifetime, then for each room its entries in one string, one a line (channel names and
# usernames hold no line break). A room whose entries are all there (the usual case) is
# renewed with one ZMSCORE and one ZADD per CHUNK; a room missing some goes entry by entry,
# so that a user with several entries rejoins once. Returns only what there is to announce,
# flat: room index (1-based), 1 for a rejoin or 0 for a leave, user.
RENEW_AND_REAP = (
    redis_scripts.LUA
    + USER_OF
    + """
local expiry, now, lifetime = ARGV[1], ARGV[2], ARGV[3]
local found = {}
local function announce(k, rejoined, user)
    found[#found + 1] = k
    found[#found + 1] = rejoined
    found[#found + 1] = user
end
for k, key in ipairs(KEYS) do
    local entries = lines(ARGV[k + 3])
    local missing = false
    for s = 1, #entries, CHUNK do
        local last = math.min(s + CHUNK - 1, #entries)
        local scores = redis.call('ZMSCORE', key, unpack(entries, s, last))
        for i = 1, last - s + 1 do
            if not scores[i] then missing = true end
        end
    end
    if missing then
        local seen = {}
        for _, e in ipairs(entries) do
            if not redis.call('ZSCORE', key, e) then
                local user, others = user_of(e), 0
                for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
                    if user_of(m) == user then others = others + 1 end
                end
                if others == 0 and not seen[user] then
                    seen[user] = true
                    announce(k, 1, user)
                end
            end
            redis.call('ZADD', key, expiry, e)
        end
    else
        zadd_all(key, nil, expiry, entries)
    end
    redis.call('EXPIRE', key, lifetime)
    local expired = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. now)
    if #expired > 0 then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. now)
        local live, seen = {}, {}
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
            live[user_of(m)] = true
        end
        for _, m in ipairs(expired) do
            local user = user_of(m)
            if not live[user] and not seen[user] then
                seen[user] = true
                announce(k, 0, user)
            end
        end
    end
end
return found
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
    expiry of the entries, then remove the room's entries that ran out. The rooms where
    there is something to announce, each with the users who rejoined it (their entries had
    been reaped meanwhile: the process stalled past the TTL) and the users who left it with
    the entries reaped.

    ``rooms`` may be the heartbeat's own members: they are read before the first await, so
    sockets coming and going meanwhile change nothing here.

    One script call (``RENEW_AND_REAP``, sent by its SHA) per ``RENEW_BATCH`` entries, one
    argument per room, and the answer holds only what there is to announce. Two scripts per
    room, each sent whole with all its entries, in a pipeline, cost a process with 10,000
    idle sockets in 500 rooms about 1,000 commands, 20,000 arguments and their replies per
    renewal, and the garbage collector the objects that go with them: much of what
    separated its idle CPU from a bare consumer's (docs/benchmark.md, "Sockets").
    """
    script = redis_store.async_client().register_script(RENEW_AND_REAP)
    found: dict[str, tuple[list[str], list[str]]] = {}
    for batch in redis_scripts.batches(rooms, RENEW_BATCH):
        names = [room for room, _ in batch]
        keys = [redis_store.presence(room) for room in names]
        now = time.time()
        head = [now + settings.CHAT_PRESENCE_TTL, now, key_lifetime()]
        answer = cast(list, await script(keys=keys, args=[*head, *(e for _, e in batch)]))
        for n in range(0, len(answer), 3):
            room = names[int(answer[n]) - 1]
            rejoined, gone = found.setdefault(room, ([], []))
            (rejoined if int(answer[n + 1]) else gone).append(answer[n + 2])
    return found
