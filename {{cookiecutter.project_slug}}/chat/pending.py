"""The pending store: every accepted message, kept in Redis until the worker has stored it.

The hand-off writes a batch here before publishing it (``chat.queue``), so every message a
sender hears is accepted is here or in PostgreSQL: the worker commits a batch, then forgets
it here. The history API reads it to show senders their own messages before the worker
has stored them (``chat.receipts``, ``chat.history``).

Entries are named by author and id (a message's identity): a message sent under another
author's id can neither replace nor clear the first author's entry, and a receipt reads
back its holder's own entries only.

It is also the system's record of what it owes. An index, ordered by when each batch was
published, lets the worker find messages still unstored long after they should have been
(``overdue``, used by ``chat.sweep``) and hand them to the queue again.
"""

import json
import time
from typing import cast

import redis
from django.conf import settings

from chat import redis_store


def member(record: dict) -> str:
    """A record's name in the store: its author and id, so that a message sent under another
    author's id can neither overwrite nor clear the first author's entry."""
    return redis_store.pending_member(record["author_id"], record["id"])


def remember(records: list[dict]) -> float:
    """Keep accepted messages where the history API finds them until they are stored;
    returns the time they are filed under in the index (their batch's publication)."""
    now = time.time()
    with redis_store.client().pipeline(transaction=False) as pipe:
        for record in records:
            pipe.set(
                redis_store.pending_message(member(record)),
                json.dumps(record),
                ex=settings.CHAT_RECEIPT_MAX_AGE,
            )
        pipe.zadd(redis_store.pending_index(), {member(record): now for record in records})
        pipe.execute()
    return now


def lookup(author_id: int, room: str, message_ids: list[str]) -> list[dict]:
    """The pending records of this author's messages with these ids in this room; ids
    already stored, never accepted, or someone else's are skipped."""
    records = fetch([redis_store.pending_member(author_id, i) for i in message_ids])
    return [record for record in records if record["room"] == room]


def fetch(members: list[str]) -> list[dict]:
    if not members:
        return []
    found = redis_store.client().mget([redis_store.pending_message(m) for m in members])
    return [json.loads(raw) for raw in found if raw is not None]


def forget(records: list[dict], pipe: redis.client.Pipeline | None = None) -> None:
    """Called once the messages are committed (or dead-lettered): from now on the history
    finds them stored. Each goes by its author and id: a record under another author's id
    clears only its own entry. With ``pipe``, the commands go out with the caller's (the
    worker sends all of a batch's bookkeeping in one round trip)."""
    members = [member(record) for record in records]
    if not members:
        return
    if pipe is None:
        with redis_store.client().pipeline(transaction=False) as own:
            forget(records, own)
            own.execute()
        return
    pipe.delete(*(redis_store.pending_message(m) for m in members))
    pipe.zrem(redis_store.pending_index(), *members)


def overdue(older_than: float, limit: int, published_before: float | None = None) -> list[dict]:
    """Pending messages published more than ``older_than`` seconds ago (and before
    ``published_before``, if given), oldest first.

    Each one returned is stamped with the current time, so that the next call leaves it
    alone for another ``older_than`` seconds: a message still in a long queue is handed
    over again at most once per period, and storing it twice is harmless anyway.
    """
    client = redis_store.client()
    index = redis_store.pending_index()
    now = time.time()
    cutoff = now - older_than
    if published_before is not None:
        cutoff = min(cutoff, published_before)
    members = cast(list[str], client.zrangebyscore(index, "-inf", f"({cutoff}", 0, limit))
    if not members:
        return []
    client.zadd(index, {m: now for m in members}, xx=True)
    records = fetch(members)
    expired = set(members) - {member(record) for record in records}
    if expired:  # outlived CHAT_RECEIPT_MAX_AGE: nothing left to hand over
        client.zrem(index, *expired)
    return records
