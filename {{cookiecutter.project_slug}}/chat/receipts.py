"""Write receipts: proof, handed to a sender, that the server accepted their message.

A receipt is small and signed (Django's signing, with a timestamp for expiry): it names the
user, the room and the message id, nothing more, so twenty of them fit in one request
header. The message itself waits in Redis, in the pending store, written with its batch
before the batch is published. Shown back to the history API (``X-Write-Receipts``), a
receipt lets its user see their own message before the worker has stored it.

The pending store is also the system's record of what it owes: every accepted message is
there until it is stored. An index of it, ordered by when each batch was published, lets the
worker find messages still unstored long after they should have been (``overdue``, used by
``chat.sweep``) and hand them to the queue again.
"""

import functools
import time

import redis
from django.conf import settings
from django.core import signing
from django.core.cache import cache

SALT = "chat.receipts"
MAX_PER_REQUEST = 100  # receipts read from one X-Write-Receipts header; the rest are ignored


def issue(message: dict, user_id: int) -> str:
    """The receipt for ``message``, valid for its sender in its room only."""
    return signing.dumps({"u": user_id, "r": message["room"], "i": message["id"]}, salt=SALT)


def verified_ids(header: str, user_id: int, room: str) -> list[str]:
    """Message ids named by the valid receipts in ``header`` for this user and room.

    Receipts issued to someone else, for another room, forged, truncated or expired are
    ignored, never an error.
    """
    ids = []
    for receipt in header.split(",")[:MAX_PER_REQUEST]:
        try:
            claim = signing.loads(receipt.strip(), salt=SALT, max_age=settings.CHAT_RECEIPT_MAX_AGE)
        except signing.BadSignature:  # includes SignatureExpired
            continue
        if isinstance(claim, dict) and claim.get("u") == user_id and claim.get("r") == room:
            ids.append(claim["i"])
    return ids


def pending_key(message_id: str) -> str:
    return f"chat:pending:{message_id}"


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def pending_index() -> str:
    return f"{settings.PROJECT_SLUG}:pending"


def remember_pending(records: list[dict]) -> None:
    """Keep accepted messages where the history API finds them until they are stored."""
    cache.set_many(
        {pending_key(r["id"]): r for r in records}, timeout=settings.CHAT_RECEIPT_MAX_AGE
    )
    now = time.time()
    _redis(settings.REDIS_URL).zadd(pending_index(), {r["id"]: now for r in records})


def pending(message_ids: list[str]) -> list[dict]:
    found = cache.get_many([pending_key(i) for i in message_ids])
    return list(found.values())


def forget_pending(message_ids: list[str]) -> None:
    """Called once the messages are committed: from now on the history finds them stored."""
    if message_ids:
        cache.delete_many([pending_key(i) for i in message_ids])
        _redis(settings.REDIS_URL).zrem(pending_index(), *message_ids)


def overdue(older_than: float, limit: int) -> list[dict]:
    """Pending messages published more than ``older_than`` seconds ago, oldest first.

    Each one returned is stamped with the current time, so that the next call leaves it
    alone for another ``older_than`` seconds: a message still in a long queue is handed
    over again at most once per period, and storing it twice is harmless anyway.
    """
    client = _redis(settings.REDIS_URL)
    now = time.time()
    ids = [
        i.decode()
        for i in client.zrangebyscore(pending_index(), "-inf", now - older_than, 0, limit)
    ]
    if not ids:
        return []
    client.zadd(pending_index(), {i: now for i in ids}, xx=True)
    records = pending(ids)
    expired = set(ids) - {record["id"] for record in records}
    if expired:  # outlived CHAT_RECEIPT_MAX_AGE: nothing left to hand over
        client.zrem(pending_index(), *expired)
    return records
