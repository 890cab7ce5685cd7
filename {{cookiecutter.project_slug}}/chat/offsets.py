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
refuses (the sender hears ``unavailable``) until ``seed`` has set them again. ``seed`` runs
after ``migrate`` (``chat.apps``), from the worker whenever the counters are missing
(``chat.sweep``), and as ``manage.py seed_offsets``.

PostgreSQL is not the whole story after a loss: batches accepted before it may still be on
their way to the worker (held by a worker that died, waiting for a retry, in a broker that
survived), carrying offsets above what is stored. So seeding counters that were lost starts
every room ``RESEED_GAP`` past its highest stored offset, and a room with none stored past
``RESEED_GAP``: the numbers in between may belong to messages still on their way, and are
never handed out again. A client sees one jump, asks once, and gets those messages as they
are stored. Seeding counters that are still there only ever raises them.
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
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
    redis.call('HSET', KEYS[1], ARGV[1], redis.call('HGET', KEYS[1], ARGV[6]) or 0)
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
# More offsets than one room can have accepted and not yet stored at once: a day of a
# room's traffic at 10 messages a second.
RESEED_GAP = 1_000_000


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
            redis_store.OFFSETS_BASE,
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


def seed(highest: dict[str, int], lost: bool | None = None) -> None:
    """Raise the counters to PostgreSQL's highest offset per room (``highest``), then mark
    them seeded. If they were ``lost`` (by default: a database that has messages, and no
    counters), ``RESEED_GAP`` further, for every room (see the module's docstring)."""
    client, counters = redis_store.client(), redis_store.room_offsets()
    if lost is None:
        lost = bool(highest) and not is_seeded()
    gap = RESEED_GAP if lost else 0
    rooms = list(highest.items())
    for first in range(0, len(rooms), SEED_CHUNK):
        pairs = [
            value for room, top in rooms[first : first + SEED_CHUNK] for value in (room, top + gap)
        ]
        client.eval(RAISE, 1, counters, *pairs)
    if gap:
        client.eval(RAISE, 1, counters, redis_store.OFFSETS_BASE, gap)
    client.hset(counters, redis_store.OFFSETS_SEEDED, 1)
