"""What ``/readyz`` checks: Redis, the Celery broker and, for the web role, PostgreSQL.

Each check gets ``READINESS_TIMEOUT`` seconds. They run side by side on threads, so a
dependency that hangs (a half-open TCP connection, a pool with no connection to lend) makes
the probe answer "not ready" in time instead of hanging the load balancer's probe with it.
"""

from concurrent.futures import ThreadPoolExecutor, wait

import redis
from django.conf import settings
from django.db import connection

from config.celery import app

_executor = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readyz")


def check_redis(timeout: float) -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def check_broker(timeout: float) -> None:
    with app.connection_for_write(connect_timeout=timeout) as broker:
        broker.ensure_connection(max_retries=1, timeout=timeout)


def check_database(timeout: float) -> None:
    """One query through the web pool, then the connection goes back to it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def checks_for(role: str) -> dict:
    checks = {"redis": check_redis, "broker": check_broker}
    if role == "web":
        checks["database"] = check_database
    return checks


def readiness(role: str, timeout: float) -> dict[str, str]:
    """``{"redis": "ok", "database": "error: ..."}``: one entry per check."""
    futures = {name: _executor.submit(check, timeout) for name, check in checks_for(role).items()}
    wait(futures.values(), timeout=timeout)  # one deadline for all: they run side by side
    results = {}
    for name, future in futures.items():
        if not future.done():
            # The check goes on in its thread (a pool waits up to DB_POOL_TIMEOUT); the
            # probe does not wait for it.
            results[name] = f"error: no answer within {timeout:g}s"
        elif future.exception() is not None:
            exc = future.exception()
            results[name] = f"error: {exc.__class__.__name__}: {str(exc).strip()[:200]}"
        else:
            results[name] = "ok"
    return results
