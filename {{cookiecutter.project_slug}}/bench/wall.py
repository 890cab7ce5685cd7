"""The connection wall: each design against a PostgreSQL that has only so many connections.

A PostgreSQL of the benchmark's own (``support.processes.PostgresServer``: ``initdb`` and
``pg_ctl`` from the machine's binaries, in a temporary directory, on a free port) with a
small ``max_connections``; K server processes of a design, each with the thread pool
production gives it (``ASGI_THREADS``); then a burst: every socket opens at once, and
every socket sends one message at once. Per design and K: the peak connections, the
``too many clients`` refusals the server logged, the handshakes and messages that failed,
and, for the designs that store, messages never stored.

The benchmark's own two connections (its sampler and the row count) are not counted.
"""

import asyncio
import os
import subprocess
import sys
import time

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection

from bench import load
from bench.pgwatch import ConnectionWatch
from bench.stack import DESIGNS, Stage, default_server
from chat.models import Message
from support.processes import PROJECT_DIR, PostgresServer, database_url

REFUSAL = "too many clients already"  # PostgreSQL's FATAL for one connection too many


def wall(stage: Stage, sizes, cookies: list[str], progress) -> list[dict]:
    limit = sizes.wall_max_connections
    progress(f"a PostgreSQL of its own, max_connections = {limit}", head=True)
    server = PostgresServer({"max_connections": str(limit)})
    try:
        database = wall_database(server)
        rows = []
        for design in sizes.wall_designs:
            for count in sizes.wall_processes:
                progress(f"design {design}, {count} server processes", head=True)
                rows.append(
                    wall_run(stage, sizes, cookies, design, count, server, database, progress)
                )
        return rows
    finally:
        server.destroy()


def wall_database(server: PostgresServer) -> dict:
    """The benchmark's database on the wall's server: migrated, with the benchmark's users
    (the same ids: their sessions name them)."""
    name = connection.settings_dict["NAME"]
    database = server.settings_dict(name)
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url(database), "PGBOUNCER_URL": ""},
        check=True,
    )
    User = get_user_model()
    fields = User._meta.concrete_fields
    users = User.objects.filter(username__startswith="bench-user-")
    columns = ", ".join(field.column for field in fields)
    copying = f"COPY {User._meta.db_table} ({columns}) FROM STDIN"
    with (
        psycopg.connect(database_url(database)) as wall_db,
        wall_db.cursor() as cursor,
        cursor.copy(copying) as copy,
    ):
        for row in users.values_list(*(field.attname for field in fields)):
            copy.write_row(row)
    return database


def wall_run(
    stage: Stage,
    sizes,
    cookies: list[str],
    design: str,
    count: int,
    server: PostgresServer,
    database: dict,
    progress,
) -> dict:
    chosen = DESIGNS[design]
    rooms = [f"bench-wall-{design}-{count}-{n}" for n in range(sizes.wall_sockets // 10)]
    tally = load.Tally()

    async def drive(urls: list[str]) -> tuple[int, int, bool]:
        sockets, refused = await load.burst(urls, cookies, rooms, sizes.wall_sockets)
        progress(f"{len(sockets)} sockets open, {refused} refused; each sends one message")
        load.attach(sockets, tally)
        tally.first_send = time.perf_counter()
        outcomes = await asyncio.gather(
            *(socket.send(f"burst {socket.index}") for socket in sockets), return_exceptions=True
        )
        tally.last_send = time.perf_counter()
        settled = await load.settle(tally, want_persisted=chosen.persists, within=sizes.wall_settle)
        for socket in sockets:
            await socket.close()
        return refused, sum(outcome is not None for outcome in outcomes), settled

    refusals = server.log.read_text().count(REFUSAL)
    with psycopg.connect(database_url(database), autocommit=True) as wall_db:
        wall_db.execute(f"TRUNCATE {Message._meta.db_table}")
    worker = stage.worker(database=database) if chosen.persists else None
    try:
        started = stage.servers(
            default_server(),
            design,
            count,
            database=database,
            env={"ASGI_THREADS": str(sizes.wall_threads)},
        )
        try:
            with ConnectionWatch(database) as watch:
                handshakes_failed, sends_failed, settled = asyncio.run(
                    drive([url for _, url in started])
                )
        finally:
            stage.stop(*(web for web, _ in started))
        with psycopg.connect(database_url(database)) as wall_db:
            stored = wall_db.execute(
                f"SELECT count(*) FROM {Message._meta.db_table} WHERE id = ANY(%s)",
                [list(tally.sent)],
            ).fetchone()[0]
    finally:
        if worker:
            worker.stop()
    figures = load.summary(tally)
    row = {
        "design": design,
        "processes": count,
        "threads": sizes.wall_threads,
        "max_connections": sizes.wall_max_connections,
        "sockets": sizes.wall_sockets,
        "handshakes_failed": handshakes_failed,
        "sent": figures["sent"] - sends_failed,
        "stored": stored if chosen.stores else None,
        "unstored": figures["sent"] - sends_failed - stored if chosen.stores else None,
        "missing_frames": figures["missing_frames"],
        "errors": figures["errors"],
        "latency_p99_ms": figures["latency_p99_ms"],
        "settled": settled,
        "refusals": server.log.read_text().count(REFUSAL) - refusals,
        "web_peak": watch.peak["web"],
        "worker_peak": watch.peak["worker"],
        "samples": watch.samples,
    }
    progress(
        f"peak {row['web_peak']} + {row['worker_peak']} connections, {row['refusals']} "
        f"refused by PostgreSQL, {row['unstored']} messages not stored"
    )
    return row
