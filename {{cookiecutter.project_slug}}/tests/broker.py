"""The persistence queue as the tests see it, whichever broker holds it (Redis or
RabbitMQ, by ``CELERY_BROKER_URL``): empty it, count its batches, read their records.

Reading leaves the queue as it was: on Redis the list is read in place; on RabbitMQ each
batch is fetched unacknowledged and goes back, in order, when the channel closes.
"""

import base64
import json

import redis
from django.conf import settings

from config.celery import app


def _declared(channel, queue: str):
    bound = app.amqp.queues[queue](channel)
    bound.declare()
    return bound


def _redis():
    return redis.Redis.from_url(app.conf.broker_url)


def purge(queue: str) -> None:
    if settings.BROKER_IS_AMQP:
        with app.connection_for_write() as connection:
            _declared(connection.default_channel, queue).purge()
    else:
        with _redis() as client:
            client.delete(queue)


def length(queue: str) -> int:
    """Batches waiting (on RabbitMQ: ready, not those a worker holds)."""
    if settings.BROKER_IS_AMQP:
        with app.connection_for_write() as connection:
            declared = _declared(connection.default_channel, queue).queue_declare(passive=True)
            return int(declared.message_count)
    with _redis() as client:
        return int(client.llen(queue))


def queued_records(queue: str) -> list[dict]:
    """The records of every batch waiting in the queue, oldest batch first."""
    if settings.BROKER_IS_AMQP:
        with app.connection_for_write() as connection:
            channel = connection.channel()
            bound = _declared(channel, queue)
            bodies = []
            while (message := bound.get(no_ack=False)) is not None:
                bodies.append(message.decode())
            channel.close()  # unacknowledged: every batch goes back to the queue
    else:
        with _redis() as client:
            envelopes = [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
        bodies = [json.loads(base64.b64decode(envelope["body"])) for envelope in envelopes]
    return [record for args, _kwargs, _embed in bodies for record in args[0]]
