"""How many connections each kind of process may open, and the pools that hold them.

Every process gets its own bounded psycopg pool (Django's native pooling), sized by its
role (``config.roles``). The whole project's worst case is therefore a sum that can be
computed before anything runs, and checked against the server's ``max_connections``
(``ops.checks``; ``manage.py dbconnections`` sets it beside what the server holds now).
This module is the one place that arithmetic lives; the sizes come from the environment,
read in ``config/settings.py``.
"""

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from config.roles import PROJECT_SLUG, Role


@dataclass(frozen=True)
class ConnectionBudget:
    """The most PostgreSQL connections each role can hold, and their total.

    ``web_processes`` and ``worker_processes`` count OS processes that each own a pool:
    ASGI server processes (or replicas) and Celery prefork children. ``reserve`` keeps
    room for migrations, ``manage.py shell`` and an administrator's ``psql``.
    """

    web_processes: int
    web_pool_size: int
    worker_processes: int
    worker_pool_size: int
    manage_pool_size: int
    reserve: int

    def pool_size(self, role: Role) -> int:
        """The max_size of one process's pool, for a process of this role."""
        return {
            Role.WEB: self.web_pool_size,
            Role.WORKER: self.worker_pool_size,
            Role.MANAGE: self.manage_pool_size,
        }[role]

    def allowed(self, role: Role) -> int:
        """What all processes of a role may hold together (management commands, shells and
        an administrator's psql share the reserve)."""
        return {Role.WEB: self.web, Role.WORKER: self.worker, Role.MANAGE: self.reserve}[role]

    @property
    def web(self) -> int:
        return self.web_processes * self.web_pool_size

    @property
    def worker(self) -> int:
        return self.worker_processes * self.worker_pool_size

    @property
    def total(self) -> int:
        return self.web + self.worker + self.reserve


def pool_options(
    budget: ConnectionBudget, role: Role, timeout: float, reconnect_timeout: float
) -> dict:
    """The ``OPTIONS["pool"]`` of Django's PostgreSQL backend for one process.

    Pools open lazily, on a process's first query: a process that never queries (an ASGI
    process serving only WebSockets) never holds a connection.

    A pool that cannot connect tries again after 1, 2, 4... seconds, for as long as
    ``reconnect_timeout``; then the next query that needs a connection starts afresh at
    1 s. Left at psycopg-pool's five minutes, the gaps grow with the outage, and a worker
    could wait a minute after a one-minute outage before it noticed the server was back.
    """
    return {
        "min_size": 1,
        "max_size": budget.pool_size(role),
        "timeout": timeout,
        "reconnect_timeout": reconnect_timeout,
    }


# --- Redis ---------------------------------------------------------------------------------
# Each process holds Redis clients from several pools, each bounded by a setting, never by
# the number of sockets. What this counts on, beyond the settings:
EVENT_LOOPS = 1
"""Event loops per process that open Redis connections. The ASGI server runs one loop;
asgiref runs sync code on threads that call back into it rather than making loops of their
own. A worker child sends ``message.persisted`` on one loop for its life
(``chat.notifications``). A loop more would add a store pool and a layer pool per shard."""
CACHE_CLIENTS = 1
"""Connections of Django's cache (the sessions) per process. It makes a client per request
context, holding one connection while a command runs; sync code runs one request at a time
on asgiref's thread-sensitive thread, and the client goes with its request."""
BROKER_CLIENTS = 2
"""Redis connections per broker connection (``CELERY_BROKER_POOL_LIMIT`` counts those):
kombu's Redis transport gives each channel two pools, and takes a connection from one to
check the server when the channel opens, from the other to publish (seen in CLIENT LIST)."""
CONSUMER_CLIENTS = 2
"""A Celery worker's main process consumes with a connection for commands and one for its
blocking pops, and publishes (the pending sweep's hand-overs) like any other process."""


def redis_client_name(pool: str) -> str:
    """The name every connection of one of the project's Redis pools gives itself (``CLIENT
    SETNAME``): ``CLIENT LIST`` then tells an operator whose each connection is, and a test
    or the benchmark can hold each pool to its size. Pools: ``store`` and ``store-async``
    (``chat.redis_store``), ``cache`` (Django's, the sessions), ``layer``, ``broker``."""
    return f"{PROJECT_SLUG}:{pool}"


def redis_server(url: str) -> str:
    """Which Redis server ``url`` points at (``host:port``, or the socket's path): the
    roles that share one server, in any database, add up against its ``maxclients``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


@dataclass(frozen=True)
class RedisBudget:
    """The most Redis connections each process role can hold, per Redis server.

    Per process: the project's store (``chat.redis_store``: a blocking pool, and one more
    per event loop, each of ``store_pool_size``), Django's cache, the channel layer
    (``layer_pool_size`` per shard and event loop) and, when the broker is Redis, the
    broker's connection pool (``broker_pool_limit`` connections, ``BROKER_CLIENTS`` Redis
    connections each: publishing, and in a worker child the one it takes queued batches on,
    ``chat.queued``; a worker's main process consumes on two more). ``processes`` comes
    from the PostgreSQL budget: ASGI processes, and Celery prefork children; each worker's
    main process counts once more (one worker instance: add ``reserve`` for more).
    ``reserve`` keeps room for management commands, ``redis-cli`` and monitoring.
    """

    processes: ConnectionBudget
    store_url: str
    store_pool_size: int
    layer_urls: tuple[str, ...]
    layer_pool_size: int
    broker_url: str | None  # None: the broker is not Redis
    broker_pool_limit: int
    reserve: int

    def pools(self) -> list[tuple[str, str, int]]:
        """The pools of one ASGI process or worker child: each one's name
        (``redis_client_name``), its server's URL, and the most connections it may hold."""
        pools = [
            ("store", self.store_url, self.store_pool_size),
            ("store-async", self.store_url, self.store_pool_size * EVENT_LOOPS),
            ("cache", self.store_url, CACHE_CLIENTS),
        ]
        pools += [("layer", url, self.layer_pool_size * EVENT_LOOPS) for url in self.layer_urls]
        if self.broker_url is not None:
            pools.append(("broker", self.broker_url, self.broker_pool_limit * BROKER_CLIENTS))
        return pools

    def per_process(self) -> Counter[str]:
        """The connections one ASGI process or worker child may hold, by Redis server."""
        held: Counter[str] = Counter()
        for _, url, most in self.pools():
            held[redis_server(url)] += most
        return held

    def per_pool(self) -> Counter[str]:
        """The connections one ASGI process or worker child may hold, by pool (the name
        without the project's prefix, as ``redisconnections`` shows it)."""
        held: Counter[str] = Counter()
        for name, _, most in self.pools():
            held[name] += most
        return held

    def worker_main_process(self) -> Counter[str]:
        """A Celery worker's main process: the store, the cache and the broker, no layer."""
        held: Counter[str] = Counter()
        held[redis_server(self.store_url)] += self.store_pool_size + CACHE_CLIENTS
        if self.broker_url is not None:
            held[redis_server(self.broker_url)] += (
                self.broker_pool_limit * BROKER_CLIENTS + CONSUMER_CLIENTS
            )
        return held

    def allowed(self, role: Role) -> Counter[str]:
        """What all processes of a role may hold together, by server (management commands
        and everyone else's clients share the reserve)."""
        if role == Role.MANAGE:
            return Counter({redis_server(self.store_url): self.reserve})
        processes = {
            Role.WEB: self.processes.web_processes,
            Role.WORKER: self.processes.worker_processes,
        }[role]
        held = Counter({server: n * processes for server, n in self.per_process().items()})
        if role == Role.WORKER:
            held.update(self.worker_main_process())
        return held

    def server_urls(self) -> dict[str, str]:
        """A URL to reach each Redis server by (the first role's that names it)."""
        urls: dict[str, str] = {}
        for url in [self.store_url, *self.layer_urls, *filter(None, [self.broker_url])]:
            urls.setdefault(redis_server(url), url)
        return urls

    def shares(self) -> dict[str, dict[Role, int]]:
        """Each Redis server the project uses, with what each role may hold there."""
        allowed = {role: self.allowed(role) for role in Role}
        return {
            server: {role: allowed[role][server] for role in Role} for server in self.server_urls()
        }

    @property
    def servers(self) -> dict[str, int]:
        """Each Redis server the project uses, with the most connections it may hold."""
        return {server: sum(roles.values()) for server, roles in self.shares().items()}
