"""Operations tooling against real processes: probes, metrics, and ``manage.py dbconnections``."""

import asyncio
import io
import json
import time
import urllib.error
import urllib.request

import psycopg
import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from config.roles import Role, role_of
from support.pgstat import connections_of
from support.processes import (
    RedisServer,
    child_env,
    free_port,
    refusing_port,
    start_web,
    start_worker,
    wait_for,
)
from tests.wsclient import Client

pytestmark = pytest.mark.django_db(transaction=True)


METRICS_TOKEN = "a-token-for-the-scraper"


def get(url: str, **headers) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from Prometheus text format."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def env(persist_queue):
    return child_env()


@pytest.mark.e2e
def test_probes_and_metrics_of_web_and_worker(env, make_user, tmp_path):
    """A message through real processes shows up in both processes' metrics; scraping the
    web process's metrics opens no database connection (it served only WebSockets)."""
    ann = make_user()
    metrics_port = free_port()
    worker = start_worker({**env, "WORKER_METRICS_PORT": str(metrics_port)}, tmp_path / "w.log")
    web, port = start_web(
        {**env, "METRICS_TOKEN": METRICS_TOKEN, "METRICS_ALLOWED_IPS": ""}, tmp_path / "web.log"
    )
    base = f"http://127.0.0.1:{port}"
    try:

        async def talk():
            async with Client(f"ws://127.0.0.1:{port}", ann, "ops-room") as client:
                message_id = await client.send("counted")
                await client.wait_until(lambda f: message_id in client.ids("message.persisted"))

        asyncio.run(talk())

        def web_metrics():
            status, body = get(f"{base}/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
            assert status == 200
            return samples(body.decode())

        # Only the operator's scraper: anyone else finds nothing there.
        assert get(f"{base}/metrics")[0] == 404
        assert get(f"{base}/metrics", Authorization="Bearer guess")[0] == 404

        # The consumer's disconnect runs after the client has gone: wait for the gauge.
        web_figures = wait_for(
            lambda: (f := web_metrics())[("chat_sockets_connected", ())] == 0 and f,
            30,
            "the socket gauge to drop back to 0",
        )
        assert web_figures[("chat_frames_received_total", ())] >= 1
        assert web_figures[("chat_frames_sent_total", ())] >= 3  # message, accepted, persisted
        assert web_figures[("chat_messages_accepted_total", ())] == 1
        assert web_figures[("chat_handoff_batch_size_count", ())] == 1
        assert web_figures[("chat_handoff_publish_seconds_count", ())] == 1
        assert web_figures[("db_pool_connections", (("role", "web"),))] == 0
        assert web_figures[("db_pool_max_size", (("role", "web"),))] == (
            settings.CONNECTION_BUDGET.web_pool_size
        )
        assert connections_of(Role.WEB) == 0

        status, body = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        worker_figures = samples(body.decode())
        assert worker_figures[("chat_messages_persisted_total", ())] == 1
        assert worker_figures[("chat_persist_lag_seconds_count", ())] == 1
        assert worker_figures[("chat_dead_letters_total", ())] == 0
        assert worker_figures[("db_pool_connections", (("role", "worker"),))] >= 1

        status, body = get(f"{base}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        status, body = get(f"{base}/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"] == {"redis": "ok", "broker": "ok", "database": "ok"}
    finally:
        web.stop()
        worker.stop()


@pytest.mark.e2e
def test_readyz_names_what_is_down_within_its_timeout(env, tmp_path):
    """Broker and database on ports where nothing listens: alive, not ready, and quick.

    The broker refuses at once; the database pool would wait DB_POOL_TIMEOUT for a
    connection, and the probe answers after READINESS_TIMEOUT regardless."""
    refusing, dead_port = refusing_port()
    web, port = start_web(
        {
            **env,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{dead_port}/0",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_port}/nowhere",
            "PGBOUNCER_URL": "",
            "READINESS_TIMEOUT": "1",
            # The pool would wait this long for a connection; the probe must not.
            "DB_POOL_TIMEOUT": "4",
        },
        tmp_path / "web.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert get(f"{base}/healthz")[0] == 200
        started = time.monotonic()
        status, body = get(f"{base}/readyz")
        elapsed = time.monotonic() - started
        report = json.loads(body)
        assert status == 503 and report["status"] == "unavailable"
        assert report["checks"] == {"redis": "ok", "broker": "error", "database": "timeout"}
        assert elapsed < 3
        # What failed, never why: no exception text, no host or port, in the answer.
        assert str(dead_port).encode() not in body and b"Error" not in body
        assert "Readiness check 'broker' failed" in web.output()
    finally:
        web.stop()
        refusing.close()


def test_role_of_reads_the_application_name():
    slug = settings.PROJECT_SLUG
    assert [role_of(f"{slug}:{r}") for r in ("web", "worker", "manage")] == [
        Role.WEB,
        Role.WORKER,
        Role.MANAGE,
    ]
    assert role_of("psql") is role_of(f"{slug}:probe") is role_of(f"x{slug}:web") is None


def test_dbconnections_groups_the_server_by_role_against_the_budget():
    params = connection.settings_dict
    name = f"{settings.PROJECT_SLUG}:worker"
    with psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        dbname=params["NAME"],
        application_name=name,
    ) as held:
        # An open transaction: behind pgbouncer in transaction mode, that is what holds a
        # server connection (carrying this application_name) for the client.
        held.execute("SELECT 1")
        out = io.StringIO()
        call_command("dbconnections", "--json", stdout=out)
        figures = json.loads(out.getvalue())
        text = io.StringIO()
        call_command("dbconnections", stdout=text)

    budget = settings.CONNECTION_BUDGET
    worker = figures["roles"]["worker"]
    assert worker["total"] >= 1 and worker["states"].get("idle in transaction", 0) >= 1
    assert worker["budget"] == budget.worker
    assert figures["budget_total"] == budget.total
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        show = cursor.fetchone()[0]
    assert figures["max_connections"] == int(show)
    assert figures["server_total"] >= figures["project_total"] >= 1
    assert "worker" in text.getvalue() and f"max_connections = {show}" in text.getvalue()


@pytest.mark.e2e
def test_readyz_reuses_its_answer_and_its_connections(env, tmp_path):
    """A Redis of the test's own (broker, channel layer, everything), so that its counters
    are this process's alone: a burst of probes costs one round of checks per
    READINESS_CACHE_SECONDS, and rounds of checks open no connection of their own."""
    redis_server = RedisServer(tmp_path)
    probe = redis.Redis.from_url(redis_server.url)
    web = None
    try:

        def pings() -> int:
            return probe.info("commandstats").get("cmdstat_ping", {}).get("calls", 0)

        def connections_received() -> int:
            return probe.info("stats")["total_connections_received"]

        cached = {
            **env,
            "REDIS_URL": redis_server.url,
            # The broker too, whichever the project chose: these counters are Redis's.
            "CELERY_BROKER_URL": redis_server.url,
            "READINESS_CACHE_SECONDS": "60",
        }
        web, port = start_web(cached, tmp_path / "cached.log")
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        before = pings()
        for _ in range(30):
            assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert pings() == before  # all 30 answered from the first round's answer
        web.stop()

        uncached = {**cached, "READINESS_CACHE_SECONDS": "0"}
        web, port = start_web(uncached, tmp_path / "uncached.log")
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200  # the pools fill here
        before_pings, before_connections = pings(), connections_received()
        for _ in range(20):
            assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert pings() - before_pings >= 20 * 2  # every probe checked Redis and the broker
        assert connections_received() == before_connections  # through connections kept
    finally:
        if web is not None:
            web.stop()
        probe.close()
        redis_server.stop()
