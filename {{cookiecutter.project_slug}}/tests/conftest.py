"""Fixtures shared by the suite: users with real sessions, the database guard, the queue,
and two server processes with a worker for the access tests.

Everything runs against the real PostgreSQL and Redis named by DATABASE_URL and REDIS_URL
(pytest-django creates and drops a ``test_`` database).
"""

import uuid
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client

from chat import mirrors, rooms
from chat.identity import Identity, session_credential
from chat.queue import PERSIST_TASK
from support.processes import RedisServer, child_env, start_web
from tests import broker
{%- if cookiecutter.db_pooling == "pgbouncer" %}

pytest_plugins = ["tests.pgbouncer"]
{%- endif %}


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def use_redis_of_its_own(settings, directory) -> RedisServer:
    """Point ``REDIS_URL`` (sessions, identity records, the mirrors, the offset counters, the
    pending store) at a new redis-server without persistence, for this test process (the
    ``settings`` fixture undoes it), and fill the mirrors there as ``migrate`` does. The
    caller stops the server."""
    directory.mkdir()
    server = RedisServer(directory, appendfsync=None)
    settings.REDIS_URL = server.url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    rooms.rebuild_mirror()
    mirrors.seed_offsets()
    return server


@pytest.fixture
def persist_queue():
    """The broker's persistence queue, emptied before and after the test."""
    queue = settings.CELERY_TASK_ROUTES[PERSIST_TASK]["queue"]
    broker.purge(queue)
    yield queue
    broker.purge(queue)


class LoggedIn:
    """A user logged in through Django's real login path, with the session cookie to show."""

    def __init__(self, user, session_key: str):
        self.user = user
        self.session_key = session_key
        self.identity = Identity(
            user_id=user.pk,
            username=user.get_username(),
            credential=session_credential(session_key),
        )

    @property
    def cookie(self) -> str:
        return f"{settings.SESSION_COOKIE_NAME}={self.session_key}"


def log_in(username: str | None = None) -> LoggedIn:
    from django.contrib.auth import get_user_model

    username = username or f"user-{uuid.uuid4().hex[:10]}"
    user = get_user_model().objects.create_user(username=username, password="secret-pass-123")
    client = Client()
    client.force_login(user)  # sends user_logged_in: chat.identity fills the session
    return LoggedIn(user, client.cookies[settings.SESSION_COOKIE_NAME].value)


@pytest.fixture
def make_user(transactional_db):
    """Create and log in users, committed so that server and worker processes see them.

    pytest-django empties every table after the test.
    """
    return log_in


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Tests marked ``database_forbidden`` fail if their body opens or uses a connection.

    Patching ``ensure_connection`` on the base class catches every query path (ORM, raw
    cursors, ``database_sync_to_async`` threads), and attempts are recorded, so a consumer
    that swallowed the exception still fails the test. Fixtures, which create users and
    empty the tables, run outside the guard.
    """
    if item.get_closest_marker("database_forbidden") is None:
        return (yield)
    attempts = []

    def refuse(self, *args, **kwargs):
        attempts.append(self.alias)
        raise AssertionError("The WebSocket path touched the database")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)
        result = yield
    assert attempts == [], f"database connections attempted: {attempts}"
    return result


@pytest.fixture
def ann(make_user) -> LoggedIn:
    return make_user()


@pytest.fixture
def bob(make_user) -> LoggedIn:
    return make_user()


@pytest.fixture(scope="module")
def two_servers(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two web processes, as behind a load balancer: where one user's sockets on two
    processes live. ``.a`` and ``.b`` are their base URLs (``ws://``); ``.env`` theirs.

    Module-scoped, and stopped when the module ends: other modules count the web role's
    database connections, which these would hold in their pools after HTTP requests."""
    logs = tmp_path_factory.mktemp("two-servers")
    env = child_env()
    (web_a, port_a), (web_b, port_b) = (start_web(env, logs / f"web-{n}.log") for n in "ab")
    yield SimpleNamespace(a=f"ws://127.0.0.1:{port_a}", b=f"ws://127.0.0.1:{port_b}", env=env)
    for process in (web_a, web_b):
        process.stop()
