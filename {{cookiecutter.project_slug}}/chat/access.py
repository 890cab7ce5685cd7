"""Who may join which room: the WebSocket side's mirror of the rooms table.

PostgreSQL holds the truth (``chat.models``: Room, Membership), written by the HTTP API and
the admin through ``chat.rooms``. The WebSocket side never reads it: it reads this mirror,
one Redis hash with a field per private room, listing its members' ids. ``chat.rooms``
rewrites a room's field after every change to it, and installs a whole new mirror built
from the database after ``migrate``, on ``manage.py rooms_mirror``, and whenever the worker
finds the mirror gone (``chat.sweep``).

A room with no field is public, so an empty mirror would let anyone in anywhere. The mirror
therefore says when it is complete: a ``ready`` field, written by a full rebuild in the same
atomic RENAME that installs it. A mirror without it (Redis lost the key, or nothing has
built it yet) answers ``UNKNOWN``, and the consumer refuses: a lost mirror fails closed,
never open, until it is rebuilt.
"""

import enum
import json
import time
import uuid
from typing import cast

from django.conf import settings

from chat import redis_store

READY = "ready"
REBUILD_TASK = "chat.rebuild_room_mirror"  # chat.tasks: the worker rebuilds on request
DRAFT_TTL = 600  # a rebuild that dies half-way leaves its draft for this long


class Verdict(enum.Enum):
    ALLOWED = "allowed"  # a public room, or a member of a private one
    NOT_A_MEMBER = "not a member"  # a private room that does not list the user
    REVOKED = "revoked"  # the socket's credential has no record any more
    UNKNOWN = "unknown"  # no complete mirror: nobody can tell, so nobody gets in


def field(room: str) -> str:
    return f"room:{room}"


def decide(ready: str | None, members: str | None, user_id: int) -> Verdict:
    if ready is None:
        return Verdict.UNKNOWN
    if members is None:
        return Verdict.ALLOWED
    return Verdict.ALLOWED if user_id in json.loads(members) else Verdict.NOT_A_MEMBER


# --- The WebSocket side: read (async client) ----------------------------------------------


async def check(room: str, user_id: int) -> Verdict:
    """May ``user_id`` be in ``room``? One HMGET."""
    client = redis_store.async_client()
    ready, members = await client.hmget(redis_store.room_mirror(), [READY, field(room)])
    return decide(cast(str | None, ready), cast(str | None, members), user_id)


async def admission(credential: str, user_id: int, room: str) -> Verdict:
    """``check``, and whether the socket's credential is still alive, in one round trip."""
    async with redis_store.async_client().pipeline(transaction=False) as pipe:
        pipe.exists(redis_store.identity_record(credential))
        pipe.hmget(redis_store.room_mirror(), [READY, field(room)])
        alive, (ready, members) = await pipe.execute()
    return decide(ready, members, user_id) if alive else Verdict.REVOKED


# --- The HTTP side: write (blocking client; called by chat.rooms only) --------------------


def publish(room: str, members: list[int] | None) -> None:
    """Mirror one room: the ids of a private room's members, or None for a public room."""
    mirror = redis_store.room_mirror()
    with redis_store.client().pipeline(transaction=True) as pipe:
        if members is None:
            pipe.hdel(mirror, field(room))
        else:
            pipe.hset(mirror, field(room), json.dumps(sorted(members)))
        # A mirror lost and not yet rebuilt has no "ready": this field alone admits nobody.
        pipe.expire(mirror, settings.CHAT_ROOM_MIRROR_TTL, nx=True)
        pipe.execute()


def install(private_rooms: dict[str, list[int]]) -> None:
    """Replace the whole mirror, atomically, by these private rooms and their members."""
    client = redis_store.client()
    draft = redis_store.room_mirror_draft(uuid.uuid4().hex)
    fields = {field(room): json.dumps(sorted(ids)) for room, ids in private_rooms.items()}
    with client.pipeline(transaction=False) as pipe:
        names = list(fields)
        for start in range(0, len(names), 1000):
            pipe.hset(draft, mapping={name: fields[name] for name in names[start : start + 1000]})
        pipe.hset(draft, READY, str(time.time()))
        pipe.expire(draft, DRAFT_TTL)
        pipe.execute()
    with client.pipeline(transaction=True) as pipe:
        pipe.rename(draft, redis_store.room_mirror())
        pipe.expire(redis_store.room_mirror(), settings.CHAT_ROOM_MIRROR_TTL)
        pipe.delete(redis_store.room_mirror_rebuild_requested())
        pipe.execute()


def is_ready() -> bool:
    return bool(redis_store.client().hexists(redis_store.room_mirror(), READY))


def keep() -> bool:
    """Push the complete mirror's expiry back (the worker calls this now and then);
    False if there is no complete mirror to keep."""
    client = redis_store.client()
    if not client.hexists(redis_store.room_mirror(), READY):
        return False
    client.expire(redis_store.room_mirror(), settings.CHAT_ROOM_MIRROR_TTL)
    return True


def request_rebuild() -> bool:
    """True if no rebuild was already requested in the last minute: the caller queues one."""
    requested = redis_store.room_mirror_rebuild_requested()
    return bool(redis_store.client().set(requested, 1, nx=True, ex=60))
