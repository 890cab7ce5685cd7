"""Run the suite through a real pgbouncer in transaction mode (Debian's ``pgbouncer``).

The test database is created directly on PostgreSQL; from then on every connection of the
tests, and of the server and worker processes they start, goes through a pgbouncer started
here from the project's own ``pgbouncer/pgbouncer.ini``.
"""

import configparser
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from support.processes import PROJECT_DIR, database_url, free_port, wait_for


def pgbouncer_ini(directory, port: int, server: dict) -> str:
    """The project's pgbouncer.ini, on a free port, forwarding to the test's PostgreSQL."""
    config = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",))
    config.optionxform = str
    config.read(PROJECT_DIR / "pgbouncer" / "pgbouncer.ini")
    host, server_port = server["HOST"] or "127.0.0.1", server["PORT"] or 5432
    config["databases"]["*"] = f"host={host} port={server_port}"
    config["pgbouncer"].update(
        listen_port=str(port),
        auth_file=str(shutil.copy(PROJECT_DIR / "pgbouncer" / "userlist.txt", directory)),
        logfile=str(directory / "pgbouncer.log"),
        # support.pgstat counts each process's connections on its console.
        stats_users=server["USER"] or "postgres",
    )
    path = directory / "pgbouncer.ini"
    with open(path, "w") as ini:
        config.write(ini)
    return str(path)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # pgbouncer refuses to run as root, so as root it runs as postgres, which must be able
    # to read its files: pytest's own temporary directories are private to root.
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    directory.chmod(0o755)
    default = connections["default"]
    server = dict(default.settings_dict)
    port = free_port()
    command = ["pgbouncer", pgbouncer_ini(directory, port, server)]
    if os.geteuid() == 0:
        (directory / "pgbouncer.log").touch()
        shutil.chown(directory / "pgbouncer.log", "postgres")
        command[1:1] = ["-u", "postgres"]
    # It logs to its logfile; an unread pipe on stdout would fill up and stall it.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited:\n{(directory / 'pgbouncer.log').read_text()}")
        return "listening on" in (directory / "pgbouncer.log").read_text()

    wait_for(listening, 15, "pgbouncer to listen")

    def route(host, port):
        with django_db_blocker.unblock():
            default.close()
            default.close_pool()
        for settings_dict in (default.settings_dict, settings.DATABASES["default"]):
            settings_dict.update(HOST=host, PORT=str(port), DISABLE_SERVER_SIDE_CURSORS=True)

    route("127.0.0.1", port)
    os.environ["PGBOUNCER_URL"] = database_url(default.settings_dict)
    yield
    route(server["HOST"], server["PORT"])
    process.terminate()  # closes its server connections, so the test database can be dropped
    process.wait(10)
    shutil.rmtree(directory)
