"""What ``/readyz`` checks: Redis, the Celery broker and, for the web role, PostgreSQL.

A probe is called often, by load balancers and by anyone who finds the URL, so it costs
little and says little:

- an answer is reused for ``READINESS_CACHE_SECONDS``: any number of probes costs the
  dependencies one round of checks per period;
- the checks go through the connections the process keeps anyway (the project's Redis
  client, Celery's broker connection pool, the web role's database pool): a probe never
  opens a connection of its own;
- each check runs on a thread and gets ``READINESS_TIMEOUT`` seconds, so a dependency that
  hangs makes the probe answer "not ready" in time; a check still running from an earlier
  round is awaited, not started again, so a hung dependency holds one thread, not one per
  probe;
- each check answers ``ok``, ``error`` or ``timeout``: why it failed goes to the log, never
  to the caller (exception text names hosts, users, sometimes more).
"""

import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.db import connection

from chat import redis_store
from config.celery import app
from config.roles import Role

logger = logging.getLogger(__name__)

_executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="readyz")
_lock = threading.Lock()
_running: dict[str, Future] = {}  # the latest check of each dependency
_answer: tuple[float, dict[str, str]] | None = None  # when, and what


def check_redis(timeout: float) -> None:
    redis_store.client().ping()


def check_broker(timeout: float) -> None:
    """A connection of Celery's producer pool: the ones the hand-off publishes through."""
    with app.producer_pool.acquire(block=True, timeout=timeout) as producer:
        broker = producer.connection
        assert broker is not None  # a pooled producer always has one
        broker.ensure_connection(max_retries=0, timeout=math.ceil(timeout))  # no retrying
        # A pooled connection may have died since: ask for a round trip where the transport
        # offers one (kombu's Redis transport: its client's PING).
        client = getattr(broker.default_channel, "client", None)
        if client is not None:
            client.ping()


def check_database(timeout: float) -> None:
    """One query through the web pool, then the connection goes back to it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def checks_for(role: Role) -> dict:
    checks = {"redis": check_redis, "broker": check_broker}
    if role == Role.WEB:
        checks["database"] = check_database
    return checks


def readiness(role: Role, timeout: float, cache_for: float) -> dict[str, str]:
    """``{"redis": "ok", "database": "timeout"}``: one entry per check."""
    global _answer
    with _lock:  # callers meanwhile wait for this round's answer
        if _answer is not None and time.monotonic() - _answer[0] < cache_for:
            return _answer[1]
        futures = {}
        for name, check in checks_for(role).items():
            running = _running.get(name)
            if running is None or running.done():
                running = _running[name] = _executor.submit(check, timeout)
            futures[name] = running
        wait(futures.values(), timeout=timeout)  # one deadline for all: they run side by side
        results = {name: outcome(name, future) for name, future in futures.items()}
        _answer = (time.monotonic(), results)
        return results


def outcome(name: str, future: Future) -> str:
    if not future.done():
        return "timeout"
    if (exc := future.exception()) is not None:
        logger.warning("Readiness check %r failed: %r", name, exc)
        return "error"
    return "ok"
