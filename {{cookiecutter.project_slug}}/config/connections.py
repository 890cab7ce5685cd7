"""How many connections each kind of process may open, and the pools that hold them.

Every process gets its own bounded psycopg pool (Django's native pooling), sized by its
role (``config.roles``). The whole project's worst case is therefore a sum that can be
computed before anything runs, and checked against the server's ``max_connections``
(``ops.checks``; ``manage.py dbconnections`` sets it beside what the server holds now).
This module is the one place that arithmetic lives; the sizes come from the environment,
read in ``config/settings.py``.
"""

from dataclasses import dataclass

from config.roles import Role


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
