"""Faults, with real processes killed by the test: nothing accepted is lost, nothing is
stored twice (docs/operations.md lists each fault and what the system does about it).

Each test runs the ASGI server and the Celery worker from the Procfile, streams messages
from clients that behave as the contract asks (resend what was not accepted, same id),
breaks something for real in the middle, and then checks the one guarantee that matters:
every id the server accepted is stored exactly once.
"""

import asyncio
import contextlib
import json
import os
import signal
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client as HttpClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chat import mirrors, redis_store, rooms
from chat.models import DeadLetter, Message
from config.roles import Role
from support.pgstat import admin_connection, connections_of
from support.processes import (
    NO_RATE_LIMITS,
    PostgresServer,
    RabbitMQServer,
    RedisServer,
    child_env,
    database_url,
    rabbitmq_binaries,
    server_binaries,
    start_web,
    start_worker,
    wait_for,
)
from tests import broker
from tests.conftest import LoggedIn, use_redis_of_its_own
from tests.proxy import Proxy
from tests.wsclient import Client, Stream

# A socket open when Redis goes away may also be closed rather than answered: the channel
# layer's receive loop fails, Channels ends the consumer, the server closes with 1011.
CLOSED_BY_REDIS_OUTAGE = (1011,)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def env(persist_queue, redis_client):
    """The processes' environment: the test database, no rate limit or per-user budget in the
    way of a stream, the project's own visibility timeout, restore interval and pending sweep
    (a killed worker's batches come back within seconds, including those the broker lost:
    docs/operations.md, chat/sweep.py), and a longer hand-off window (bigger batches, fewer
    tasks: kinder to a 2-core CI machine; the guarantees do not depend on the batch size)."""
    broker_state = ("unacked", "unacked_index", "unacked_mutex", redis_store.pending_index())
    redis_client.delete(*broker_state)
    yield child_env(**NO_RATE_LIMITS, CHAT_HANDOFF_MAX_DELAY_MS="50")
    redis_client.delete(*broker_state)


class Stack:
    """The web and worker processes of one test, stopped (whatever state they are in) at the
    end."""

    def __init__(self, env: dict, logs):
        self.env, self.logs, self.runs = env, logs, 0
        self.web = self.worker = None
        self.port = None

    def start_web(self):
        self.runs += 1
        self.web, self.port = start_web(self.env, self.logs / f"web-{self.runs}.log")

    def start_worker(self):
        self.runs += 1
        self.worker = start_worker(self.env, self.logs / f"worker-{self.runs}.log")

    def supervised_until(self, condition, timeout: float, what: str) -> list[str]:
        """Wait for ``condition`` with the worker run as a deployment's supervisor runs it:
        started again whenever it exits (kombu's Redis transport can crash it when the
        broker goes away: docs/operations.md). The last log line of each exit."""
        exits = []

        def check():
            if self.worker.popen.poll() is not None:
                exits.append(self.worker.tail(1))
                with contextlib.suppress(ProcessLookupError):  # its children go with it
                    os.killpg(self.worker.popen.pid, signal.SIGKILL)
                self.worker.stop()
                self.start_worker()
            return condition()

        wait_for(check, timeout, what)
        return exits

    def stream(self, users, per_user: int, within: float) -> tuple[list[Stream], "Background"]:
        """Worker and web processes up, and ``per_user`` messages from each user streaming
        in the background (``within`` seconds at most): the stage for a fault."""
        self.start_worker()
        self.start_web()
        all_streams = streams(self, users, per_user)
        return all_streams, Background(all_streams, within)

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self):
        for process in (self.web, self.worker):
            if process is not None:
                process.stop()


@pytest.fixture
def stack(env, tmp_path):
    stack = Stack(env, tmp_path)
    yield stack
    stack.stop()


def streams(stack, users, per_user: int) -> list[Stream]:
    return [Stream(stack.url, user, f"fault-{uuid.uuid4().hex[:8]}", per_user) for user in users]


def stored_count(ids) -> int:
    return Message.objects.filter(id__in=list(ids)).count()


def assert_stored_exactly_once(all_streams: list[Stream]):
    sent = [i for s in all_streams for i in s.ids]
    accepted = set().union(*(s.accepted for s in all_streams))
    assert accepted == set(sent), "every stream must end with all its messages accepted"
    rooms = [s.room for s in all_streams]
    stored = list(Message.objects.filter(room__in=rooms).values_list("id", flat=True))
    assert len(stored) == len(set(stored)) == len(sent)
    assert {str(i) for i in stored} == accepted
    # (Only this test's ids: a batch left over by an earlier test may dead-letter here.)
    dead = DeadLetter.objects.filter(message_id__in=sent).values_list("message_id", "reason")
    assert not dead, list(dead)


async def run_streams(all_streams: list[Stream], within: float):
    async with asyncio.TaskGroup() as group:
        for stream in all_streams:
            group.create_task(stream.run(within))


class Background:
    """Streams running on an event loop in a thread, while the test body (sync, with the
    ORM) breaks things and watches the database."""

    def __init__(self, all_streams: list[Stream], within: float):
        self.streams, self.error = all_streams, None
        self.thread = threading.Thread(target=self.run, args=(within,))
        self.thread.start()

    def run(self, within):
        try:
            asyncio.run(run_streams(self.streams, within))
        except BaseException as exc:  # reported by join()
            self.error = exc

    @property
    def accepted(self) -> int:
        return sum(len(s.accepted) for s in self.streams)

    @property
    def total(self) -> int:
        return sum(len(s.ids) for s in self.streams)

    def wait_accepted(self, fraction: float, timeout: float = 120):
        def reached():
            if self.error is not None or not self.thread.is_alive():
                return True
            return self.accepted >= fraction * self.total

        wait_for(reached, timeout, f"{fraction:.0%} of the messages to be accepted")
        self.raise_error()

    def join(self, timeout: float = 300):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the streams did not finish"
        self.raise_error()

    def raise_error(self):
        if self.error is not None:
            raise self.error


def all_stored(all_streams: list[Stream]) -> bool:
    return stored_count(i for s in all_streams for i in s.ids) == sum(
        len(s.ids) for s in all_streams
    )


# After a worker SIGKILL, every message accepted is stored within this many seconds
# (docs/operations.md): the visibility timeout (10 s) and restore interval (1 s) by default,
# or the pending sweep's 5 + 2 s for a batch lost in delivery, plus the margin a shared
# 2-core machine needs.
RECOVERY_BOUND = 15


def worker_troubles(worker) -> str:
    """The worker's log lines that say why a batch took long: retries, timeouts, errors."""
    troubled = ("retry", "Retry", "WARNING", "ERROR", "TimeLimit")
    lines = worker.output().splitlines()
    return "\n".join(line for line in lines if any(word in line for word in troubled))


def test_worker_killed_mid_stream_of_5000_messages(stack, make_user):
    """SIGKILL to the whole worker (parent and prefork children) with batches in hand, and a
    new worker started at once, as a supervisor does: acks-late + reject-on-worker-lost put
    the dead worker's batches back once the visibility timeout has run out, and the new
    worker stores them once, with the project's own timeouts: every message accepted
    before the kill is stored within RECOVERY_BOUND seconds of it. (How long the rest
    takes after the last acceptance is reported, not asserted: it measures the backlog the
    stream built while the worker was down, that is the machine's load, not recovery.)"""
    users = [make_user() for _ in range(5)]
    all_streams, background = stack.stream(users, per_user=1000, within=300)

    background.wait_accepted(0.3)
    stack.worker.wait_until(
        lambda: stored_count(i for s in all_streams for i in s.ids) > 0,
        60,
        "the worker to store a first batch",
    )
    # A worker that keeps up with the stream may hold nothing at the instant of a kill:
    # the lock makes sure it dies with a batch in hand. Nothing is stored while the lock is
    # held, so what is unstored at the kill is counted under it.
    with messages_table_locked():
        wait_for(lambda: sessions_waiting_on_a_lock() > 0, 30, "a batch held mid-storage")
        stack.worker.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        end_the_sessions_waiting_on_the_lock()
        accepted_before_kill = accepted_ids(all_streams)
        unstored_at_kill = len(accepted_before_kill) - stored_count(accepted_before_kill)
    stack.start_worker()
    restarted_in = time.monotonic() - killed_at
    assert unstored_at_kill > 0, "the kill came too late to test anything"

    stack.worker.wait_until(
        lambda: stored_count(accepted_before_kill) == len(accepted_before_kill),
        60,
        "every message accepted before the kill to be stored",
    )
    recovered_in = time.monotonic() - killed_at
    background.join()
    all_accepted_at = time.monotonic()  # at or after the last message.accepted
    stack.worker.wait_until(lambda: all_stored(all_streams), 60, "every message to be stored")
    caught_up_in = time.monotonic() - all_accepted_at
    print(
        f"worker SIGKILL: {unstored_at_kill} accepted messages unstored at the kill, all "
        f"stored {recovered_in:.1f} s after it; the last accepted stored within "
        f"{caught_up_in:.1f} s; the new worker was ready {restarted_in:.1f} s after the kill"
    )
    assert recovered_in <= RECOVERY_BOUND, worker_troubles(stack.worker)
    assert_stored_exactly_once(all_streams)


def accepted_ids(all_streams: list[Stream]) -> list[str]:
    """The ids accepted so far (read from the streams' thread: the id lists never change,
    the accepted sets only grow)."""
    return [i for s in all_streams for i in s.ids if i in s.accepted]


# RabbitMQ puts a dead consumer's unacknowledged batches back the moment its connection
# drops; this bounds the time from the kill until another worker has stored them.
RABBITMQ_RECOVERY_SECONDS = 5


@contextlib.contextmanager
def messages_table_locked():
    """A SHARE lock on the messages table until the block ends: every worker process that
    takes a batch meanwhile waits on it, mid-batch, where the test can kill it."""
    database = connection.settings_dict
    lock = psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"] or None,
        password=database["PASSWORD"] or None,
        dbname=database["NAME"],
    )
    try:
        # Its transaction (psycopg opens one) holds the lock until the connection closes.
        lock.execute(f"LOCK TABLE {Message._meta.db_table} IN SHARE MODE")
        yield
    finally:
        lock.close()


def end_the_sessions_waiting_on_the_lock() -> None:
    """End the statements held by the lock, uncommitted, as a worker's death ends those it
    had not sent yet. A statement already sent would otherwise run to its end once the lock
    goes, dead client or not (it is its own transaction), and store its batch: harmless
    (its redelivery is a no-op), but then nothing would show that the batch comes back."""
    with admin_connection() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND wait_event_type = 'Lock'",
            [connection.settings_dict["NAME"]],
        )


def sessions_waiting_on_a_lock() -> int:
    with admin_connection() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [connection.settings_dict["NAME"]],
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.skipif(not settings.BROKER_IS_AMQP, reason="the broker is RabbitMQ only")
def test_rabbitmq_hands_a_killed_workers_batches_to_another_within_5_seconds(
    stack, make_user, tmp_path
):
    """Two workers share the queue. A lock on the messages table holds every worker process
    mid-batch, so the one then killed (SIGKILL) surely dies with batches in hand; the lock
    goes with the kill. No visibility timeout to wait out: every accepted message is stored
    by the other worker within RABBITMQ_RECOVERY_SECONDS of the kill, each exactly once."""
    users = [make_user() for _ in range(2)]
    stack.start_worker()
    standby = start_worker(stack.env, tmp_path / "standby.log", "--hostname standby@%h")
    try:
        with messages_table_locked():
            stack.start_web()
            # Few enough that the time measured is the redelivery's, not the draining of a
            # backlog (test_worker_killed_mid_stream_of_5000_messages is the one with volume).
            all_streams = streams(stack, users, per_user=150)
            Background(all_streams, within=120).join()
            processes = 2 * settings.CELERY_WORKER_CONCURRENCY
            wait_for(
                lambda: sessions_waiting_on_a_lock() >= processes,
                60,
                "every worker process to be held mid-batch",
            )
            stack.worker.stop(signal.SIGKILL)
            killed_at = time.monotonic()
            # The standby's too: each of its batches fails once and retries.
            end_the_sessions_waiting_on_the_lock()

        standby.wait_until(lambda: all_stored(all_streams), 60, "every message to be stored")
        recovery = time.monotonic() - killed_at
        print(f"recovery after SIGKILL: {recovery:.2f} s")
        assert recovery < RABBITMQ_RECOVERY_SECONDS
        assert_stored_exactly_once(all_streams)
    finally:
        standby.stop()


def test_a_batch_the_broker_lost_is_handed_over_again(
    stack, make_user, redis_client, persist_queue
):
    """The one gap acknowledgements do not cover: Celery's Redis transport takes a batch off
    the queue and records it as unacknowledged in two steps (celery/kombu#305), and a worker
    killed in between loses it. That instant cannot be hit on purpose, so the test leaves
    Redis as such a kill does (failure injection): the accepted messages' batches gone from
    the queue. The worker's pending sweep must still store every one of them, once."""
    users = [make_user()]
    stack.start_web()
    all_streams = streams(stack, users, per_user=300)
    Background(all_streams, within=120).join()
    assert broker.length(persist_queue) > 0
    broker.purge(persist_queue)

    stack.env = {**stack.env, "CHAT_PENDING_SWEEP_AFTER": "1", "CHAT_PENDING_SWEEP_INTERVAL": "1"}
    stack.start_worker()
    stack.worker.wait_until(lambda: all_stored(all_streams), 60, "the lost batches to be stored")
    assert_stored_exactly_once(all_streams)
    stack.worker.wait_until(
        lambda: redis_client.zcard(redis_store.pending_index()) == 0, 30, "nothing left pending"
    )


def test_asgi_process_killed_mid_stream(stack, make_user):
    """SIGKILL to the ASGI server: its sockets drop, messages in flight get no answer. The
    clients reconnect to the restarted server and resend what was not accepted."""
    users = [make_user() for _ in range(3)]
    all_streams, background = stack.stream(users, per_user=300, within=240)

    background.wait_accepted(0.3)
    stack.web.stop(signal.SIGKILL)
    assert background.accepted < background.total, "the kill came too late to test anything"
    stack.start_web()

    background.join()
    assert all(s.reconnects >= 1 for s in all_streams)
    stack.worker.wait_until(lambda: all_stored(all_streams), 180, "every message to be stored")
    assert_stored_exactly_once(all_streams)


def terminate_test_database_sessions() -> int:
    """Every PostgreSQL session on this test's database, and only there, is terminated."""
    with admin_connection() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"]],
        ).fetchall()
    connection.close()  # this test's own session was one of them
    return len(rows)


def test_postgresql_sessions_terminated_during_a_stream(stack, make_user, redis_client):
    """What a PostgreSQL restart does to clients, three times during a stream: batches in
    flight fail, retry with backoff, the pool replaces its connections."""
    users = [make_user() for _ in range(3)]
    all_streams, background = stack.stream(users, per_user=400, within=240)

    for fraction in (0.25, 0.5, 0.75):
        background.wait_accepted(fraction)
        terminate_test_database_sessions()
    background.join()

    stack.worker.wait_until(lambda: all_stored(all_streams), 180, "every message to be stored")
    assert_stored_exactly_once(all_streams)
    # No batch is stuck in a wedged worker child: none is held unacknowledged, and the
    # worker still stores a new message at once.
    stack.worker.wait_until(lambda: redis_client.hlen("unacked") == 0, 60, "no batch in hand")
    after = streams(stack, users[:1], per_user=20)
    Background(after, within=60).join()
    stack.worker.wait_until(lambda: all_stored(after), 60, "a batch after the faults")
    assert connections_of(Role.WORKER) <= settings.CONNECTION_BUDGET.worker


@pytest.fixture
def own_postgres(transactional_db):
    """A PostgreSQL server of this test's own with a database of the test database's name,
    migrated, which this test process uses instead of the shared server's until the test
    ends (its users, its queries), and its web and worker processes too: the test can stop
    it for real. (Migrated, not copied: pg_dump must be as new as the server it reads.)"""
    server = PostgresServer()
    shared = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{connection.settings_dict["NAME"]}"')
        reconnect(HOST="127.0.0.1", PORT=str(server.port))
        call_command("migrate", verbosity=0)
        yield server
    finally:
        reconnect(**shared)
        server.destroy()


def reconnect(**params) -> None:
    """This process's next query goes to the server ``params`` name (a connection pool,
    if the project has one, is built anew)."""
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    connection.settings_dict.update(params)


# How long PostgreSQL stays down in test_postgresql_stopped_during_a_stream (issue: 60 s).
POSTGRES_OUTAGE = 60


@pytest.mark.skipif(
    server_binaries() is None and os.environ.get("CI") != "true",
    reason="needs PostgreSQL's server binaries (apt-get install postgresql)",
)
def test_postgresql_stopped_during_a_stream(own_postgres, stack, make_user):
    """PostgreSQL itself stopped (a fast shutdown: sessions end, connections are refused)
    for POSTGRES_OUTAGE seconds while users send. The web process never needs it, so every
    message is accepted meanwhile; the worker's batches fail and retry, each held within the
    visibility timeout; once the server is back the worker catches up, and every accepted
    message is stored exactly once. The catch-up time is reported, not asserted."""
    users = [make_user() for _ in range(3)]
    # Straight to the server under test (a project with pgbouncer would go through the
    # shared one to the shared server).
    stack.env = {**stack.env, "DATABASE_URL": database_url(connection.settings_dict)}
    stack.env["PGBOUNCER_URL"] = ""
    before, background = stack.stream(users, per_user=300, within=120)
    background.wait_accepted(0.3)

    connection.close()
    own_postgres.stop("fast")
    stopped_at = time.monotonic()
    background.join()
    during = streams(stack, users, per_user=300)
    Background(during, within=120).join()
    accepted_while_down = time.monotonic() - stopped_at
    assert accepted_while_down < POSTGRES_OUTAGE, "the streams outlasted the outage"
    time.sleep(POSTGRES_OUTAGE - accepted_while_down)  # the outage itself: nothing to wait for
    own_postgres.start()
    restarted_at = time.monotonic()

    all_streams = before + during
    stack.worker.wait_until(lambda: all_stored(all_streams), 180, "every message to be stored")
    caught_up_in = time.monotonic() - restarted_at
    print(
        f"PostgreSQL stopped {POSTGRES_OUTAGE} s: {sum(len(s.ids) for s in all_streams)} "
        f"messages accepted ({accepted_while_down:.1f} s to accept those sent while it was "
        f"down); all stored {caught_up_in:.1f} s after it was back"
    )
    assert_stored_exactly_once(all_streams)


def through(url: str, proxy: Proxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# How long the broker stays unreachable in test_broker_unreachable_during_a_stream (issue: 30 s).
BROKER_OUTAGE = 30


def test_broker_unreachable_during_a_stream(stack, make_user):
    """The broker cut off for BROKER_OUTAGE seconds (every connection to it reset, new ones
    refused: tests/proxy.py) while users send, for the web and the worker processes alike.
    Senders hear ``unavailable`` and resend, same ids; nothing is reported accepted while
    the broker cannot take it; once it is reachable again the processes reconnect, the
    streams finish, and every accepted message is stored exactly once. The catch-up time is
    reported, not asserted; so is the worker's exit, if kombu crashes it (it is started
    again, as a supervisor does: see the broker-restart test below)."""
    users = [make_user() for _ in range(3)]
    broker_url = urlsplit(settings.CELERY_BROKER_URL)
    default_port = 5672 if settings.BROKER_IS_AMQP else 6379
    with Proxy(broker_url.hostname or "127.0.0.1", broker_url.port or default_port) as proxy:
        stack.env = {**stack.env, "CELERY_BROKER_URL": through(settings.CELERY_BROKER_URL, proxy)}
        all_streams, background = stack.stream(users, per_user=300, within=240)
        background.wait_accepted(0.3)

        proxy.cut()
        cut_at = time.monotonic()
        wait_for(lambda: sum(s.unavailable for s in all_streams) > 0, 30, "a sender to hear it")
        accepted_when_heard = len(accepted_ids(all_streams))
        time.sleep(max(0.0, BROKER_OUTAGE - (time.monotonic() - cut_at)))  # the outage itself
        accepted_while_cut = len(accepted_ids(all_streams)) - accepted_when_heard
        proxy.restore()
        restored_at = time.monotonic()

        background.join()
        worker_exits = stack.supervised_until(
            lambda: all_stored(all_streams), 180, "every message stored"
        )
        caught_up_in = time.monotonic() - restored_at
    unavailable = sum(s.unavailable for s in all_streams)
    print(
        f"broker unreachable {BROKER_OUTAGE} s: {unavailable} 'unavailable' answers; every "
        f"message accepted and stored {caught_up_in:.1f} s after it was reachable again; "
        f"the worker exited {len(worker_exits)} time(s) {worker_exits}"
    )
    assert accepted_while_cut == 0
    assert_stored_exactly_once(all_streams)


class Listener:
    """A socket in ``room`` held open across a fault, on a thread (and event loop) of its
    own: what it hears, and whether the server closed it."""

    def __init__(self, url: str, logged_in, room: str):
        self.client = Client(url, logged_in, room)
        self.open = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self.listen(),))
        self.thread.start()
        wait_for(self.open.is_set, 15, "the listener's socket to open")

    async def listen(self):
        try:
            async with self.client:
                self.open.set()
                await asyncio.to_thread(self.done.wait)
        except ConnectionClosed:
            pass  # closed by the server (asserted on by the test)

    @property
    def closed_by_server(self) -> bool:
        return self.client.reader.done()

    def heard(self, message_id: str) -> bool:
        return message_id in self.client.ids("message")

    def stop(self):
        self.done.set()
        self.thread.join(15)


def test_channel_layer_redis_restarted_alone_during_a_stream(stack, make_user, tmp_path):
    """The channel layer on a Redis of its own without persistence (docs/scaling.md), killed
    and started again, empty, mid-stream; the rest of Redis and the broker untouched. Sends
    whose fan-out failed are answered ``unavailable``, sockets whose layer connection broke
    may be closed (1011): the clients resend, same ids, after reconnecting if need be.
    Every accepted message is stored exactly once; and afterwards a message reaches every
    socket of its room that is still open, including one opened before the restart (a
    socket the server kept open but left deaf would lose messages without a sign)."""
    users = [make_user() for _ in range(4)]
    directory = tmp_path / "channel-layer"
    directory.mkdir()
    layer = RedisServer(directory, appendfsync=None)
    try:
        stack.env = {**stack.env, "CHANNEL_LAYER_URLS": layer.url}
        all_streams, background = stack.stream(users[:3], per_user=300, within=240)
        listener = Listener(stack.url(), users[3], all_streams[0].room)
        background.wait_accepted(0.3)
        layer.stop(signal.SIGKILL)
        wait_for(
            lambda: any(s.unavailable or s.reconnects for s in all_streams),
            30,
            "a client to notice the channel layer gone",
        )
        layer.start()
        background.join()
        print(
            f"channel layer restarted: {sum(s.unavailable for s in all_streams)} "
            f"'unavailable' answers, {sum(s.reconnects for s in all_streams)} reconnects"
        )
        stack.worker.wait_until(lambda: all_stored(all_streams), 120, "every message stored")
        assert_stored_exactly_once(all_streams)

        after = Stream(stack.url, users[0], all_streams[0].room, count=1)
        asyncio.run(after.run(30))
        wait_for(
            lambda: listener.heard(after.ids[0]) or listener.closed_by_server,
            15,
            "the message sent after the restart to reach the listener",
        )
        closed, heard = listener.closed_by_server, listener.heard(after.ids[0])
        listener.stop()
        print(f"the socket opened before the restart: closed {closed}, heard the room {heard}")
        assert heard or closed
    finally:
        layer.stop(signal.SIGKILL)


@pytest.mark.skipif(
    settings.BROKER_IS_AMQP and rabbitmq_binaries() is None and os.environ.get("CI") != "true",
    reason="needs RabbitMQ's server (apt-get install rabbitmq-server)",
)
def test_broker_restarted_alone_during_a_stream(stack, make_user, tmp_path):
    """The broker on a server of its own (docs/scaling.md), shut down and started again
    mid-stream; sessions, pending store and channel layer untouched. Senders hear
    ``unavailable`` meanwhile and resend; the batches waiting in the queue come back with
    the server's data (Redis's append-only file, RabbitMQ's quorum queue); every accepted
    message is stored once.

    With Redis the worker may exit on the restart: kombu's Redis transport can acknowledge
    a finished batch on a channel that has just lost its connection, and raises an
    AttributeError out of the worker's event loop (docs/operations.md). The test starts it
    again as the deployment's supervisor does (docker-compose.yml: restart:
    unless-stopped), and reports it: the batches it held come back after the visibility
    timeout."""
    users = [make_user() for _ in range(3)]
    directory = tmp_path / "broker"
    directory.mkdir()
    broker_server = (RabbitMQServer if settings.BROKER_IS_AMQP else RedisServer)(directory)
    try:
        stack.env = {**stack.env, "CELERY_BROKER_URL": broker_server.url}
        # RabbitMQ's clean shutdown (rabbitmqctl stop, then the node halting) takes seconds,
        # and it takes batches meanwhile: with 300 a user, a fast run had every message
        # accepted before the broker was gone, and no sender ever heard "unavailable".
        all_streams, background = stack.stream(users, per_user=1000, within=300)
        background.wait_accepted(0.3)
        broker_server.stop(signal.SIGTERM)
        wait_for(lambda: any(s.unavailable for s in all_streams), 30, "a sender to hear it")
        broker_server.start()
        restarted_at = time.monotonic()
        background.join()
        worker_exits = stack.supervised_until(
            lambda: all_stored(all_streams), 120, "every message stored"
        )
        print(
            f"broker restarted: {sum(s.unavailable for s in all_streams)} 'unavailable' "
            f"answers; all stored {time.monotonic() - restarted_at:.1f} s after it was back; "
            f"the worker exited {len(worker_exits)} time(s) {worker_exits}"
        )
        assert_stored_exactly_once(all_streams)
    finally:
        broker_server.stop(signal.SIGKILL)


@pytest.fixture
def own_store(tmp_path, settings):
    """``REDIS_URL`` (sessions and identity records, the room mirror, the offset counters,
    the pending store) on a Redis of this test's own without persistence; the broker and the
    channel layer stay where they were. This test process logs users in there, and fills
    the mirrors as ``migrate`` does. Yields the server and the processes' environment."""
    elsewhere = {
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CHANNEL_LAYER_URLS": ",".join(settings.CHANNEL_LAYER_URLS),
    }
    store = use_redis_of_its_own(settings, tmp_path / "store")
    yield store, {**elsewhere, "REDIS_URL": store.url}
    store.stop(signal.SIGKILL)


async def handshake_accepted(url: str, cookie: str, room: str) -> bool:
    try:
        async with connect(
            f"{url}/ws/rooms/{room}/",
            origin="http://localhost",
            additional_headers={"Cookie": cookie},
        ):
            return True
    except InvalidStatus:
        return False


def log_in_again(user) -> str:
    """A new session for ``user``, through Django's login path: its cookie header."""
    client = HttpClient()
    client.force_login(user)
    return LoggedIn(user, client.cookies[settings.SESSION_COOKIE_NAME].value).cookie


def test_session_store_redis_restarted_empty_during_a_stream(own_store, stack, make_user):
    """``REDIS_URL`` on a Redis of its own without persistence, killed and started again,
    empty, mid-stream; the broker and the channel layer untouched. Open sockets stay open;
    their sends are answered ``unavailable`` until the worker has seeded the rooms' offset
    counters again (chat.sweep), and resent. Every accepted message is stored exactly once
    (the batches were in the broker, not in the lost pending store). Every user must log in
    again: the old session cookie is refused, a new login is let in once the worker has
    rebuilt the room mirror."""
    store, env = own_store
    users = [make_user() for _ in range(3)]
    stack.env = {**stack.env, **env}
    all_streams, background = stack.stream(users, per_user=300, within=240)
    background.wait_accepted(0.3)
    store.stop(signal.SIGKILL)
    store.start()
    lost_at = time.monotonic()
    background.join()
    print(
        f"session store restarted empty: {sum(s.unavailable for s in all_streams)} "
        f"'unavailable' answers, {sum(s.reconnects for s in all_streams)} reconnects; the "
        f"streams finished {time.monotonic() - lost_at:.1f} s after it"
    )
    stack.worker.wait_until(lambda: all_stored(all_streams), 120, "every message stored")
    assert_stored_exactly_once(all_streams)

    room = all_streams[0].room
    assert not asyncio.run(handshake_accepted(stack.url(), users[0].cookie, room))
    cookie = log_in_again(users[0].user)
    wait_for(
        lambda: asyncio.run(handshake_accepted(stack.url(), cookie, room)),
        30,
        "a new login to be let in",
    )


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis of this test's own, for broker, channel layer, sessions, room mirror and
    pending store alike; this test process logs users in there too, and fills its mirrors
    of the database (the room mirror, the offset counters), as ``migrate`` does."""
    servers = []

    def start(appendfsync: str) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, appendfsync)
        servers.append(server)
        settings.REDIS_URL = server.url
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
        rooms.rebuild_mirror()  # as migrate does: without a room mirror, no socket may join
        mirrors.seed_offsets()  # ... and without offset counters, no message is numbered
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGKILL)


async def send_while_redis_is_down(url: str, user, stop_redis) -> dict | int | None:
    """On a socket opened before Redis goes down, send one message: the answer frame, or
    the close code if the server closed the socket instead."""
    async with connect(
        f"{url}/ws/rooms/redis-down/",
        origin="http://localhost",
        additional_headers={"Cookie": user.cookie},
    ) as socket:
        stop_redis()
        message_id = str(uuid.uuid4())
        await socket.send(json.dumps({"type": "message.send", "id": message_id, "body": "hi"}))
        try:
            async with asyncio.timeout(60):
                while True:
                    frame = json.loads(await socket.recv())
                    if frame.get("id") == message_id and frame["type"] != "message":
                        return frame
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize(
    ("appendfsync", "how"),
    [("everysec", signal.SIGTERM), ("always", signal.SIGKILL)],
    ids=["everysec-shutdown", "always-crash"],
)
def test_accepted_messages_survive_a_redis_restart(
    own_redis, make_user, env, tmp_path, appendfsync, how
):
    """Accept messages with no worker running, so they wait in the broker; restart Redis
    (a clean shutdown with ``appendfsync everysec``, a SIGKILL with ``always``); start the
    worker: every accepted message is stored, once."""
    redis_server = own_redis(appendfsync)
    users = [make_user() for _ in range(2)]
    stack = Stack({**env, "REDIS_URL": redis_server.url}, tmp_path)
    try:
        stack.start_web()
        all_streams = streams(stack, users, per_user=300)
        Background(all_streams, within=120).join()

        answer = asyncio.run(
            send_while_redis_is_down(stack.url(), users[0], lambda: redis_server.stop(how))
        )
        # Nothing is reported accepted while Redis is down: the sender hears "unavailable"
        # (docs/operations.md), or its socket is closed and it resends after reconnecting.
        if isinstance(answer, dict):
            assert answer["type"] == "error" and answer["code"] == "unavailable", answer
        else:
            assert answer in CLOSED_BY_REDIS_OUTAGE, answer

        redis_server.start()
        stack.start_worker()
        stack.worker.wait_until(lambda: all_stored(all_streams), 120, "every message stored")
        assert_stored_exactly_once(all_streams)

        # The web process recovered without a restart.
        after = streams(stack, users[:1], per_user=20)
        Background(after, within=60).join()
        stack.worker.wait_until(lambda: all_stored(after), 60, "a batch after the restart")
    finally:
        stack.stop()
