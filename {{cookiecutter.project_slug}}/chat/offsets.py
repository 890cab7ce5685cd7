"""Offsets: each room's messages numbered 1, 2, 3... by Redis, and the recent window.

A client that reconnects asks for what came after the last offset it saw
(``after_offset=``) and gets exactly the messages it missed: no clock is involved, so two
servers whose clocks disagree cannot make it miss or repeat one. The consumer takes the next
offset of the room as it fans a message out (``assign``), in one round trip that also
appends the message to the room's recent window: the latest ``CHAT_RECENT_WINDOW``
messages, kept ``CHAT_RECENT_SECONDS`` after the room's last one. The history API answers
from PostgreSQL for what is stored and from the window for the rest (``chat.history``), so
the answer is complete whether the worker is running or not.

Offsets are strictly increasing within a room, not always consecutive: a message whose
fan-out failed leaves its number unused. A client that sees a jump asks once; an empty
answer means the number was never used.

The counters are a mirror of what PostgreSQL holds, and handing out a number twice would
break the promise, so after Redis lost them they are not restarted from 1: ``assign``
refuses (the sender hears ``unavailable``) until ``seed`` has set every room's counter to at
least its highest stored offset. ``seed`` runs after ``migrate`` (``chat.apps``), from the
worker whenever the counters are missing (``chat.sweep``), and as ``manage.py
seed_offsets``.
"""

import json
from typing import cast

from django.conf import settings
from redis.exceptions import ResponseError

from chat import redis_store

# One round trip, atomic: the room's next offset, and the message in its recent window.
ASSIGN = """
if redis.call('HEXISTS', KEYS[1], ARGV[4]) == 0 then
    return redis.error_reply('NOSEED offsets not seeded from PostgreSQL')
end
local offset = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('ZADD', KEYS[2], offset, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[2], ARGV[5])
return offset
"""

# Raise rooms' counters to at least the stored maximum; never lower one.
RAISE = """
for i = 1, #ARGV, 2 do
    local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
    if current < tonumber(ARGV[i + 1]) then
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
end
return 1
"""
SEED_CHUNK = 500  # rooms per round trip


class NotSeeded(Exception):
    """The counters are missing (Redis lost them): no offset until they are seeded."""


def window_entry(message: dict) -> str:
    """How a message sits in the window: its frame's fields, the offset being the score."""
    return json.dumps(message, ensure_ascii=False, sort_keys=True)


async def assign(message: dict) -> int:
    """The room's next offset for ``message`` (without one yet), now in the window too."""
    client = redis_store.async_client()
    try:
        offset = await client.eval(
            ASSIGN,
            2,
            redis_store.room_offsets(),
            redis_store.recent_messages(message["room"]),
            message["room"],
            window_entry(message),
            settings.CHAT_RECENT_WINDOW,
            redis_store.OFFSETS_SEEDED,
            settings.CHAT_RECENT_SECONDS,
        )
    except ResponseError as error:
        if str(error).startswith("NOSEED"):
            raise NotSeeded from None
        raise
    return int(offset)


async def withdraw(message: dict) -> None:
    """Take a message whose fan-out failed out of the window (its offset stays unused)."""
    await redis_store.async_client().zrem(
        redis_store.recent_messages(message["room"]), window_entry(message)
    )


def recent(room: str, after: int) -> list[dict]:
    """The window's messages with an offset above ``after``, oldest first."""
    entries = redis_store.client().zrangebyscore(
        redis_store.recent_messages(room), f"({after}", "+inf", withscores=True
    )
    return [
        {**json.loads(entry), "offset": int(score)}
        for entry, score in cast(list[tuple[str, float]], entries)
    ]


def is_seeded() -> bool:
    return bool(
        redis_store.client().hexists(redis_store.room_offsets(), redis_store.OFFSETS_SEEDED)
    )


def seed(highest: dict[str, int]) -> None:
    """Raise the counters to PostgreSQL's highest offset per room, then mark them seeded."""
    client, counters = redis_store.client(), redis_store.room_offsets()
    rooms = list(highest.items())
    for first in range(0, len(rooms), SEED_CHUNK):
        pairs = [value for room, top in rooms[first : first + SEED_CHUNK] for value in (room, top)]
        client.eval(RAISE, 1, counters, *pairs)
    client.hset(counters, redis_store.OFFSETS_SEEDED, 1)
