"""The persistence worker's task: store a batch, then tell the senders.

Delivery is at least once (``CELERY_TASK_ACKS_LATE``, ``CELERY_TASK_REJECT_ON_WORKER_LOST``):
a batch is acknowledged only after its transaction commits, and comes back if the worker
dies first. The batches queued behind it are taken along, into the same statement, on the
same terms (``chat.queued``). ``chat.persistence`` makes a second delivery harmless.
Database errors (the server restarting, the pool timing out, a connection broken
mid-COMMIT) and a run past the soft time limit retry with exponential backoff, forever: a
batch the broker accepted is never dropped. The backoff stops growing at
``CHAT_PERSIST_RETRY_MAX`` seconds, since a retry waits in the worker with its batch
unacknowledged, and the broker hands such a batch out again after its visibility
timeout (``config/settings.py`` shows how the timeouts fit together).

What the worker process does around its tasks (returning connections to the pool, closing
it at exit, metrics, the pending sweep) is wired in ``config/celery.py``.
"""

import logging
from datetime import UTC, datetime

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django import db
from django.conf import settings
from psycopg_pool import PoolTimeout

from chat import access, mirrors, notifications, pending, queued, redis_store, rooms
from chat.persistence import store_batch
from chat.queue import PERSIST_QUEUE, PERSIST_TASK, SEED_OFFSETS_TASK
from ops import live, metrics

logger = logging.getLogger(__name__)

# Whatever the database raises retries the batch, except a refusal of the batch's own rows,
# which store_batch dead-letters: a failed task is acknowledged, and its batch would be gone
# (the pending sweep would find it only after CHAT_PENDING_SWEEP_AFTER). Not only
# OperationalError: a session terminated during COMMIT behind PgBouncer raised psycopg's
# InternalError ("received 2 results from command 'COMMIT'").
RETRY_FOR = (db.Error, PoolTimeout)
NOT_RETRIED = (db.DataError, db.IntegrityError)


@shared_task(
    bind=True,
    name=PERSIST_TASK,
    autoretry_for=(*RETRY_FOR, SoftTimeLimitExceeded),
    dont_autoretry_for=NOT_RETRIED,
    retry_backoff=1,  # 1, 2, 4... seconds (Celery rounds any factor below 1 up to 1)
    retry_backoff_max=settings.CHAT_PERSIST_RETRY_MAX,
    max_retries=None,
    soft_time_limit=settings.CHAT_PERSIST_SOFT_TIME_LIMIT,
    time_limit=settings.CHAT_PERSIST_TIME_LIMIT,
)
def persist_messages(self, records: list[dict]) -> dict:
    # A database that cannot be reached fails this batch before others are taken along. A
    # batch run eagerly (tests, CELERY_TASK_ALWAYS_EAGER) did not come from the queue.
    db.connection.ensure_connection()
    room = 0 if self.request.is_eager else settings.CHAT_PERSIST_GATHER - len(records)
    behind = queued.take(PERSIST_TASK, PERSIST_QUEUE, room)
    try:
        result = store_batch(records + behind.records)
    except BaseException:
        behind.give_back()  # and this batch retries, or fails, as it would have alone
        raise
    behind.ack()
    lags = count_stored(result.stored, len(result.dead))
    # Dead letters are done with too: parked for a human, not for the pending sweep; and so
    # are the messages of deleted users, discarded with their authors. The pending entries
    # and the panel's lag sample go in one round trip.
    try:
        with redis_store.client().pipeline(transaction=False) as pipe:
            pending.forget(
                result.stored
                + result.discarded
                + [letter.record for letter in result.dead if well_formed(letter.record)],
                pipe,
            )
            live.record_persist_lag(lags, pipe)
            pipe.execute()
    except redis.RedisError:
        # The batch is committed: retrying it would not help. Its pending entries stay for
        # the sweep (chat.sweep), which hands them over again and finds them stored.
        logger.warning("Could not forget %d stored messages", len(result.stored), exc_info=True)
    try:
        notifications.notify_persisted(result.stored)
    except Exception:
        # The messages are committed; a sender that misses "persisted" still has its
        # receipt, and the history API shows the message as stored.
        logger.warning(
            "Could not notify senders of %d stored messages", len(result.stored), exc_info=True
        )
    return {"stored": len(result.stored), "dead": len(result.dead)}


# The two repairs below are asked for again by the worker's watch (chat.sweep) as long as
# they are needed, so they are acknowledged on receipt: a long run (many rooms) must not be
# handed to a second worker when the broker's short visibility timeout runs out.
@shared_task(name=SEED_OFFSETS_TASK, acks_late=False)
def seed_offsets() -> int:
    """Seed the rooms' offset counters from PostgreSQL (``chat.offsets``), in a worker child,
    through its bounded pool: the sweep asks for this when Redis has lost them."""
    return mirrors.seed_offsets()


def well_formed(record) -> bool:
    """Whether a dead letter's record names an author and an id (its pending entry)."""
    return isinstance(record, dict) and {"author_id", "id"} <= record.keys()


def count_stored(stored: list[dict], dead: int) -> list[float]:
    """Count a batch in the metrics; returns its messages' lags, sent_at to commit."""
    committed = datetime.now(UTC)
    metrics.MESSAGES_PERSISTED.inc(len(stored))
    metrics.DEAD_LETTERS.inc(dead)
    lags = [(committed - datetime.fromisoformat(r["sent_at"])).total_seconds() for r in stored]
    for lag in lags:
        metrics.PERSIST_LAG_SECONDS.observe(lag)
    return lags


@shared_task(
    name=access.REBUILD_TASK,
    acks_late=False,
    autoretry_for=RETRY_FOR,
    dont_autoretry_for=NOT_RETRIED,
    retry_backoff=1,
    retry_backoff_max=settings.CHAT_PERSIST_RETRY_MAX,
    max_retries=10,
)
def rebuild_room_mirror() -> int:
    """Rebuild the WebSocket side's room mirror from the database (requested by the
    worker's watch, ``chat.sweep``, when the mirror is gone)."""
    return rooms.rebuild_mirror()
