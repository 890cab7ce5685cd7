"""``manage.py preflight``: are PostgreSQL and Redis there? Create the database if missing.

It also sets the Redis budget against each Redis server's ``maxclients``
(``ops.checks.redis_budget_fits_servers``): over it, it stops; near it, it warns.

Run by ``make migrate`` so that a fresh machine gets a sentence telling what to start,
not a traceback. It says where it looked, never with a password: its output ends up in
deployment logs.
"""

from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from ops.checks import redis_budget_fits_servers
from ops.server_connection import server_connection


def redacted(url: str) -> str:
    """``url`` with any password in it replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class Command(BaseCommand):
    help = "Check that PostgreSQL and Redis are reachable, and create the database if missing."

    def handle(self, *args, **options):
        self.check_redis()
        self.check_redis_budget()
        self.ensure_database()

    def check_redis(self):
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            raise CommandError(
                f"Redis is not reachable at {redacted(settings.REDIS_URL)} ({exc}).\n"
                "Start it (e.g. `redis-server --daemonize yes`, or `docker compose up -d redis`) "
                "or set REDIS_URL."
            ) from None
        self.stdout.write(f"Redis: reachable at {redacted(settings.REDIS_URL)}")

    def check_redis_budget(self):
        found = redis_budget_fits_servers(databases=["default"])
        for message in found:
            self.stderr.write(f"{message.id}: {message.msg}\n  HINT: {message.hint}")
        if any(message.is_serious() for message in found):
            raise CommandError("The Redis budget does not fit: see above.")
        if not found:
            self.stdout.write("Redis: the budget fits every server's maxclients")

    def ensure_database(self):
        db = settings.DATABASES["default"]
        where = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
        try:
            with server_connection(db, connect_timeout=3) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
                ).fetchone()
                if exists:
                    self.stdout.write(f"PostgreSQL: database {db['NAME']!r} exists at {where}")
                    return
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                self.stdout.write(f"PostgreSQL: created database {db['NAME']!r} at {where}")
        except psycopg.OperationalError as exc:
            raise CommandError(
                f"PostgreSQL is not reachable at {where} ({str(exc).strip()}).\n"
                "Start it (e.g. `sudo service postgresql start`, or `docker compose up -d "
                "postgres`) or set DATABASE_URL."
            ) from None
