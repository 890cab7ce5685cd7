"""Hand over again the accepted messages the broker lost.

Celery's Redis transport takes a batch off the queue and records it as unacknowledged in
two steps (celery/kombu#305): a worker killed between the two loses that batch, although
its senders were told it was accepted. The pending store (``chat.receipts``) still has every
such message, so the worker's main process looks there now and then for messages pending
far longer than a batch ever takes (``CHAT_PENDING_SWEEP_AFTER``) and publishes them as one
more batch. Storage is idempotent: a message that was merely slow is not stored twice.
"""

import logging

from celery import bootsteps
from django.conf import settings

from chat import receipts
from chat.handoff import PERSIST_TASK
from config.celery import app

logger = logging.getLogger(__name__)


def requeue_overdue() -> int:
    records = receipts.overdue(
        settings.CHAT_PENDING_SWEEP_AFTER, limit=settings.CHAT_HANDOFF_MAX_BATCH
    )
    if records:
        logger.warning("Handing over again %d accepted messages still not stored", len(records))
        app.send_task(PERSIST_TASK, args=[records])
    return len(records)


class PendingSweep(bootsteps.StartStopStep):
    """A worker bootstep: ``requeue_overdue`` every ``CHAT_PENDING_SWEEP_INTERVAL`` seconds."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def start(self, worker):
        self.timer_entry = worker.timer.call_repeatedly(
            settings.CHAT_PENDING_SWEEP_INTERVAL, self.sweep, priority=10
        )

    def stop(self, worker):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    @staticmethod
    def sweep():
        try:
            requeue_overdue()
        except Exception:  # Redis or the broker away: the next sweep tries again
            logger.warning("Pending sweep failed", exc_info=True)
