"""The Celery application, and everything the worker does around its tasks.

Run the worker with ``celery -A config.celery worker``. The ASGI process imports this
module too, to publish (``chat.queue``); the handlers below only ever fire in a worker.

The worker's life, in order:
- at import, before prometheus-client is: where prefork children count their metrics;
- ``worker_ready``: the main process serves the metrics, and runs the pending sweep
  (``chat.sweep``, a bootstep) every ``CHAT_PENDING_SWEEP_INTERVAL`` seconds, and the
  room mirror's watch every ``CHAT_ROOM_MIRROR_CHECK_INTERVAL``;
- before each task, in the child: Django's query log empties, as a request's start empties it;
- after each task, in the child: its connection goes back to the child's bounded pool
  (``config.connections``), whose figures go to the metrics;
- when a child exits: its pool, notification loop and broker connection close, its gauges
  stop counting;
- at shutdown: the metrics directory goes.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PROCESS_ROLE", "worker")

from django.conf import settings

from config.roles import Role
from ops import worker_metrics

if settings.PROCESS_ROLE == Role.WORKER:
    worker_metrics.prepare()

from celery import Celery, signals
from django.db import close_old_connections, connections, reset_queries
from kombu import Exchange, Queue

from chat import notifications, queued
from ops.pool_metrics import observe_database_pool

app = Celery(settings.PROJECT_SLUG)
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes Django's connection pool after every task in prefork
# children (celery/celery#10554), so each batch would pay for a fresh connection. Past this
# many tasks it still recycles the pool, which is harmless; until then the pool lives on.
app.conf.CELERY_DB_REUSE_MAX = 1000
# The persistence queue. On RabbitMQ a quorum queue: durable, replicated (Raft), written to
# disk before the publisher's confirm (docs/scaling.md). Celery sees it is one and drops the
# global prefetch quorum queues refuse; a retry's countdown then goes through RabbitMQ's
# delayed-delivery exchanges, which route only from a topic exchange. Redis ignores the
# argument and keeps its direct exchange.
app.conf.task_queues = [
    Queue(
        "persist",
        Exchange("persist", type="topic" if settings.BROKER_IS_AMQP else "direct"),
        routing_key="persist",
        queue_arguments={"x-queue-type": "quorum"},
    )
]
app.autodiscover_tasks()
app.steps["worker"].add("chat.sweep:PendingSweep")
app.steps["worker"].add("chat.sweep:MirrorWatch")


@signals.worker_ready.connect
def serve_metrics(**kwargs):
    worker_metrics.serve()


@signals.task_prerun.connect
def empty_query_log(**kwargs):
    """With DEBUG on, Django keeps each query's SQL on its connection (up to 9,000) and empties
    the log only when a request starts, which never happens in a worker: without this a
    child grows by megabytes over its first thousands of batches."""
    reset_queries()


@signals.task_postrun.connect
def return_connections_to_pool(**kwargs):
    """Hand the task's connection back to the pool, as Django does at the end of a request.

    A connection broken by a database restart (its batch failed, and retries) is discarded
    here, and the pool opens a new one: the worker's pool does not test connections before
    lending them (``config/settings.py``).
    """
    close_old_connections()
    observe_database_pool()


@signals.worker_process_shutdown.connect
def close_pool(pid=None, **kwargs):
    """Close this child's pool so PostgreSQL sees a clean goodbye, not a dropped socket."""
    for connection in connections.all(initialized_only=True):
        connection.close()
    # PostgreSQL's backend has the pool; django-stubs types the generic one.
    connections["default"].close_pool()  # type: ignore[attr-defined]
    notifications.close()
    queued.close()
    worker_metrics.forget_child(pid or os.getpid())


@signals.worker_shutdown.connect
def remove_metrics_directory(**kwargs):
    worker_metrics.remove_directory()
