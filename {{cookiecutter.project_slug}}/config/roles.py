"""The kinds of process this project runs, and the name each gives PostgreSQL.

Every entry point declares its role before Django starts (``PROCESS_ROLE``): the ASGI
server (``config/asgi.py``) is ``web``, the Celery worker (``config/celery.py``) is
``worker``, ``manage.py`` is ``manage``. The role sizes the process's connection pools
(``config/connections.py``) and names its connections in ``pg_stat_activity``
(``application_name``), which is how ``manage.py dbconnections``, the benchmark and the
tests tell whose connections they see.
"""

import enum

PROJECT_SLUG = "{{ cookiecutter.project_slug }}"


class Role(enum.StrEnum):
    WEB = "web"
    WORKER = "worker"
    MANAGE = "manage"


def application_name(role: Role | str) -> str:
    """``<project_slug>:<role>``, as this project's connections of that role are named."""
    return f"{PROJECT_SLUG}:{role}"


def role_of(name: str) -> Role | None:
    """The role of a connection named ``name`` in ``pg_stat_activity``; None if not ours."""
    prefix = application_name("")
    if name.startswith(prefix):
        try:
            return Role(name.removeprefix(prefix))
        except ValueError:
            return None
    return None
