"""The figures of the staff panel (``/ops/panel/``), gathered by the HTTP side.

The claim this project makes, shown as it happens: sockets on every ASGI process (each
reports its own count to Redis, ``chat.heartbeat``), and still no PostgreSQL connection of
the web role beyond its pool, whatever the number of sockets; the worker's connections
within the budget, against ``max_connections`` (``pg_stat_activity``, ``ops.db_usage``);
what waits in the persistence queue; how long messages take to be stored (the worker
records each batch's lag, ``record_persist_lag``); what was parked as a dead letter.
"""

import json
import statistics
import time
from typing import cast

import redis
from kombu import Connection
from kombu.exceptions import ChannelError

from chat import redis_store
from chat.models import DeadLetter
from chat.queue import PERSIST_TASK
from config.celery import app
from ops.db_usage import snapshot as database_snapshot

LAG_SAMPLES = 120  # batches whose lag the panel sees
LAG_LIFETIME = 3600  # seconds a quiet worker's last lags stay shown


def record_persist_lag(lags: list[float], pipe: redis.client.Pipeline) -> None:
    """In the worker, after each batch: its messages' lags from sent_at to commit, queued on
    the worker's pipeline (sent with the batch's other bookkeeping, ``chat.tasks``)."""
    if not lags:
        return
    sample = {
        "at": time.time(),
        "count": len(lags),
        "max": max(lags),
        "mean": sum(lags) / len(lags),
    }
    pipe.lpush(redis_store.persist_lags(), json.dumps(sample))
    pipe.ltrim(redis_store.persist_lags(), 0, LAG_SAMPLES - 1)
    pipe.expire(redis_store.persist_lags(), LAG_LIFETIME)


def processes() -> list[dict]:
    """The reports of the ASGI processes alive now, busiest first."""
    client = redis_store.client()
    ids = cast(list[str], client.zrangebyscore(redis_store.server_processes(), time.time(), "+inf"))
    reports = client.mget([redis_store.server_process(i) for i in ids]) if ids else []
    found = [json.loads(report) for report in reports if report]
    return sorted(found, key=lambda report: -report["sockets"])


def persist_lag() -> dict:
    samples = [
        json.loads(s) for s in redis_store.client().lrange(redis_store.persist_lags(), 0, -1)
    ]
    if not samples:
        return {"batches": 0, "latest_ms": None, "p50_ms": None, "max_ms": None, "series": []}
    worst = [sample["max"] * 1000 for sample in reversed(samples)]  # oldest first
    return {
        "batches": len(samples),
        "latest_ms": round(worst[-1], 1),
        "p50_ms": round(statistics.median(worst), 1),
        "max_ms": round(max(worst), 1),
        "series": [round(value, 1) for value in worst],
    }


def queue_depth() -> int | None:
    """Batches waiting in the persistence queue (None if the broker does not answer)."""
    from django.conf import settings

    queue = settings.CELERY_TASK_ROUTES[PERSIST_TASK]["queue"]
    try:
        # The app's pool of broker connections: no new connection per refresh.
        with cast(Connection, app.pool.acquire(block=True, timeout=2)) as connection:
            channel = connection.default_channel  # kombu's stubs omit queue_declare
            declared = channel.queue_declare(queue=queue, passive=True)  # type: ignore[attr-defined]
            return int(declared.message_count)
    except ChannelError:  # no such queue yet: nothing ever waited
        return 0
    except OSError:
        return None


def dead_letters() -> dict:
    latest = DeadLetter.objects.order_by("-failed_at")[:5]
    return {
        "count": DeadLetter.objects.count(),
        "latest": [
            {
                "message_id": str(d.message_id),
                "author_id": d.author_id,  # a message is known by (author, id)
                "reason": d.reason[:120],
                "at": d.failed_at.isoformat(),
            }
            for d in latest
        ],
    }


def snapshot() -> dict:
    running = processes()
    return {
        "at": time.time(),
        "processes": running,
        "sockets": sum(report["sockets"] for report in running),
        "database": database_snapshot(),
        "queue_depth": queue_depth(),
        "persist_lag": persist_lag(),
        "dead_letters": dead_letters(),
    }
