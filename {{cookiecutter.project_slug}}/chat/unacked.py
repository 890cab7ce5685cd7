"""What Celery's Redis transport still holds of the persistence queue: the batches waiting
in it, and those a worker has taken and not yet acknowledged.

The pending sweep (``chat.sweep``) hands over again only what the broker no longer has, so
that it can look after a few seconds without handing over every message of a long queue.
The transport keeps the queue as a list named after it, first in, first out (published at
one end, taken and restored at the other), and the unacknowledged batches in a hash
(delivery tag -> [message, exchange, routing key]) until they are acknowledged or restored:
kombu's keys on the broker's Redis (``CELERY_BROKER_URL``), only read here. With another
transport there is nothing to read: the queue counts as empty, nothing as held.
"""

import base64
import json
from typing import cast

from django.conf import settings
from kombu.transport import redis as redis_transport

from chat.queue import PERSIST_TASK, PUBLISHED_AT
from config.celery import app

Identity = tuple[int, str]  # (author_id, id): what names a message


def oldest_waiting() -> float | None:
    """When the oldest batch waiting in the persistence queue (the next one a worker takes)
    was published; None if none waits. The queue is first in, first out, so every batch
    published before it has left the queue. A batch without the time (not published by
    ``chat.queue.send``) counts as published at 0: nothing is known to have left."""
    with app.connection_for_read() as connection:
        if connection.transport.driver_type != "redis":
            return None
        queue = settings.CELERY_TASK_ROUTES[PERSIST_TASK]["queue"]
        oldest = channel_of(connection).client.lindex(queue, -1)
    if oldest is None:
        return None
    try:
        return float(json.loads(oldest)["headers"][PUBLISHED_AT])
    except (ValueError, KeyError, TypeError):
        return 0.0


def held() -> set[Identity]:
    """The messages of every batch taken by a worker and not yet acknowledged: being
    stored, waiting for a retry, or left by a dead worker until the visibility timeout."""
    with app.connection_for_read() as connection:
        if connection.transport.driver_type != "redis":
            return set()
        channel = channel_of(connection)
        payloads = channel.client.hvals(channel.unacked_key)
    return {identity for payload in payloads for identity in batch(payload)}


def channel_of(connection) -> redis_transport.Channel:
    return cast(redis_transport.Channel, connection.default_channel)


def batch(payload: bytes | str) -> set[Identity]:
    """The messages of one unacknowledged task, if it is a batch to store (Celery's message
    protocol 2: the body is ``[args, kwargs, embed]``, and the batch is the first arg)."""
    try:
        message = json.loads(payload)[0]
        if message["headers"].get("task") != PERSIST_TASK:
            return set()
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        records = json.loads(body)[0][0]
        return {(record["author_id"], record["id"]) for record in records}
    except (ValueError, KeyError, IndexError, TypeError):
        return set()
