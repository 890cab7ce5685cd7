"""Whose Redis connections a process holds, by the pool each one names
(``config.connections.redis_client_name``), read from Redis's ``CLIENT LIST`` on a
connection of its own."""

from collections import Counter
from urllib.parse import urlsplit

import redis

from config.connections import redis_client_name
from support.processes import tcp_local_ports


def clients_by_name(pid: int, url: str) -> Counter[str]:
    """Process ``pid``'s connections to the Redis server at ``url``, by pool (the name each
    gave itself, without the project's prefix; "" for none: a client outside the pools)."""
    ports = tcp_local_ports(pid, urlsplit(url).port or 6379)
    with redis.Redis.from_url(url, decode_responses=True, socket_timeout=5) as probe:
        listed = probe.client_list()
    prefix = redis_client_name("")
    return Counter(
        c["name"].removeprefix(prefix) for c in listed if int(c["addr"].rsplit(":", 1)[1]) in ports
    )
