"""Hand over again the accepted messages the broker lost.

Celery's Redis transport takes a batch off the queue and records it as unacknowledged in
two steps (celery/kombu#305): a worker killed between the two loses that batch, although
its senders were told it was accepted. The pending store (``chat.pending``) still has every
such message, so the worker's main process looks there every few seconds for messages
pending longer than a batch takes (``CHAT_PENDING_SWEEP_AFTER``) that the broker holds
neither in the queue nor unacknowledged (``chat.unacked``), and publishes them as one more
batch. Storage is idempotent: a message that was merely slow is not stored twice.

The same process also keeps the WebSocket side's mirrors of the database: every
``CHAT_ROOM_MIRROR_CHECK_INTERVAL`` seconds it pushes back the room mirror's expiry
(``chat.access``), or, if it is gone (Redis lost it), queues one rebuild from the database,
which a worker child runs within the connection budget (``chat.tasks``); likewise it has
the rooms' offset counters seeded again when they are gone (``chat.offsets``). Until then
the room mirror fails closed, and no offset is handed out.

``config/celery.py`` adds both to the worker as bootsteps.
"""

import logging

from celery import bootsteps
from django.conf import settings

from chat import access, offsets, pending, queue, unacked
from config.celery import app

logger = logging.getLogger(__name__)


def requeue_overdue() -> int:
    """Hand over again the messages pending longer than ``CHAT_PENDING_SWEEP_AFTER`` that
    the broker does not hold (``chat.unacked``): published before the oldest batch still
    waiting in the queue (so no longer in it), and not taken by a worker. A worker behind a
    long queue does not delay the repair, nor is the queue handed over a second time."""
    waiting_since = unacked.oldest_waiting()  # before held(): a batch moves queue -> held
    held = unacked.held()
    records = [
        record
        for record in pending.overdue(
            settings.CHAT_PENDING_SWEEP_AFTER,
            limit=settings.CHAT_HANDOFF_MAX_BATCH,
            published_before=waiting_since,
        )
        if (record["author_id"], record["id"]) not in held
    ]
    if records:
        logger.warning("Handing over again %d accepted messages still not stored", len(records))
        queue.send(records)
    return len(records)


class Periodic(bootsteps.StartStopStep):
    """A worker bootstep that runs ``run`` every ``interval()`` seconds on the worker's
    timer, in its main process; a failed round is logged, and the next one tries again."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def interval(self) -> float:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def start(self, worker):
        self.timer_entry = worker.timer.call_repeatedly(self.interval(), self.safely, priority=10)

    def stop(self, worker):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    def safely(self) -> None:
        try:
            self.run()
        except Exception:  # Redis or the broker away: the next round tries again
            logger.warning("%s failed", type(self).__name__, exc_info=True)


class PendingSweep(Periodic):
    """``requeue_overdue`` every ``CHAT_PENDING_SWEEP_INTERVAL`` seconds."""

    def interval(self) -> float:
        return settings.CHAT_PENDING_SWEEP_INTERVAL

    def run(self) -> None:
        requeue_overdue()


def keep_offsets() -> bool:
    """Queue the seeding of the rooms' offset counters if Redis lost them; True if queued.
    Until a worker child has seeded them (from PostgreSQL, within its budget: the main
    process holds no connection), senders hear "unavailable" (``chat.offsets``)."""
    if offsets.is_seeded():
        return False
    logger.warning("The offset counters are missing: queued their seeding from the database")
    queue.ask_for_offset_seeding()
    return True


def keep_room_mirror() -> bool:
    """Keep the mirror, or queue its rebuild; True if a rebuild was queued."""
    if access.keep() or not access.request_rebuild():
        return False
    logger.warning("The room mirror is missing: queued a rebuild from the database")
    app.send_task(access.REBUILD_TASK)
    return True


class MirrorWatch(Periodic):
    """``keep_room_mirror`` and ``keep_offsets`` every ``CHAT_ROOM_MIRROR_CHECK_INTERVAL``
    seconds."""

    def interval(self) -> float:
        return settings.CHAT_ROOM_MIRROR_CHECK_INTERVAL

    def run(self) -> None:
        for keep in (keep_room_mirror, keep_offsets):
            try:
                keep()
            except Exception:  # one mirror's failure does not skip the other
                logger.warning("Mirror watch failed (%s)", keep.__name__, exc_info=True)
