"""Whose Redis connections a process holds, by the pool each one names
(``config.connections.redis_client_name``), read from Redis's ``CLIENT LIST`` on a
connection of its own."""

from collections import Counter
from urllib.parse import urlsplit

import redis

from support.processes import tcp_local_ports


def clients_by_name(pid: int, url: str) -> Counter[str]:
    """Process ``pid``'s connections to the Redis server at ``url``, by the name each gave
    itself ("" for none: a client outside the project's pools)."""
    ports = tcp_local_ports(pid, urlsplit(url).port or 6379)
    with redis.Redis.from_url(url, decode_responses=True, socket_timeout=5) as probe:
        listed = probe.client_list()
    return Counter(c["name"] for c in listed if int(c["addr"].rsplit(":", 1)[1]) in ports)
