"""The WebSocket side's mirrors of the database in Redis, and their rebuilding.

The WebSocket side decides from Redis alone: who may join a private room (the room mirror,
``chat.rooms``, read by ``chat.access``), and the number each message gets in its room (the
offset counters, ``chat.offsets``). The HTTP side, the worker and ``migrate``, which may query
PostgreSQL, keep those mirrors whole; until one is rebuilt after Redis lost it, the
WebSocket side fails closed (no join of a private room, no offset handed out).
"""

import logging

from django.db import DatabaseError
from django.db.models import Max
from redis.exceptions import RedisError

from chat import offsets, rooms
from chat.models import Message

logger = logging.getLogger(__name__)


def seed_offsets(lost: bool | None = None) -> int:
    """Raise every room's counter to its highest stored offset (past the gap if they were
    ``lost``: ``chat.offsets``); the number of rooms."""
    highest = dict(
        Message.objects.filter(offset__isnull=False)
        .values("room")
        .annotate(top=Max("offset"))
        .values_list("room", "top")
    )
    offsets.seed(highest, lost)
    return len(highest)


# Each mirror: how to rebuild it, and the command that does it by hand.
REBUILDS = {
    "the room mirror": (rooms.rebuild_mirror, "rooms_mirror"),
    "the offset counters": (seed_offsets, "seed_offsets"),
}


def rebuild_after_migrate(**kwargs) -> None:
    """``post_migrate`` (and every flush of the test suite): the tables are in place, so
    are the mirrors, from the database as it now is. Redis away is a warning, not a failed
    migration: the worker rebuilds them once it is back (``chat.sweep``)."""
    for name, (rebuild, command) in REBUILDS.items():
        try:
            rebuild()
        except (RedisError, OSError, DatabaseError) as exc:
            logger.warning("%s was not rebuilt (%s): run manage.py %s", name, exc, command)
