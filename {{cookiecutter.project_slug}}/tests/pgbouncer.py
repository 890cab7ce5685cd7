"""Run the suite through a real pgbouncer in transaction mode (Debian's ``pgbouncer``).

The test database is created directly on PostgreSQL; from then on every connection of the
tests, and of the server and worker processes they start, goes through a pgbouncer started
here from the project's own ``pgbouncer/pgbouncer.ini``.
"""

import os

import pytest
from django.conf import settings
from django.db import connections

from support.processes import PROJECT_DIR, PgBouncer, database_url


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    default = connections["default"]
    server = dict(default.settings_dict)
    pgbouncer = PgBouncer(server, ini=PROJECT_DIR / "pgbouncer" / "pgbouncer.ini")

    def route(host, port):
        with django_db_blocker.unblock():
            default.close()
            default.close_pool()
        for settings_dict in (default.settings_dict, settings.DATABASES["default"]):
            settings_dict.update(HOST=host, PORT=str(port), DISABLE_SERVER_SIDE_CURSORS=True)

    route("127.0.0.1", pgbouncer.port)
    os.environ["PGBOUNCER_URL"] = database_url(default.settings_dict)
    yield
    route(server["HOST"], server["PORT"])
    pgbouncer.stop()
