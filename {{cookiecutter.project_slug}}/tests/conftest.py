"""Fixtures shared by the suite: users with real sessions, the database guard, the queue.

Everything runs against the real PostgreSQL and Redis named by DATABASE_URL and REDIS_URL
(pytest-django creates and drops a ``test_`` database).
"""

import uuid

import pytest
import redis
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client

from chat.identity import Identity
{%- if cookiecutter.db_pooling == "pgbouncer" %}

pytest_plugins = ["tests.pgbouncer"]
{%- endif %}

PERSIST_QUEUE = "persist"


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def persist_queue(redis_client):
    """The broker's persistence queue, emptied before and after the test."""
    redis_client.delete(PERSIST_QUEUE)
    yield PERSIST_QUEUE
    redis_client.delete(PERSIST_QUEUE)


class LoggedIn:
    """A user logged in through Django's real login path, with the session cookie to show."""

    def __init__(self, user, session_key: str):
        self.user = user
        self.session_key = session_key
        self.identity = Identity(user_id=user.pk, username=user.get_username())

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
def make_user(django_db_setup, django_db_blocker):
    """Create and log in users, for tests that must not touch the database themselves.

    The database is opened only inside this factory; the test body stays under
    pytest-django's block (and ``database_forbidden``), like a WebSocket process.
    """
    created = []

    def make(username: str | None = None) -> LoggedIn:
        with django_db_blocker.unblock():
            logged_in = log_in(username)
        created.append(logged_in.user)
        return logged_in

    yield make
    with django_db_blocker.unblock():
        for user in created:
            user.delete()


@pytest.fixture
def database_forbidden(monkeypatch):
    """Fail the test if anything opens or uses a database connection, from any thread.

    Patching ``ensure_connection`` on the base class catches every query path (ORM, raw
    cursors, ``database_sync_to_async`` threads). Attempts are also recorded, so a consumer
    that swallowed the exception still fails the test.
    """
    attempts = []

    def refuse(self, *args, **kwargs):
        attempts.append(self.alias)
        raise AssertionError("The WebSocket path touched the database")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)
    yield attempts
    assert attempts == [], f"database connections attempted: {attempts}"


@pytest.fixture
def ann(make_user) -> LoggedIn:
    return make_user()


@pytest.fixture
def bob(make_user) -> LoggedIn:
    return make_user()
