"""The persistence worker's task: store a batch, then tell the senders.

Delivery is at least once (``CELERY_TASK_ACKS_LATE``, ``CELERY_TASK_REJECT_ON_WORKER_LOST``):
a batch is acknowledged only after its transaction commits, and comes back if the worker
dies first. ``chat.persistence`` makes the second delivery harmless. Database errors (the
server restarting, the pool timing out) retry with exponential backoff, forever: a batch the
broker accepted is never dropped.
"""

import asyncio
import logging
from datetime import UTC, datetime

from celery import shared_task, signals
from channels.layers import get_channel_layer
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from psycopg_pool import PoolTimeout

from chat import receipts
from chat.handoff import PERSIST_TASK
from chat.persistence import store_batch
from ops import metrics, worker_metrics  # noqa: F401  (worker_metrics: its signal handlers)
from ops.pools import observe_pool

logger = logging.getLogger(__name__)

# The event loop that sends "persisted" notifications, one per worker process for its whole
# life (created on first use, so in the prefork child; prefork runs one task at a time per
# process, so one loop per process is enough). The channel layer keeps its Redis
# connections per event loop: ``async_to_sync`` would make a new loop, and so open new
# connections, for every batch; make bench measured that at several times the cost.
notifier = asyncio.Runner()


@shared_task(
    name=PERSIST_TASK,
    autoretry_for=(OperationalError, InterfaceError, PoolTimeout),
    retry_backoff=0.5,
    retry_backoff_max=30,
    max_retries=None,
)
def persist_messages(records: list[dict]) -> dict:
    result = store_batch(records)
    count_stored(result.stored, len(result.dead))
    # Dead letters are done with too: parked for a human, not for the pending sweep.
    receipts.forget_pending(
        [record["id"] for record in result.stored]
        + [str(letter.message_id) for letter in result.dead if letter.message_id]
    )
    try:
        notifier.run(notify_persisted(result.stored))
    except Exception:
        # The messages are committed; a sender that misses "persisted" still has its
        # receipt, and the history API shows the message as stored.
        logger.warning(
            "Could not notify senders of %d stored messages", len(result.stored), exc_info=True
        )
    return {"stored": len(result.stored), "dead": len(result.dead)}


def count_stored(stored: list[dict], dead: int) -> None:
    committed = datetime.now(UTC)
    metrics.MESSAGES_PERSISTED.inc(len(stored))
    metrics.DEAD_LETTERS.inc(dead)
    for record in stored:
        sent_at = datetime.fromisoformat(record["sent_at"])
        metrics.PERSIST_LAG_SECONDS.observe((committed - sent_at).total_seconds())


async def notify_persisted(records: list[dict]) -> None:
    """Send ``message.persisted`` to each sender's socket, if it is still there.

    The sends are independent, so they go out together rather than one round trip after
    another.
    """
    layer = get_channel_layer()
    await asyncio.gather(
        *(
            layer.send(record["reply_channel"], {"type": "message.persisted", "id": record["id"]})
            for record in records
            if record.get("reply_channel")
        )
    )


@signals.task_postrun.connect
def return_connections_to_pool(**kwargs):
    """Hand the task's connection back to the pool, as Django does at the end of a request.

    A connection broken by a database restart is discarded here; the pool's health check
    replaces it on the next task. The pool's figures then go to the metrics.
    """
    close_old_connections()
    observe_pool()


@signals.worker_process_shutdown.connect
def close_pool(**kwargs):
    """Close this child's pool so PostgreSQL sees a clean goodbye, not a dropped socket."""
    for connection in connections.all(initialized_only=True):
        connection.close()
    connections["default"].close_pool()
    notifier.close()
