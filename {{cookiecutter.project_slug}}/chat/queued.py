"""The batches queued behind the one a worker child has started: taken along, stored with it.

Real traffic queues many small batches (``chat.handoff`` publishes one every few
milliseconds). Stored one task at a time, each pays Celery's dispatch, a statement, a
bookkeeping round trip and its notifications: after a worker outage the backlog drained at
a few thousand messages a second, its time spent around the rows rather than on them (the
benchmark's profile, ``make bench``). So a child that starts a batch first takes, straight
from the queue, the batches waiting behind it, up to ``CHAT_PERSIST_GATHER`` messages in
all, and stores them together in one statement (``chat.tasks``).

What a taken batch goes through is what Celery does for the task's own
(``CELERY_TASK_ACKS_LATE``): it stays unacknowledged in the broker until its messages are
committed, and a child that dies holding it loses nothing (RabbitMQ requeues it when the
child's connection drops, a Redis broker after its visibility timeout). If the store fails,
each taken batch goes straight back to the queue (``give_back``), to be taken again, with the
task's own batch retried as before; storing a batch twice is harmless. A batch not yet due (a
retry waiting out its backoff) or of another task stops the taking, and goes back unread.

The child takes them on a broker connection of the app's pool, held for its life and
returned when it exits: the pool's limit (``CELERY_BROKER_POOL_LIMIT``) already counts it in
the Redis budget (``config.connections``).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from celery import current_app as app
from celery.utils.time import maybe_iso8601
from django.utils import timezone
from kombu import Connection
from kombu.message import Message

logger = logging.getLogger(__name__)

_connection: Connection | None = None


@dataclass
class Taken:
    """Batches taken from the queue, unacknowledged, and their records in one list."""

    messages: list[Message] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)

    def ack(self) -> None:
        """Once their records are committed (or parked as dead letters). Batches that cannot
        be acknowledged come back later, and are found stored."""
        self.settle(lambda message: message.ack())

    def give_back(self) -> None:
        """Back on the queue, for the next child to take. If the broker cannot be told, they
        go back all the same when the connection is dropped (``close``)."""
        self.settle(lambda message: message.reject(requeue=True))

    def settle(self, how) -> None:
        try:
            for message in self.messages:
                how(message)
        except Exception:
            logger.warning("Could not settle %d taken batches", len(self.messages), exc_info=True)
            close()
        self.messages.clear()


def take(task_name: str, queue_name: str, limit: int) -> Taken:
    """The ``task_name`` batches queued next in ``queue_name``, until they hold ``limit``
    records or the queue runs dry. A broker that cannot be reached gives nothing: the
    task's own batch is stored alone, as it would have been."""
    taken = Taken()
    if limit <= 0:
        return taken
    try:
        queue = app.amqp.queues[queue_name].bind(held_connection().default_channel)
        while len(taken.records) < limit:
            message = queue.get(no_ack=False, accept=app.conf.accept_content)
            if message is None:
                break
            records = batch_records(message, task_name)
            if records is None:
                message.reject(requeue=True)
                break
            taken.messages.append(message)
            taken.records.extend(records)
    except Exception:
        logger.warning("Could not take the batches queued behind this one", exc_info=True)
        close()  # what it took goes back to the queue with the connection
        return Taken()
    return taken


def batch_records(message: Message, task_name: str) -> list[dict] | None:
    """The records of a batch of ``task_name`` that is due now (Celery's message protocol 2:
    the task's name and ETA in the headers, ``[args, kwargs, options]`` in the body); None
    for anything else."""
    headers = message.headers or {}
    if headers.get("task") != task_name or not due(headers.get("eta")):
        return None
    body = message.decode()
    if not (isinstance(body, list | tuple) and body and isinstance(body[0], list | tuple)):
        return None
    args = body[0]
    if len(args) != 1 or not isinstance(args[0], list):
        return None
    return args[0]


def due(eta: str | None) -> bool:
    if eta is None:
        return True
    when: datetime | None = maybe_iso8601(eta)
    return when is not None and timezone.is_aware(when) and when <= timezone.now()


def held_connection() -> Connection:
    global _connection
    if _connection is None:
        # celery-types has the app's pool lend producers; it lends connections.
        _connection = app.pool.acquire(block=True)  # type: ignore[assignment]
    return _connection  # type: ignore[return-value]


def close() -> None:
    """Return the child's connection to the pool (at exit, or after a broker error: the
    next batch acquires another). Unacknowledged batches on it go back to the queue."""
    global _connection
    if _connection is not None:
        connection, _connection = _connection, None
        try:
            connection.close()
        finally:
            connection.release()
