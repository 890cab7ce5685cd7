"""How many clients each Redis server holds now, against the Redis budget and ``maxclients``.

The Redis side of ``ops.db_usage``: per Redis server the project uses (``REDIS_URL``,
``CHANNEL_LAYER_URLS``, a Redis broker), ``INFO clients``'s ``connected_clients`` beside
what each role may hold there (``config.connections.RedisBudget``) and the server's
``maxclients``. "now" is the whole server's, other projects' clients included; "ours" is
this project's, by the pool each connection names (``config.connections.redis_client_name``,
read from ``CLIENT LIST``). ``manage.py redisconnections`` prints it.
"""

from collections import Counter

import redis
from django.conf import settings

from config.connections import redis_client_name
from ops.checks import redis_client, redis_maxclients


def ours_by_pool(client: redis.Redis) -> dict[str, int]:
    """This project's connections to the server of ``client``, by pool, from every process."""
    prefix = redis_client_name("")
    names = [entry.get("name", "") for entry in client.client_list()]
    return dict(Counter(name.removeprefix(prefix) for name in names if name.startswith(prefix)))


def snapshot() -> dict:
    """Per server: clients now and this project's by pool (None if it did not answer), the
    budget by role, its total, and maxclients (None if unknown)."""
    budget = settings.REDIS_BUDGET
    shares = budget.shares()
    servers = {}
    for server, url in budget.server_urls().items():
        client = redis_client(url)
        connected: int | None
        ours: dict[str, int] | None
        maxclients: int | None
        try:
            connected = int(client.info("clients")["connected_clients"]) - 1  # not this one
            ours = ours_by_pool(client)
            maxclients = redis_maxclients(client)
        except redis.RedisError:
            connected = ours = maxclients = None
        finally:
            client.close()
        servers[server] = {
            "now": connected,
            "ours": ours,
            "budget": {str(role): held for role, held in shares[server].items()},
            "budget_total": sum(shares[server].values()),
            "maxclients": maxclients,
        }
    return {"servers": servers}
