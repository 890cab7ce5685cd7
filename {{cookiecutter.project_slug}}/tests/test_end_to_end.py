"""The whole path with real processes: the ASGI server and the Celery worker, started from
the Procfile, real WebSocket clients, real Redis and PostgreSQL.
"""

import asyncio
import http.cookiejar
import types
import urllib.parse
import urllib.request
import uuid

import pytest
import redis
from django.conf import settings

from chat.models import Message
from config.roles import Role
from support.pgstat import connections_of
from support.processes import child_env, sampling, start_web, start_worker, wait_for
from tests.wsclient import Client

# Committed data (transaction=True): the server and worker processes must see the users.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """A running web process and worker process, both on the test database."""
    env = child_env()
    logs = tmp_path_factory.mktemp("logs")
    worker = start_worker(env, logs / "worker.log")
    web, port = start_web(env, logs / "web.log")
    yield f"ws://127.0.0.1:{port}"
    web.stop()
    worker.stop()


def stored_ids(ids) -> list[str]:
    return [str(i) for i in Message.objects.filter(id__in=ids).values_list("id", flat=True)]


def test_every_message_is_accepted_then_persisted_and_stored_exactly_once(stack, make_user):
    room = f"e2e-{uuid.uuid4().hex[:8]}"
    users = [make_user() for _ in range(5)]
    per_user = 20

    async def scenario():
        clients = [Client(stack, user, room) for user in users]
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client.__aenter__())
        sent = {client: [await client.send(f"m{i}") for i in range(per_user)] for client in clients}
        total = per_user * len(clients)
        for client in clients:
            await client.wait_until(
                lambda frames, mine=set(sent[client]): (
                    len([f for f in frames if f["type"] == "message"]) == total
                    and mine <= {f["id"] for f in frames if f["type"] == "message.persisted"}
                )
            )
        for client in clients:
            await client.__aexit__()
        return sent, clients

    sent, clients = asyncio.run(scenario())
    for client in clients:
        mine = sent[client]
        accepted, persisted = client.ids("message.accepted"), client.ids("message.persisted")
        assert sorted(accepted) == sorted(mine) and sorted(persisted) == sorted(mine)
        for message_id in mine:
            assert accepted.index(message_id) < len(client.frames)
            order = [f["type"] for f in client.frames if f.get("id") == message_id]
            assert order.index("message.accepted") < order.index("message.persisted")
    all_ids = [i for ids in sent.values() for i in ids]
    assert sorted(stored_ids(all_ids)) == sorted(all_ids)
    assert Message.objects.filter(room=room).count() == len(all_ids)


def test_200_sockets_hold_zero_database_connections_in_the_asgi_process(stack, make_user):
    users = [make_user() for _ in range(20)]
    rooms = [f"many-{uuid.uuid4().hex[:6]}-{n}" for n in range(10)]
    sockets_per_user = 10
    samples = {"web": [], "worker": []}

    def sample():
        for role in samples:
            samples[role].append(connections_of(role))

    async def scenario():
        clients = [
            Client(stack, user, rooms[(u * sockets_per_user + s) % len(rooms)])
            for u, user in enumerate(users)
            for s in range(sockets_per_user)
        ]
        for client in clients:
            await client.__aenter__()
        # Every socket sends at once: a burst, not a trickle.
        sent = await asyncio.gather(*(client.send("hello from a crowd") for client in clients))
        per_room = len(clients) // len(rooms)
        for client in clients:
            await client.wait_until(
                lambda frames: (
                    len([f for f in frames if f["type"] == "message"]) == per_room
                    and len([f for f in frames if f["type"] == "message.persisted"]) == 1
                )
            )
        web_while_open = connections_of(Role.WEB)
        for client in clients:
            await client.__aexit__()
        return sent, web_while_open

    with sampling(sample):
        sent, web_while_open = asyncio.run(scenario())

    assert len(sent) == 200
    assert web_while_open == 0
    assert len(samples["web"]) >= 3 and max(samples["web"]) == 0
    assert 1 <= max(samples["worker"]) <= settings.CONNECTION_BUDGET.worker
    assert sorted(stored_ids(sent)) == sorted(sent)


def test_login_over_http_opens_the_socket_and_uses_the_web_pool(stack, make_user):
    """The contract's login: GET the form for the CSRF cookie, POST it, use ``sessionid``."""
    ann = make_user()
    base = stack.replace("ws://", "http://")
    cookies = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    browser.open(f"{base}/accounts/login/", timeout=10).read()
    csrf = next(c.value for c in cookies if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {"username": ann.user.username, "password": "secret-pass-123", "csrfmiddlewaretoken": csrf}
    ).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"}
    )
    browser.open(request, timeout=10).read()
    session = next(c.value for c in cookies if c.name == settings.SESSION_COOKIE_NAME)

    assert 1 <= connections_of(Role.WEB) <= settings.CONNECTION_BUDGET.web_pool_size

    async def talk():
        logged_in = types.SimpleNamespace(cookie=f"{settings.SESSION_COOKIE_NAME}={session}")
        async with Client(stack, logged_in, "login-room") as client:
            message_id = await client.send("hi")
            await client.wait_until(lambda frames: message_id in client.ids("message"))
            return next(f for f in client.frames if f["type"] == "message")

    message = asyncio.run(talk())
    assert message["author"] == ann.user.username


@pytest.mark.skipif(
    settings.CHANNEL_LAYER != "redis_pubsub", reason="a socket's channel is a subscription"
)
def test_closed_sockets_leave_no_channel_subscribed(stack, make_user):
    """On the pub/sub layer each socket's channel is a Redis subscription of its process.
    Users leaving a busy room one by one (each close a presence.leave for the room, its
    own socket included) must leave none behind. The layer drops a channel only when the
    consumer's pending receive is cancelled, and kept one per socket whose last receive
    had already returned (the soak, docs/operations.md): the consumer now discards it."""
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    pattern = f"{layer['prefix']}specific.*"
    client = redis.Redis.from_url(layer["hosts"][0]["address"])
    before = set(client.pubsub_channels(pattern))
    room = f"e2e-{uuid.uuid4().hex[:8]}"
    users = [make_user() for _ in range(10)]

    async def scenario():
        clients = [await Client(stack, user, room).__aenter__() for user in users]
        for n, leaving in enumerate(clients):
            for staying in clients[n:]:
                await staying.send("still here")
            await leaving.__aexit__()

    asyncio.run(scenario())
    try:
        wait_for(lambda: not set(client.pubsub_channels(pattern)) - before, 10, "no channel left")
    finally:
        client.close()
