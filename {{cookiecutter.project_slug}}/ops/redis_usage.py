"""How many clients each Redis server holds now, against the Redis budget and ``maxclients``.

The Redis side of ``ops.db_usage``: per Redis server the project uses (``REDIS_URL``,
``CHANNEL_LAYER_URLS``, a Redis broker), ``INFO clients``'s ``connected_clients`` beside
what each role may hold there (``config.connections.RedisBudget``) and the server's
``maxclients``. Redis does not say whose a client is, so "now" is the whole server's,
other projects' clients included. ``manage.py redisconnections`` prints it.
"""

import redis
from django.conf import settings

from ops.checks import redis_client, redis_maxclients


def snapshot() -> dict:
    """Per server: clients now (None if it did not answer), the budget by role, its total,
    and maxclients (None if unknown)."""
    budget = settings.REDIS_BUDGET
    shares = budget.shares()
    servers = {}
    for server, url in budget.server_urls().items():
        client = redis_client(url)
        connected: int | None
        maxclients: int | None
        try:
            connected = int(client.info("clients")["connected_clients"]) - 1  # not this one
            maxclients = redis_maxclients(client)
        except redis.RedisError:
            connected = maxclients = None
        finally:
            client.close()
        servers[server] = {
            "now": connected,
            "budget": {str(role): held for role, held in shares[server].items()},
            "budget_total": sum(shares[server].values()),
            "maxclients": maxclients,
        }
    return {"servers": servers}
