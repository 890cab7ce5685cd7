"""The benchmark's stage: its own database, users with real sessions, server and worker.

The benchmark uses a database of its own (``<name>_bench``, created and migrated here) so
that it never mixes its rows with the project's, and starts processes with the helpers the
end-to-end tests use (``support.processes``). Servers are started directly, not from the
Procfile, because the benchmark also runs the server the project was not generated with.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client

from chat import redis_store
from chat.models import Message
from chat.queue import PERSIST_TASK
from config.celery import app
from support import processes
from support.processes import (
    PgBouncer,
    Process,
    database_url,
    procfile_command,
    start_web,
    start_worker,
)

SERVERS = {
    "daphne": "daphne --bind 127.0.0.1 --port $PORT {app}",
    "uvicorn": "uvicorn {app} --host 127.0.0.1 --port $PORT --ws-max-size 65536",
}


@dataclass(frozen=True)
class Design:
    """One design the benchmark runs: its ASGI application and settings, whether it needs
    the worker, environment of its own, and whether it reaches PostgreSQL through pgbouncer."""

    name: str
    app: str
    settings: str = "bench.peers.settings"
    persists: bool = False  # needs the worker, which sends message.persisted
    stores: bool = True  # its messages end up in PostgreSQL, and are counted there
    env: dict = field(default_factory=dict)
    pgbouncer: bool = False


DESIGNS = {
    design.name[1]: design
    for design in (
        Design("(a) WebsocketConsumer + ORM in the consumer", "bench.peers.asgi:sync_orm"),
        Design(
            "(b) AsyncWebsocketConsumer + database_sync_to_async(thread_sensitive=False)",
            "bench.peers.asgi:async_orm",
        ),
        Design("(c) this project", "config.asgi:application", "config.settings", persists=True),
        Design(
            "(d) this project, persistence off (ceiling)",
            "config.asgi:application",
            "config.settings",
            stores=False,
            env={"CHAT_HANDOFF_PUBLISHER": "bench.ceiling.publish_nowhere"},
        ),
        Design(
            "(e) bare Channels consumer: group_send only", "bench.peers.asgi:bare", stores=False
        ),
        Design(
            "(f) (b) + close_old_connections() / connection.close() around each ORM call",
            "bench.peers.asgi:manual_close",
        ),
        Design(
            "(g) (b) + Django's pool in the ASGI process (max_size 20)",
            "bench.peers.asgi:async_orm",
            "bench.peers.pooled",
        ),
        Design(
            "(h) (b) + pgbouncer, transaction mode (20 server connections)",
            "bench.peers.asgi:async_orm",
            pgbouncer=True,
        ),
    )
}
DESIGN_NAMES = {key: design.name for key, design in DESIGNS.items()}
PASSWORD_NEVER_USED = "!"  # an unusable password hash: sessions come from force_login


def default_server() -> str:
    """The server the project was generated with: the Procfile's web command."""
    return procfile_command("web").split()[0]


def procfile_server(app: str) -> str:
    """The Procfile's web command serving ``app``: the shipped server settings (keepalive,
    compression, frame size) for another design too."""
    return procfile_command("web").replace("config.asgi:application", app)


def use_bench_database() -> None:
    """Point Django at ``<name>_bench`` (created if missing) and migrate it."""
    default = connections["default"]
    default.close()
    name = f"{settings.DATABASES['default']['NAME']}_bench"
    for settings_dict in (default.settings_dict, settings.DATABASES["default"]):
        settings_dict["NAME"] = name
    call_command("preflight", verbosity=0)
    call_command("migrate", verbosity=0, interactive=False)


def child_env(settings_module: str = "config.settings", layer: str | None = None) -> dict:
    """The environment of a server or worker process started by the benchmark."""
    return processes.child_env(
        PGBOUNCER_URL="",  # straight to PostgreSQL: connections are counted there
        DJANGO_SETTINGS_MODULE=settings_module,
        CHANNEL_LAYER=layer or settings.CHANNEL_LAYER,
        # Its own channel-layer prefix: a `make run` of the same project is not disturbed.
        CHANNEL_LAYER_PREFIX=f"{settings.PROJECT_SLUG}-bench",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )


def log_in_users(count: int) -> list[str]:
    """``count`` users, each logged in through Django's login path: their session cookies.

    ``force_login`` runs the real login signal, so the session in Redis carries the
    identity the project's consumers read, and the auth keys Channels' middleware reads.
    """
    User = get_user_model()
    names = [f"bench-user-{n}" for n in range(count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [User(username=n, password=PASSWORD_NEVER_USED) for n in names if n not in existing]
    )
    cookies = []
    for user in User.objects.filter(username__in=names).order_by("id"):
        client = Client()
        client.force_login(user)
        cookies.append(
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    return cookies


def author_id() -> int:
    return (
        get_user_model()
        .objects.filter(username__startswith="bench-user-")
        .values_list("id", flat=True)[0]
    )


def empty_messages() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Message._meta.db_table}")


def empty_queue() -> None:
    """Drop what a scenario left unstored: the batches in the persistence queue, whichever
    broker holds it, and the benchmark database's pending index. Left there, they would be
    stored, or handed over again by the pending sweep, in the next scenario's figures. (The
    pending entries themselves expire; only the index leads the sweep to them.)"""
    queue = settings.CELERY_TASK_ROUTES[PERSIST_TASK]["queue"]
    with app.connection_for_write() as broker:
        declared = app.amqp.queues[queue](broker.default_channel)
        declared.declare()
        declared.purge()
    redis_store.client().delete(redis_store.pending_index())


def stored(ids) -> int:
    return Message.objects.filter(id__in=list(ids)).count()


class Stage:
    """Starts and stops the benchmark's processes, keeping their logs in one folder."""

    def __init__(self, logs: Path):
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        # A design's pgbouncer lives as long as its server: the server connections it keeps
        # would otherwise be counted in the next design's figures.
        self.pgbouncer: PgBouncer | None = None

    def servers(
        self,
        server: str,
        design: str,
        count: int = 1,
        layer: str | None = None,
        database: dict | None = None,
        env: dict | None = None,
        command: str | None = None,
    ) -> list[tuple[Process, str]]:
        """``count`` server processes of a design, and their URLs; ``database`` (a
        ``DATABASES`` entry) replaces the benchmark's, ``env`` adds to their environment,
        ``command`` replaces the server's command line (``SERVERS``)."""
        chosen = DESIGNS[design]
        database = database or connection.settings_dict
        env = (
            child_env(chosen.settings, layer)
            | {"DATABASE_URL": database_url(database)}
            | chosen.env
            | (env or {})
        )
        if chosen.pgbouncer:  # one in front of all of them, as it would be deployed
            self.pgbouncer = PgBouncer(database)
            env["DATABASE_URL"] = self.pgbouncer.url(database["NAME"])
        command = command or SERVERS[server].format(app=chosen.app)
        started = []
        for n in range(count):
            log = self.logs / f"web-{server}-{design}-{layer or settings.CHANNEL_LAYER}-{n}.log"
            web, port = start_web(env, log, command=command)
            started.append((web, f"ws://127.0.0.1:{port}"))
        return started

    def server(self, server: str, design: str, layer: str | None = None) -> tuple[Process, str]:
        return self.servers(server, design, layer=layer)[0]

    def stop(self, *webs: Process) -> None:
        """Stop servers from ``servers()``, and their design's pgbouncer."""
        for web in webs:
            web.stop()
        if self.pgbouncer is not None:
            self.pgbouncer.stop()
            self.pgbouncer = None

    def worker(
        self,
        layer: str | None = None,
        wait: bool = True,
        database: dict | None = None,
        env: dict | None = None,
    ) -> Process:
        """The Procfile's worker; ``database`` and ``env`` as for ``servers()``."""
        env = child_env(layer=layer) | (env or {})
        if database:
            env["DATABASE_URL"] = database_url(database)
        log = self.logs / f"worker-{layer or settings.CHANNEL_LAYER}.log"
        if wait:
            return start_worker(env, log)
        return Process("worker", env, log)


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group.

    Servers and workers are started in a session of their own, so the group is the
    process's pid and takes in a worker's prefork children.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process has gone
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def rss_mb(pid: int) -> dict:
    """Resident memory of a process now and at its peak (VmHWM), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "peak_rss_mb": fields.get("VmHWM")}
