"""Who holds PostgreSQL connections, read from pg_stat_activity on a separate connection.

Behind pgbouncer (``PGBOUNCER_URL`` in the environment, as the processes the tests start
read it) the answer comes from pgbouncer's own list of clients instead: its server
connections keep the ``application_name`` of whichever client used them last, so
pg_stat_activity would blame a process for a connection it gave back long ago.
"""

import os
from urllib.parse import urlsplit

import psycopg
from django.db import connection

from config.roles import Role, application_name
from ops.server_connection import server_connection


def admin_connection(params: dict | None = None) -> psycopg.Connection:
    """A connection of its own to the server the tests use (not through Django's pool), or
    to the server of ``params`` (a DATABASES entry: the benchmark has a database of its own)."""
    return server_connection(params or connection.settings_dict, application_name("probe"))


def connections_of(role: Role) -> int:
    """Connections to the test database that processes named ``<project_slug>:<role>`` hold."""
    if pgbouncer_url := os.environ.get("PGBOUNCER_URL"):
        return pgbouncer_clients_of(role, pgbouncer_url)
    with admin_connection() as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [application_name(role), connection.settings_dict["NAME"]],
        ).fetchone()
    return row[0]


def pgbouncer_clients_of(role: Role, pgbouncer_url: str) -> int:
    """pgbouncer's clients named for ``role``, from its console (the ``pgbouncer`` database,
    for users in its ``stats_users``; it speaks only the simple query protocol)."""
    url = urlsplit(pgbouncer_url)
    with psycopg.connect(
        host=url.hostname,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    ) as console:
        cursor = console.execute("SHOW CLIENTS")
        columns = [column.name for column in cursor.description or ()]
        clients = [dict(zip(columns, row, strict=True)) for row in cursor]
    return sum(
        client["application_name"] == application_name(role)
        and client["database"] == connection.settings_dict["NAME"]
        for client in clients
    )
