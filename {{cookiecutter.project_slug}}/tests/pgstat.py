"""Who holds PostgreSQL connections, read from pg_stat_activity on a separate connection."""

import psycopg
from django.conf import settings
from django.db import connection


def connections_of(role: str) -> int:
    """Connections to the test database named ``<project_slug>:<role>``."""
    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        dbname="postgres",
        application_name=f"{settings.PROJECT_SLUG}:probe",
        autocommit=True,
    ) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [f"{settings.PROJECT_SLUG}:{role}", params["NAME"]],
        ).fetchone()
    return row[0]
