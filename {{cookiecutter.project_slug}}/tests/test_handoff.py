"""The hand-off's batching (``chat.handoff``): what gathers while a batch is being published
goes out as one batch, not as one per window."""

import asyncio
import threading

from chat.handoff import get_handoff

gate, reached = threading.Event(), threading.Event()
published: list[list[dict]] = []


def publish_held_at_the_gate(records: list[dict]) -> None:
    """A hand-off publisher that keeps what it was given and returns once ``gate`` opens:
    a broker slow to confirm."""
    published.append(records)
    reached.set()
    gate.wait(10)


def closed_gate() -> None:
    published.clear()
    reached.clear()
    gate.clear()


def behind_a_slow_publish(settings, max_batch: int, waves: list[int]) -> list[list[dict]]:
    """Submit one record and, while its batch is held at the publisher, ``waves`` of
    records, each wave followed by two batch windows; then let the publisher go. Returns
    the batches published, in order."""
    settings.CHAT_HANDOFF_PUBLISHER = f"{__name__}.publish_held_at_the_gate"
    settings.CHAT_HANDOFF_MAX_BATCH, settings.CHAT_HANDOFF_MAX_DELAY = max_batch, 0.01
    closed_gate()

    async def scenario():
        handoff = get_handoff()
        first = asyncio.create_task(handoff.submit({"id": "first"}))
        assert await asyncio.to_thread(reached.wait, 5)  # the first batch is in flight
        later = []
        for size in waves:
            for _ in range(size):
                later.append(asyncio.create_task(handoff.submit({"id": f"later-{len(later)}"})))
            await asyncio.sleep(2 * settings.CHAT_HANDOFF_MAX_DELAY)  # its window closes
        gate.set()
        async with asyncio.timeout(5):
            await asyncio.gather(first, *later)

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
    return published


def test_records_arriving_while_a_batch_is_published_go_out_together(settings):
    batches = behind_a_slow_publish(settings, max_batch=100, waves=[1] * 5)
    assert batches == [[{"id": "first"}], [{"id": f"later-{n}"} for n in range(5)]]


def test_a_full_batch_goes_out_at_once_even_while_another_is_in_flight(settings):
    """``max_batch`` still bounds a batch: the thread takes the full one next."""
    batches = behind_a_slow_publish(settings, max_batch=3, waves=[7])
    sizes = [len(batch) for batch in batches]
    assert sizes == [1, 3, 3, 1], sizes
