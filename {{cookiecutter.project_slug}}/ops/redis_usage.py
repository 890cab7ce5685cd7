"""How many clients each Redis server holds now, against the Redis budget and ``maxclients``.

The Redis side of ``ops.db_usage``: per Redis server the project uses (``REDIS_URL``,
``CHANNEL_LAYER_URLS``, a Redis broker), ``INFO clients``'s ``connected_clients`` beside
what each role may hold there (``config.connections.RedisBudget``) and the server's
``maxclients``. Redis does not say whose a client is, so "now" is the whole server's,
other projects' clients included. ``manage.py redisconnections`` prints it.
"""

import redis
from django.conf import settings

from config.roles import Role
from ops.checks import redis_maxclients


def snapshot() -> dict:
    """Per server: clients now (None if it did not answer), the budget by role, its total,
    and maxclients (None if unknown)."""
    budget = settings.REDIS_BUDGET
    servers = {}
    for server, url in budget.server_urls().items():
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        connected: int | None
        maxclients: int | None
        try:
            connected = int(client.info("clients")["connected_clients"]) - 1  # not this one
            maxclients = redis_maxclients(url)
        except redis.RedisError:
            connected = maxclients = None
        finally:
            client.close()
        servers[server] = {
            "now": connected,
            "budget": {str(role): budget.allowed(role)[server] for role in Role},
            "budget_total": budget.servers[server],
            "maxclients": maxclients,
        }
    return {"servers": servers}
