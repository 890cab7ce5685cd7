"""Hand accepted messages to the persistence queue: micro-batched, off the event loop.

Publishing to the broker is blocking network I/O, and one round trip per message does not
scale. So the ASGI process collects messages for at most ``CHAT_HANDOFF_MAX_DELAY`` (or
until ``CHAT_HANDOFF_MAX_BATCH`` are waiting), publishes them as one Celery task on a
dedicated thread, and only then tells each sender that its message is accepted. If the
publish fails, every sender in the batch hears so, and nothing was accepted.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from chat import receipts
from config.celery import app
from ops import metrics

logger = logging.getLogger(__name__)

PERSIST_TASK = "chat.persist_messages"


class Unavailable(Exception):
    """The broker did not take the batch: the sender must resend later, same id."""


def publish(records: list[dict]) -> None:
    """Publish one batch as one task; returns once the broker has it (or raises).

    The batch goes to the pending store first, so that every message a sender hears is
    accepted can be shown back to them (``chat.receipts``) before the worker stores it.
    """
    receipts.remember_pending(records)
    app.send_task(PERSIST_TASK, args=[records], retry=True)


class HandOff:
    """Collects records into batches; ``await submit(record)`` returns once it is published.

    One instance serves the whole process. A single publishing thread keeps the broker
    connection in one place and batches in order; while it is busy, new records gather
    into the next batch, so the batch size grows with the load on its own.
    """

    def __init__(
        self, publish=publish, max_batch: int | None = None, max_delay: float | None = None
    ):
        self._publish = publish
        self.max_batch = max_batch or settings.CHAT_HANDOFF_MAX_BATCH
        self.max_delay = settings.CHAT_HANDOFF_MAX_DELAY if max_delay is None else max_delay
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handoff")
        self._publishing: set[asyncio.Task] = set()  # strong references until done

    async def submit(self, record: dict) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((record, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_delay, self._flush)
        await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._publish_batch(batch))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish_batch(self, batch: list[tuple[dict, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        records = [record for record, _ in batch]
        metrics.HANDOFF_BATCH_SIZE.observe(len(records))
        started = time.perf_counter()
        try:
            await loop.run_in_executor(self._executor, self._publish, records)
        except Exception as exc:
            logger.warning("Hand-off of %d messages failed: %r", len(records), exc)
            metrics.HANDOFF_FAILURES.inc(len(records))
            outcome = Unavailable(str(exc))
        else:
            metrics.HANDOFF_SECONDS.observe(time.perf_counter() - started)
            outcome = None
        for _, future in batch:
            if future.done():  # the sender went away
                continue
            if outcome is None:
                future.set_result(None)
            else:
                future.set_exception(outcome)


handoff = HandOff()
