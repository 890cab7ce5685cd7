"""The handshake (chat/handshake.py) through the real ASGI stack, the real channel layer and
Redis, with every database access forbidden: what a refusal costs, how cookies are read,
tickets, and the room mirror's verdicts (a lost mirror fails closed).
"""

import asyncio
import contextlib
from http.cookies import SimpleCookie

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chat import identity, redis_store, tickets
from config.asgi import application
from support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database_forbidden]

ORIGIN = (b"origin", b"http://localhost")
FOREIGN = (b"origin", b"http://evil.example")


def socket(room="general", cookie=None, origin=ORIGIN, query=""):
    headers = [origin] if origin else []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    path = f"/ws/rooms/{room}/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=headers)


async def admitted(communicator) -> bool:
    ok, _ = await communicator.connect()
    if ok:
        await communicator.disconnect()
    return ok


@pytest.fixture
def layer_work(monkeypatch):
    """Counts what the channel layer is asked to do: channels made, groups joined. The
    counters wrap the real layer's methods (instrumentation; the layer still does the work)."""
    layer = get_channel_layer()
    calls = {"new_channel": 0, "group_add": 0}
    for name in calls:
        real = getattr(layer, name)

        async def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return await _real(*args, **kwargs)

        monkeypatch.setattr(layer, name, counted)
    return calls


@pytest.fixture
def thread_hops(monkeypatch):
    """Counts every sync_to_async call (Channels' database_sync_to_async included)."""
    hops = []
    real = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return hops


async def test_refused_handshakes_cost_no_channel_layer_work(ann, layer_work, thread_hops):
    """Anonymous, forged-session, foreign-origin and origin-less handshakes are answered by
    the gate itself: no consumer, so no channel and no subscription -- and the session is
    read with the async Redis client, with no thread hop."""
    refused = [
        socket(cookie=None),
        socket(cookie="sessionid=" + "k" * 32),
        socket(cookie=ann.cookie, origin=FOREIGN),
        socket(cookie=ann.cookie, origin=None),
        socket(cookie=ann.cookie, origin=(b"origin", b"http://[::1")),  # not even a URL
    ]
    for communicator in refused:
        assert await communicator.connect() == (False, 1008)
    assert layer_work == {"new_channel": 0, "group_add": 0}

    # The counters see the work of a handshake that is admitted: one channel, two groups.
    communicator = socket(cookie=ann.cookie)
    ok, _ = await communicator.connect()
    assert ok
    assert layer_work == {"new_channel": 1, "group_add": 2}
    assert thread_hops == []
    await communicator.disconnect()


async def test_a_cookie_simplecookie_rejects_does_not_lose_the_session(ann):
    """A consent banner's cookie holding JSON: Python's SimpleCookie drops the whole header
    at it; Django's HTTP parsing (parse_cookie), used here too, keeps the rest."""
    consent = '{"ads":false,"stats":true}'
    header = f'consent={consent}; theme="dark; {ann.cookie}'
    parsed = SimpleCookie()
    with contextlib.suppress(Exception):
        parsed.load(header)
    assert settings.SESSION_COOKIE_NAME not in parsed  # the premise: SimpleCookie loses it
    assert await admitted(socket(cookie=header))


async def test_cookies_split_over_several_headers_are_all_read(ann):
    """HTTP/2 clients may send one cookie header per cookie."""
    communicator = WebsocketCommunicator(
        application,
        "/ws/rooms/general/",
        headers=[ORIGIN, (b"cookie", b"theme=dark"), (b"cookie", ann.cookie.encode())],
    )
    assert await admitted(communicator)


async def test_a_ticket_opens_one_socket_without_an_origin(ann):
    ticket = await asyncio.to_thread(tickets.issue, identity.session_credential(ann.session_key))
    assert await admitted(socket(origin=None, query=f"ticket={ticket}"))
    # Used: the same ticket opens nothing, with or without an Origin, cookie or not.
    assert not await admitted(socket(origin=None, query=f"ticket={ticket}"))
    assert not await admitted(socket(cookie=ann.cookie, query=f"ticket={ticket}"))


async def test_a_ticket_with_a_foreign_origin_is_refused_and_stays_unused(ann):
    ticket = await asyncio.to_thread(tickets.issue, identity.session_credential(ann.session_key))
    assert not await admitted(socket(origin=FOREIGN, query=f"ticket={ticket}"))
    assert await admitted(socket(origin=ORIGIN, query=f"ticket={ticket}"))


async def test_forged_tickets_are_refused(ann):
    for ticket in ("forged-" + "x" * 36, "", "x" * 5000, "%00%ff", "../../etc/passwd"):
        assert not await admitted(socket(origin=None, query=f"ticket={ticket}")), ticket
        # A forged ticket is not a fallback to the cookie either.
        assert not await admitted(socket(cookie=ann.cookie, query=f"ticket={ticket}")), ticket


async def test_an_expired_ticket_is_refused(ann, settings, redis_client):
    settings.CHAT_TICKET_TTL = 1
    ticket = await asyncio.to_thread(tickets.issue, identity.session_credential(ann.session_key))
    key = redis_store.ticket(tickets.digest(ticket))
    await asyncio.to_thread(wait_for, lambda: not redis_client.exists(key), 5, "expiry")
    assert not await admitted(socket(origin=None, query=f"ticket={ticket}"))


async def test_a_ticket_of_a_session_that_logged_out_is_refused(ann):
    credential = identity.session_credential(ann.session_key)
    ticket = await asyncio.to_thread(tickets.issue, credential)
    await asyncio.to_thread(identity.forget, [credential])  # what a logout does to it
    assert not await admitted(socket(origin=None, query=f"ticket={ticket}"))


async def test_without_a_complete_room_mirror_every_join_is_refused(ann, redis_client):
    """Fail closed: with the mirror gone nobody can tell public from private, so nobody
    joins -- until it is rebuilt (tests/test_access.py shows the worker doing that)."""
    assert await admitted(socket(cookie=ann.cookie))
    redis_client.hdel(redis_store.room_mirror(), "ready")
    assert not await admitted(socket(cookie=ann.cookie))
    redis_client.delete(redis_store.room_mirror())
    assert not await admitted(socket(cookie=ann.cookie))
