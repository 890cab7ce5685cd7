"""Copy a process's PostgreSQL pool statistics into the metrics, without opening the pool.

Pools open on a process's first query (``config.connections``). Asking Django for
``connection.pool`` would create and open one, so that scraping the metrics of a
WebSocket-only process would give it a connection it never needed: the pool is looked up
where Django keeps the ones that exist.
"""

from django.conf import settings
from django.db import connections

from ops import metrics


def observe_database_pool(alias: str = "default") -> None:
    role = settings.PROCESS_ROLE
    pools = getattr(type(connections[alias]), "_connection_pools", {})
    pool = pools.get(alias)
    stats = pool.get_stats() if pool is not None else {}
    metrics.POOL_CONNECTIONS.labels(role).set(stats.get("pool_size", 0))
    metrics.POOL_WAITING.labels(role).set(stats.get("requests_waiting", 0))
    metrics.POOL_MAX.labels(role).set(settings.CONNECTION_BUDGET.pool_size(role))
