"""Tickets for clients without a browser: the endpoint's rules (in process), the API key
command, and tickets used against a real server process -- once, within their time, never
forged, with or without an Origin as the contract says.
"""

import asyncio
import io
import json
import urllib.error
import urllib.request

import pytest
from django.core.management import call_command
from django.test import Client

from chat import apikeys, identity, redis_store, tickets
from chat.models import ApiKey
from support.processes import child_env, start_web, wait_for
from tests.wsclient import open_socket, refused, still_open

pytestmark = pytest.mark.django_db(transaction=True)


def ask(client: Client, **headers):
    return client.post("/api/ws-tickets", **headers)


def test_a_ticket_needs_the_session_and_its_csrf_token_or_an_api_key(make_user, settings):
    ann = make_user()
    anonymous = Client(enforce_csrf_checks=True)
    assert ask(anonymous).status_code == 401
    assert ask(anonymous, HTTP_AUTHORIZATION="Token not-a-key").status_code == 401

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ann.user)
    refused_without_token = ask(browser)
    assert refused_without_token.status_code == 403
    assert "CSRF" in refused_without_token.json()["error"]
    browser.get("/")  # sets the CSRF cookie
    answer = ask(browser, HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert answer.status_code == 201
    assert answer.json()["expires_in"] == settings.CHAT_TICKET_TTL <= 60

    _, key = apikeys.create(ann.user)
    program = Client(enforce_csrf_checks=True)  # no cookie, no CSRF token: none needed
    answer = ask(program, HTTP_AUTHORIZATION=f"Token {key}")
    assert answer.status_code == 201
    ticket = answer.json()["ticket"]
    stored = redis_store.client().get(redis_store.ticket(tickets.digest(ticket)))
    assert stored == identity.api_key_credential(ApiKey.objects.get().pk)
    assert redis_store.client().get(redis_store.ticket(ticket)) is None  # only its hash


def test_tickets_per_user_are_limited(make_user, settings):
    settings.CHAT_TICKETS_PER_MINUTE = 3
    ann = make_user()
    _, key = apikeys.create(ann.user)
    program = Client()
    codes = [ask(program, HTTP_AUTHORIZATION=f"Token {key}").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]


def test_an_inactive_users_key_gets_no_ticket(make_user):
    ann = make_user()
    _, key = apikeys.create(ann.user)
    ann.user.is_active = False
    ann.user.save()
    assert ask(Client(), HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


def test_the_apikey_command_shows_a_key_once_and_revokes_them(make_user):
    ann = make_user()
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", ann.user.username, stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert "shown once" in err.getvalue()
    stored = ApiKey.objects.get(user=ann.user)
    assert stored.digest == apikeys.digest(key) and key not in (stored.digest, stored.prefix)
    assert key.startswith(stored.prefix)
    call_command("apikey", ann.user.username, "--revoke-all", stdout=out, stderr=err)
    assert not ApiKey.objects.exists()


# --- Against a real server process --------------------------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    web, port = start_web(child_env(), tmp_path_factory.mktemp("tickets") / "web.log")
    yield f"ws://127.0.0.1:{port}"
    web.stop()


def ticket_over_http(server: str, key: str) -> str:
    request = urllib.request.Request(
        server.replace("ws://", "http://") + "/api/ws-tickets",
        data=b"",
        method="POST",
        headers={"Authorization": f"Token {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["ticket"]


@pytest.mark.e2e
def test_a_ticket_opens_one_socket_and_reused_forged_or_expired_ones_none(
    server, make_user, settings, redis_client
):
    ann = make_user()
    _, key = apikeys.create(ann.user)
    settings.CHAT_TICKET_TTL = 1  # for the ticket issued here, in the test process
    short_lived = tickets.issue(identity.session_credential(ann.session_key))

    async def scenario():
        ticket = await asyncio.to_thread(ticket_over_http, server, key)
        socket = await open_socket(server, "tickets", ticket=ticket)  # no Origin: a program
        assert await still_open(socket)
        await socket.close()
        assert await refused(server, "tickets", ticket=ticket)  # reused
        assert await refused(server, "tickets", ticket="forged" + ticket[6:])
        assert await refused(server, "tickets")  # no Origin and no ticket: not a program

        fresh = await asyncio.to_thread(ticket_over_http, server, key)
        assert await refused(server, "tickets", ticket=fresh, origin="http://evil.example")
        assert not await refused(server, "tickets", ticket=fresh, origin="http://localhost")

        expired = redis_store.ticket(tickets.digest(short_lived))
        await asyncio.to_thread(wait_for, lambda: not redis_client.exists(expired), 5, "expiry")
        assert await refused(server, "tickets", ticket=short_lived)

    asyncio.run(scenario())


@pytest.mark.e2e
def test_a_ticket_does_not_open_a_private_room_to_a_non_member(server, make_user):
    ann, carol = make_user(), make_user()
    owner = Client()
    owner.force_login(ann.user)
    owner.post("/api/rooms", {"name": "tickets-private"}, content_type="application/json")
    _, key = apikeys.create(carol.user)

    async def scenario():
        ticket = await asyncio.to_thread(ticket_over_http, server, key)
        assert await refused(server, "tickets-private", ticket=ticket)

    asyncio.run(scenario())
    with pytest.raises(urllib.error.HTTPError) as history:
        urllib.request.urlopen(
            urllib.request.Request(
                server.replace("ws://", "http://") + "/api/rooms/tickets-private/messages",
                headers={"Authorization": f"Token {key}"},
            ),
            timeout=10,
        )
    with history.value:
        assert history.value.code == 403
