"""The persistence queue, from the publishing side: one Celery task per batch of messages.

``publish`` is the hand-off's publisher unless ``CHAT_HANDOFF_PUBLISHER`` names another
(``chat.handoff``): it writes the batch to the pending store, then to the broker, and
returns once the broker has it. The worker's pending sweep hands batches over again with
``send`` (``chat.sweep``); the worker's side of the queue is ``chat.tasks``.
"""

import time

from django.conf import settings

from chat import pending
from config.celery import app

PERSIST_TASK = "chat.persist_messages"
PERSIST_QUEUE = settings.CELERY_TASK_ROUTES[PERSIST_TASK]["queue"]
PUBLISHED_AT = "published_at"  # a header of every batch: see send()
SEED_OFFSETS_TASK = "chat.seed_offsets"


def send(records: list[dict], published_at: float | None = None) -> None:
    """Publish one batch as one task; returns once the broker has it (or raises). The task
    carries when it was published (its messages' time in the pending store): the sweep
    reads it off the oldest batch waiting in the queue (``chat.unacked``)."""
    published_at = time.time() if published_at is None else published_at
    app.send_task(PERSIST_TASK, args=[records], headers={PUBLISHED_AT: published_at})


def ask_for_offset_seeding() -> None:
    """A worker child seeds the rooms' offset counters from PostgreSQL (``chat.offsets``)."""
    app.send_task(SEED_OFFSETS_TASK)


def publish(records: list[dict]) -> None:
    """Hand one batch to the worker: pending store first, so that every message a sender
    hears is accepted can be shown back to them (``chat.receipts``) before it is stored."""
    send(records, published_at=pending.remember(records))
