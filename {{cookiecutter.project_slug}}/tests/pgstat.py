"""Who holds PostgreSQL connections, read from pg_stat_activity on a separate connection."""

import psycopg
from django.conf import settings
from django.db import connection


def admin_connection(params: dict | None = None) -> psycopg.Connection:
    """A connection of its own to the server the tests use (not through Django's pool), or
    to the server of ``params`` (a DATABASES entry: the benchmark has a database of its own)."""
    params = params or connection.settings_dict
    return psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        dbname="postgres",
        application_name=f"{settings.PROJECT_SLUG}:probe",
        autocommit=True,
    )


def connections_of(role: str) -> int:
    """Connections to the test database named ``<project_slug>:<role>``."""
    with admin_connection() as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [f"{settings.PROJECT_SLUG}:{role}", connection.settings_dict["NAME"]],
        ).fetchone()
    return row[0]
