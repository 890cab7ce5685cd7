"""The persistence worker's connections: they survive PostgreSQL dropping them, and are
closed cleanly when a worker process stops.
"""

import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import tracemalloc
import uuid

import pytest
import redis
from django.conf import settings
from django.db import InternalError, connection, reset_queries

from chat import notifications, pending, redis_store, tasks
from chat.models import Message
from chat.queue import publish
from config.celery import close_pool
from config.roles import Role
from support.pgstat import admin_connection, connections_of
from support.processes import PROJECT_DIR, child_env, start_worker
from tests.records import batch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(persist_queue, tmp_path):
    process = start_worker(child_env(), tmp_path / "worker.log")
    yield process
    process.stop()


def stored(records) -> bool:
    return Message.objects.filter(id__in=[r["id"] for r in records]).count() == len(records)


def restart_postgresql_sessions() -> int:
    """What a PostgreSQL restart does to clients: every session on the database dies.

    (Behind pgbouncer these are pgbouncer's server connections, whichever client used them.)
    """
    with admin_connection() as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [connection.settings_dict["NAME"]],
            ).fetchall()
        )


def test_the_worker_recovers_when_postgresql_drops_its_connections(worker, django_user_model):
    author = django_user_model.objects.create_user(username=f"w-{uuid.uuid4().hex[:8]}")
    first = batch(author)
    publish(first)
    worker.wait_until(lambda: stored(first), 30, "the first batch to be stored")

    assert restart_postgresql_sessions() >= 1
    connection.close()  # this test's own session died too; the next query takes a fresh one
    after = [batch(author) for _ in range(4)]
    for records in after:
        publish(records)
    worker.wait_until(lambda: all(stored(r) for r in after), 60, "batches after the restart")

    assert Message.objects.filter(room="worker-tests").count() == 5 * 20
    assert connections_of(Role.WORKER) <= settings.CONNECTION_BUDGET.worker


def pool_checks(role: Role) -> bool:
    """Whether the pool of a process of ``role`` tests each connection before lending it."""
    printed = subprocess.run(
        [sys.executable, "-c", CHECKS],
        cwd=PROJECT_DIR,
        env={**os.environ, "PROCESS_ROLE": role},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return printed.strip() == "True"


CHECKS = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.db import connection
print(connection.settings_dict["CONN_HEALTH_CHECKS"])  # Django: the pool's check= argument
"""


def test_only_the_workers_pool_skips_the_health_check_round_trip():
    """The worker does without it (the test above shows what a restart then costs it: a
    retry); a web request would fail instead."""
    assert pool_checks(Role.WEB)
    assert not pool_checks(Role.WORKER)


def test_a_database_error_of_any_kind_retries_the_batch(monkeypatch, django_user_model):
    """Failure injection (a mock): psycopg's InternalError "received 2 results from command
    'COMMIT'" came once, through PgBouncer, from a session terminated mid-COMMIT, and cannot
    be produced at will. Like OperationalError it must retry the batch: a failed task is
    acknowledged, and the broker would have dropped its batch."""
    author = django_user_model.objects.create_user(username=f"w-{uuid.uuid4().hex[:8]}")
    records = batch(author)
    attempts, store_batch = [], tasks.store_batch

    def commit_broken_once(batch_records):
        attempts.append(len(batch_records))
        if len(attempts) == 1:
            raise InternalError("received 2 results from command 'COMMIT'")
        return store_batch(batch_records)

    monkeypatch.setattr(tasks, "store_batch", commit_broken_once)
    result = tasks.persist_messages.apply(args=[records])  # eagerly: retries run at once
    assert result.successful(), result.traceback
    assert attempts == [20, 20] and stored(records)


def test_the_shutdown_handler_closes_the_pool_before_the_process_exits(monkeypatch):
    """Celery sends worker_process_shutdown to each child before it exits; the handler must
    close the pool, so PostgreSQL (or pgbouncer) sees goodbyes, not dropped sockets."""
    # It closes the notification loop too, which the later tests' eager tasks still need.
    monkeypatch.setattr(notifications, "_runner", asyncio.Runner())
    pool = connection.pool
    Message.objects.exists()  # opens this process's pool
    assert pool.get_stats()["pool_size"] >= 1 and not pool.closed
    close_pool()
    assert pool.closed


def test_a_batchs_redis_bookkeeping_takes_one_round_trip(monkeypatch, django_user_model):
    """After the commit the pending entries go and the panel's lag sample is written: one
    pipeline for both (the notifications go through the channel layer's own connections)."""
    author = django_user_model.objects.create_user(username=f"w-{uuid.uuid4().hex[:8]}")
    records = batch(author, size=5)
    pending.remember(records)
    client = redis_store.client()
    client.delete(redis_store.persist_lags())
    sent, execute = [], redis.client.Pipeline.execute

    def counted(pipe, *args, **kwargs):
        sent.append(len(pipe.command_stack))
        return execute(pipe, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counted)
    assert tasks.persist_messages.apply(args=[records]).successful()

    assert sent == [5], sent  # DEL, ZREM; LPUSH, LTRIM, EXPIRE
    assert pending.fetch([pending.member(r) for r in records]) == []
    assert json.loads(client.lindex(redis_store.persist_lags(), 0))["count"] == 5


def test_a_stored_batch_is_reported_even_if_its_redis_bookkeeping_fails(
    monkeypatch, django_user_model
):
    """The rows are committed before the bookkeeping: Redis failing then must neither fail
    the task (its pending entries are left for the sweep, which finds them stored) nor keep
    the senders from hearing ``persisted``. The failure is injected (a mock): a real outage
    of that Redis would take the test's channel layer down with it."""
    author = django_user_model.objects.create_user(username=f"w-{uuid.uuid4().hex[:8]}")
    records = batch(author, size=3)

    def unreachable(pipe, *args, **kwargs):
        raise redis.ConnectionError("injected: Redis unreachable")

    told: list[dict] = []
    monkeypatch.setattr(redis.client.Pipeline, "execute", unreachable)
    monkeypatch.setattr(notifications, "notify_persisted", told.extend)

    assert tasks.persist_messages.apply(args=[records]).successful()
    assert stored(records)
    assert [r["id"] for r in told] == [r["id"] for r in records]


def test_a_task_starts_with_an_empty_query_log(settings, django_user_model):
    """DEBUG keeps each query's SQL until a request starts; a worker's child never starts one,
    so without the task_prerun handler the log grows to 9,000 entries per child."""
    settings.DEBUG = True
    author = django_user_model.objects.create_user("query-log")
    reset_queries()
    Message.objects.filter(body="before the task").exists()
    assert len(connection.queries) == 1

    assert tasks.persist_messages.apply(args=[batch(author, size=5)]).successful()
    logged = [query["sql"] for query in connection.queries]
    assert logged and not any("before the task" in sql for sql in logged)

    assert tasks.persist_messages.apply(args=[batch(author, size=5)]).successful()
    assert len(connection.queries) == len(logged), "the log kept the earlier task's queries"


def test_tasks_leave_no_memory_behind(settings, django_user_model, caplog):
    """A worker child runs tasks for hours: after a warm-up (caches, the pool, the
    notification loop), hundreds more must not leave memory behind. Measured this way over
    12,000 tasks: 30 KB of Python allocations, RSS +0.01 MiB (docs/operations.md)."""
    settings.DEBUG = True  # as the soak's worker runs: the query log must not keep growing
    caplog.set_level(logging.WARNING)  # pytest keeps every record: "Task ... succeeded"
    author = django_user_model.objects.create_user("no-leftovers")
    for _ in range(50):
        tasks.persist_messages.apply(args=[batch(author, size=3)])
    tracemalloc.start()
    try:
        # What runs once under tracing is not left behind by tasks: 64 KB of it on Python
        # 3.13, the same after 500 tasks as after 1,500. Measured from the 51st task traced.
        for _ in range(50):
            tasks.persist_messages.apply(args=[batch(author, size=3)])
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(500):
            assert tasks.persist_messages.apply(args=[batch(author, size=3)]).successful()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, f"{after - before} bytes left by 500 tasks"
