"""``manage.py check --database default``: does the connection budget fit the server?

The budget (``config.pool``) is what every process of the project can hold at once. If it
exceeds ``max_connections``, the day all processes are busy is the day PostgreSQL answers
"sorry, too many clients already". This check says so before that day.
"""

from django.conf import settings
from django.core import checks
from django.db import connections

WARN_ABOVE = 0.8


@checks.register(checks.Tags.database)
def connection_budget_fits_server(databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    budget = settings.CONNECTION_BUDGET
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    arithmetic = (
        f"{budget.web_processes} web process(es) x {budget.web_pool_size} + "
        f"{budget.worker_processes} worker process(es) x {budget.worker_pool_size} + "
        f"{budget.reserve} reserved = {budget.total} connections, "
        f"server max_connections = {max_connections}"
    )
    hint = (
        "Lower WEB_CONCURRENCY, WEB_POOL_MAX_SIZE, WORKER_CONCURRENCY or WORKER_POOL_MAX_SIZE, "
        "put pgbouncer in front of PostgreSQL, or raise max_connections."
    )
    if budget.total > max_connections:
        return [
            checks.Error(
                f"Connection budget exceeds the server: {arithmetic}.", hint=hint, id="ops.E001"
            )
        ]
    if budget.total > WARN_ABOVE * max_connections:
        return [
            checks.Warning(
                f"Connection budget above {WARN_ABOVE:.0%} of the server: {arithmetic}.",
                hint=hint,
                id="ops.W001",
            )
        ]
    return []
