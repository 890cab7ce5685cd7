"""The pending sweep (``chat.sweep``) against the real broker: it hands over again what the
broker lost, and only that, even while a backlog waits in the queue."""

import json
import os
import subprocess
import sys
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection

from chat import pending, queue, redis_store, sweep
from config.celery import app
from support.processes import PROJECT_DIR, child_env, database_url
from tests.broker import queued_records
from tests.records import batch

pytestmark = [
    pytest.mark.skipif(settings.BROKER_IS_AMQP, reason="RabbitMQ loses no batch in delivery"),
    pytest.mark.django_db,
]


def ids(records: list[dict]) -> list[str]:
    return [record["id"] for record in records]


@pytest.fixture
def author(django_user_model):
    return django_user_model.objects.create_user(username=f"s-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def clean_pending(redis_client):
    redis_client.delete(redis_store.pending_index())
    yield
    redis_client.delete(redis_store.pending_index())


def test_a_batch_lost_behind_a_waiting_backlog_is_handed_over_once(
    settings, persist_queue, clean_pending, author
):
    """A worker killed between taking a batch off the queue and recording it as
    unacknowledged (celery/kombu#305) loses it; the batches published after it still wait.
    The test takes the oldest batch off the queue as such a kill leaves it (failure
    injection: the instant cannot be hit on purpose). The sweep hands the lost batch over
    at once, although the queue is not empty, and not the batch still waiting in it."""
    settings.CHAT_PENDING_SWEEP_AFTER = 0  # every pending message is old enough
    lost, waiting = batch(author, 3, "sweep"), batch(author, 3, "sweep")
    queue.publish(lost)
    with redis.Redis.from_url(app.conf.broker_url) as broker:
        assert broker.rpop(persist_queue) is not None  # taken, never recorded
    queue.publish(waiting)

    assert sweep.requeue_overdue() == len(lost)
    queued = ids(queued_records(persist_queue))
    assert queued[: len(waiting)] == ids(waiting)
    assert sorted(queued[len(waiting) :]) == sorted(ids(lost))

    assert sweep.requeue_overdue() == 0, "both batches are in the queue"
    assert ids(queued_records(persist_queue)) == queued


def in_a_process_serving(database: str, code: str, records: list[dict]) -> str:
    """Run ``code`` (``records`` in hand) in a process of this project serving another
    PostgreSQL database on this Redis, as a running project and the test suite (or the
    benchmark) share one; returns what it prints."""
    elsewhere = database_url({**connection.settings_dict, "NAME": database})
    env = {**os.environ, **child_env(DATABASE_URL=elsewhere)}
    env.pop("PROCESS_ROLE", None)  # manage.py declares its own
    script = f"import json, sys; from chat import pending; records = json.load(sys.stdin); {code}"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "--command", script],
        cwd=PROJECT_DIR,
        env=env,
        input=json.dumps(records),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_worker_hands_over_only_what_its_own_database_is_owed(
    settings, persist_queue, clean_pending, author
):
    """The pending store is named after the database it is owed to: the sweep never hands
    another database's messages over into this one (whose users may have the same ids),
    the history never shows them, and the other database still finds them its own."""
    settings.CHAT_PENDING_SWEEP_AFTER = 0  # every pending message is old enough
    other = f"{connection.settings_dict['NAME']}_elsewhere"
    theirs, ours = batch(author, 3, "sweep"), batch(author, 3, "sweep")
    in_a_process_serving(other, "pending.remember(records)", theirs)
    pending.remember(ours)  # accepted here, and lost by the broker

    assert sweep.requeue_overdue() == len(ours)
    assert sorted(ids(queued_records(persist_queue))) == sorted(ids(ours))
    assert pending.lookup(author.pk, "sweep", ids(theirs)) == []

    found = in_a_process_serving(
        other,
        "print(len(pending.fetch([pending.member(r) for r in records]))); pending.forget(records)",
        theirs,
    )
    assert found.strip() == str(len(theirs))
