"""A worker child stores the batches queued behind its own with it (``chat.queued``), and
holds them on the broker's terms: unacknowledged until committed, given back if not."""

import uuid

import pytest
from django.conf import settings
from django.db import OperationalError

from chat import queued, tasks
from chat.models import Message
from chat.queue import PERSIST_QUEUE, PERSIST_TASK, send
from support.processes import child_env, start_worker
from tests import broker
from tests.records import batch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def author(django_user_model):
    return django_user_model.objects.create_user(username=f"q-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def taking():
    """The test process takes batches as a worker child does; its connection goes at the
    end, and with it anything it still holds."""
    yield
    queued.close()


def batches(author, count: int, size: int) -> list[list[dict]]:
    return [batch(author, size, room="queued-tests") for _ in range(count)]


def test_a_worker_stores_the_batches_queued_behind_its_own_in_one_statement(
    persist_queue, author, tmp_path
):
    """Ten batches queued before the worker starts: stored one task at a time they would
    take ten statements, each stamping its rows with its own ``stored_at``. Taken along,
    they take one per child (two children), and a third if the worker's prefetch hands a
    child one more. Every batch is acknowledged: none is left in the queue after the worker
    has shut down, when a broker gives back whatever a worker still held."""
    queued_batches = batches(author, count=10, size=5)
    for records in queued_batches:
        send(records)
    assert broker.length(persist_queue) == 10

    worker = start_worker(child_env(), tmp_path / "worker.log")
    try:
        worker.wait_until(
            lambda: Message.objects.filter(room="queued-tests").count() == 50, 30, "50 rows"
        )
    finally:
        worker.shut_down()

    statements = Message.objects.filter(room="queued-tests").values("stored_at").distinct()
    assert statements.count() <= 3, f"{statements.count()} statements for 10 batches"
    assert broker.length(persist_queue) == 0


def test_taken_batches_stay_on_the_broker_until_acknowledged(persist_queue, author, taking):
    for records in batches(author, count=3, size=4):
        send(records)

    taken = queued.take(PERSIST_TASK, PERSIST_QUEUE, limit=100)
    assert len(taken.records) == 12 and broker.length(persist_queue) == 0
    taken.give_back()
    assert broker.length(persist_queue) == 3

    taken = queued.take(PERSIST_TASK, PERSIST_QUEUE, limit=5)  # stops once it holds 5
    assert len(taken.records) == 8 and broker.length(persist_queue) == 1
    taken.ack()
    queued.close()  # acknowledged: nothing goes back with the connection
    assert broker.length(persist_queue) == 1


@pytest.mark.skipif(
    settings.BROKER_IS_AMQP,
    reason="RabbitMQ keeps a retry in its delayed-delivery exchanges until it is due",
)
def test_a_batch_not_yet_due_stops_the_taking(persist_queue, author, taking):
    """A retry waiting out its backoff (an ETA in the future) waits in the queue on a Redis
    broker, for the worker to hold until then; a child storing it early would undo the
    backoff."""
    later, now = batches(author, count=2, size=2)
    tasks.persist_messages.apply_async(args=[later], countdown=60)
    send(now)

    taken = queued.take(PERSIST_TASK, PERSIST_QUEUE, limit=100)
    assert taken.records == [] and broker.length(persist_queue) == 2


def test_a_failed_store_gives_the_taken_batches_back(persist_queue, author, taking, monkeypatch):
    """Failure injection (a mock): the database failing between the task's connection check
    and its statement cannot be timed for real. The task's own batch retries as it would
    alone; the ones it took go back to the queue, for any child to store."""
    own, *behind = batches(author, count=3, size=2)
    for records in behind:
        send(records)

    def refused(records):
        assert len(records) == 6  # its own and the two behind it, in one statement
        raise OperationalError("injected: server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "store_batch", refused)
    with pytest.raises(OperationalError):
        tasks.persist_messages.run(own)  # as a worker runs it, not eagerly
    assert broker.length(persist_queue) == 2
    assert not Message.objects.filter(room="queued-tests").exists()
