"""A Redis broker's channel keeps one redis-py client (``config.broker_transport``): kombu's
own built one per command, and building one cost more CPU than the command."""

import uuid

import pytest
import redis
from django.conf import settings
from kombu import Exchange, Queue

from config import broker_transport
from config.celery import app

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"), reason="not a plain Redis broker"
)


@pytest.fixture
def channel():
    with app.connection_for_write() as connection:
        yield connection.default_channel


@pytest.fixture
def queue(channel):
    name = f"test-broker-transport-{uuid.uuid4().hex[:8]}"
    bound = Queue(name, Exchange(name, type="direct"), routing_key=name)(channel)
    bound.declare()
    yield bound
    bound.delete()


@pytest.fixture
def clients_built(monkeypatch) -> list[redis.Redis]:
    """Every redis-py client built from now on (the real constructor runs)."""
    built = []
    init = redis.Redis.__init__

    def counted(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counted)
    return built


def test_the_settings_choose_it_for_a_redis_broker(channel):
    assert isinstance(channel, broker_transport.Channel)


def test_publishing_taking_and_acknowledging_build_no_client_per_command(
    channel, queue, clients_built
):
    producer = app.amqp.Producer(channel)
    for n in range(20):
        producer.publish({"n": n}, exchange=queue.exchange, routing_key=queue.routing_key)
    taken = []
    while (message := queue.get(no_ack=False)) is not None:
        taken.append(message.decode()["n"])
        message.ack()
    assert taken == list(range(20))
    # kombu's own channel built one per publish, per get (two) and per ack: 101 here.
    built = len(clients_built)
    assert built <= 1, f"{built} clients for 20 publishes, 21 gets and 20 acks"


def test_a_new_pool_gets_a_new_client(channel):
    client = channel._create_client()
    assert channel._create_client() is client
    assert client.connection_pool is channel.pool
    channel._disconnect_pools()  # as kombu does in a forked child, and when it closes
    again = channel._create_client()
    assert again is not client
    assert again.connection_pool is channel.pool is not client.connection_pool
