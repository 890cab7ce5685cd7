"""A connection to the PostgreSQL server itself, outside Django's pool.

For what no pool should do: create the project's database before it exists (``manage.py
preflight``), or watch ``pg_stat_activity`` from outside the processes being watched (the
tests and the benchmark). It opens the ``postgres`` database, in autocommit.
"""

import psycopg

from config.roles import Role, application_name


def server_connection(
    settings_dict: dict, name: str = application_name(Role.MANAGE), **options
) -> psycopg.Connection:
    """Connect with a ``DATABASES`` entry's host, port and credentials as ``name``."""
    return psycopg.connect(
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
        dbname="postgres",
        application_name=name,
        autocommit=True,
        **options,
    )
