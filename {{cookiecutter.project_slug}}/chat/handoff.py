"""Hand accepted messages to the persistence queue: micro-batched, off the event loop.

Publishing to the broker is blocking network I/O, and one round trip per message does not
scale. So the ASGI process collects messages for at most ``CHAT_HANDOFF_MAX_DELAY`` (or
until ``CHAT_HANDOFF_MAX_BATCH`` are waiting), publishes them as one Celery task on a
dedicated thread, and only then tells each sender that its message is accepted. If the
publish fails, or has not returned within ``CHAT_HANDOFF_TIMEOUT`` seconds, every sender in
the batch hears so (``unavailable``), and nothing was accepted. (A publish that returns
after its deadline may still reach the worker: the senders resend with the same ids, and
storage is idempotent.) The broker's own connect and socket timeouts (config/settings.py)
keep a half-open broker connection from holding the publishing thread.

What publishing means is a setting, ``CHAT_HANDOFF_PUBLISHER``: the dotted path of a
function that takes a batch and returns once it is safe (``chat.queue.publish``: the
pending store, then the Celery broker). Like Channels' channel layer, the hand-off is built
from settings when first used (``get_handoff``), and built anew after a test changes them,
so that nothing needs patching to publish elsewhere (the benchmark's ceiling publishes
nowhere, a test to a broker that is down).

A batch, its timer and its waiting senders belong to the event loop they were made on, so
there is one hand-off per loop (``chat.per_loop``): on a server, one for the process's life;
in the test suite, one per test, so that a loop that closes inside the batch window takes
its batch and its dead timer with it instead of leaving them to hold the next loop's. The
publishing thread is the process's, shared by every loop's hand-off.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from chat.per_loop import PerLoop
from ops import metrics

logger = logging.getLogger(__name__)

# One thread publishes for the whole process, so the broker connection stays in one place
# and batches go out in order. It is not one per hand-off: a test suite makes a hand-off per
# test (per event loop), and would otherwise leave a thread behind for each.
_publishing_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handoff")


class Unavailable(Exception):
    """The broker did not take the batch: the sender must resend later, same id."""


class HandOff:
    """Collects records into batches; ``await submit(record)`` returns once it is published.

    One instance serves an event loop (``get_handoff``). A batch is due when its window
    (``max_delay``) closes; if this loop's previous batch is still being published then,
    the records go on gathering until it is done, and go out together: the publishing
    thread could not have taken them any sooner, and one task of many records costs the
    broker and the worker far less than many tasks of a few. So batches grow with the load
    (up to ``max_batch``) on their own.
    """

    def __init__(
        self,
        publish: Callable[[list[dict]], None],
        max_batch: int,
        max_delay: float,
        timeout: float,
    ):
        self._publish = publish
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.timeout = timeout
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._publishing: set[asyncio.Task] = set()  # strong references until done
        self._in_flight = 0  # batches handed to the publishing thread, not yet back
        self._due = False  # a batch's window closed while another was in flight

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
        if self._in_flight and len(self._pending) < self.max_batch:
            self._due = True  # gathers until the batch in flight is back
            return
        self._due = False
        batch, self._pending = self._pending, []
        if batch:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._publish_batch(batch))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish_batch(self, batch: list[tuple[dict, asyncio.Future]]) -> None:
        try:
            await self._publish_and_answer(batch)
        finally:
            self._in_flight -= 1
        if self._due and not self._in_flight:
            self._flush()

    async def _publish_and_answer(self, batch: list[tuple[dict, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        records = [record for record, _ in batch]
        metrics.HANDOFF_BATCH_SIZE.observe(len(records))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                await loop.run_in_executor(_publishing_thread, self._publish, records)
        except Exception as exc:  # TimeoutError included
            logger.warning("Hand-off of %d messages failed: %r", len(records), exc)
            metrics.HANDOFF_FAILURES.inc(len(records))
            outcome: Unavailable | None = Unavailable(str(exc))
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


@PerLoop
def get_handoff() -> HandOff:
    """This event loop's hand-off, built from settings on first use."""
    return HandOff(
        publish=import_string(settings.CHAT_HANDOFF_PUBLISHER),
        max_batch=settings.CHAT_HANDOFF_MAX_BATCH,
        max_delay=settings.CHAT_HANDOFF_MAX_DELAY,
        timeout=settings.CHAT_HANDOFF_TIMEOUT,
    )


@receiver(setting_changed)
def rebuild_when_settings_change(*, setting: str, **kwargs) -> None:
    if setting.startswith("CHAT_HANDOFF_"):
        get_handoff.clear()
