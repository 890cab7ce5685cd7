"""How many PostgreSQL connections each kind of process may open.

Every process gets its own bounded psycopg pool (Django's native pooling), sized by its
role. The whole project's worst case is therefore a sum that can be computed before
anything runs, and checked against the server's ``max_connections`` (see
``ops.checks``). This module is the one place that arithmetic lives.
"""

from dataclasses import dataclass

ROLES = ("web", "worker", "manage")


@dataclass(frozen=True)
class ConnectionBudget:
    """The most connections each role can hold, and their total.

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

    def pool_size(self, role: str) -> int:
        """The max_size of one process's pool, for a process of this role."""
        return {
            "web": self.web_pool_size,
            "worker": self.worker_pool_size,
            "manage": self.manage_pool_size,
        }[role]

    @property
    def web(self) -> int:
        return self.web_processes * self.web_pool_size

    @property
    def worker(self) -> int:
        return self.worker_processes * self.worker_pool_size

    @property
    def total(self) -> int:
        return self.web + self.worker + self.reserve


def pool_options(budget: ConnectionBudget, role: str, timeout: float) -> dict:
    """The ``OPTIONS["pool"]`` of Django's PostgreSQL backend for one process.

    Pools open lazily, on a process's first query: a process that never queries (an ASGI
    process serving only WebSockets) never holds a connection.
    """
    return {"min_size": 1, "max_size": budget.pool_size(role), "timeout": timeout}
