"""``message.persisted``, sent by the worker to each sender's socket once its batch commits.

The channel layer keeps its Redis connections per event loop, and ``async_to_sync`` would
make a new loop, and so open new connections, for every batch (``make bench`` measured that
at several times the cost). So each worker process sends on one loop of its own for its
whole life, made on first use (in the prefork child) and closed when the child exits
(``config/celery.py``). Prefork runs one task at a time per process: one loop is enough.

A batch's notifications go out together, with the layer's ``send_many``
(``config/channel_layer.py``). On the pub/sub layer a batch of 100 sent with ``send`` cost
100 round trips one after another, whatever ``asyncio.gather`` suggested: half the worker's
time in the benchmark's profile (py-spy). Its ``send_many`` takes one per Redis shard.
And each socket gets one event per batch, naming all of its sender's messages in it
(``ids``): a batch taken along with those queued behind it (``chat.queued``) holds many
of each busy sender's, and every event is a publish here and a decode in the consumer.
"""

import asyncio
from collections import defaultdict

from chat import groups

_runner = asyncio.Runner()


def notify_persisted(records: list[dict]) -> None:
    _runner.run(_send_persisted(records))


async def _send_persisted(records: list[dict]) -> None:
    ids: defaultdict[str, list[str]] = defaultdict(list)  # reply channel -> its stored ids
    for record in records:
        if record.get("reply_channel"):  # none in records queued before reply channels
            ids[record["reply_channel"]].append(record["id"])
    await groups.channel_layer().send_many(
        (channel, {"type": "message.persisted", "ids": its_ids}) for channel, its_ids in ids.items()
    )


def close() -> None:
    _runner.close()
