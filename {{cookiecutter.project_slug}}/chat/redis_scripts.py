"""What the project's renewal scripts in Redis share (``chat.presence``, ``chat.socket_slots``).

A process renews the Redis entries of all its sockets together, a thousand or so per
script call: one argument per set (a room's presence, a user's socket slots) holding its
members in one string, one a line (channel names and usernames hold no line break), so
that the client encodes a few strings, not thousands. ``batches`` cuts the sets into such
calls; a script's Lua starts with ``LUA`` (Redis scripts cannot import), whose ``lines``
splits an argument back into members and ``zadd_all`` scores them all.
"""

from collections.abc import Collection, Iterator, Mapping
from typing import TypeVar

# Members per ZADD or ZMSCORE inside a script: Lua's unpack() takes a few thousand values.
CHUNK = 500

LUA = (
    """
local CHUNK = """
    + str(CHUNK)
    + """
local function lines(s)
    local found = {}
    for m in string.gmatch(s, '[^\\n]+') do found[#found + 1] = m end
    return found
end
-- ZADD every one of members with the same score, CHUNK at a time; flag: 'XX' or nil.
local function zadd_all(key, flag, score, members)
    for s = 1, #members, CHUNK do
        local args = {}
        if flag then args[1] = flag end
        for i = s, math.min(s + CHUNK - 1, #members) do
            args[#args + 1] = score
            args[#args + 1] = members[i]
        end
        redis.call('ZADD', key, unpack(args))
    end
end
"""
)

Name = TypeVar("Name")


def batches(sets: Mapping[Name, Collection[str]], size: int) -> Iterator[list[tuple[Name, str]]]:
    """``sets`` (name -> members) in batches of whole sets, each batch closed once it holds
    ``size`` members or more; each set as its name and its members joined one a line."""
    batch: list[tuple[Name, str]] = []
    count = 0
    for name, members in sets.items():
        batch.append((name, "\n".join(members)))
        count += len(members)
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch
