"""Revocation against two real server processes: logging out, changing the password,
deactivation and deletion each close the sockets they revoke, on both processes, with 4401
within 5 s; the old session is refused at its next handshake; what was not revoked stays.
"""

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from chat import apikeys
from tests.httpclient import Browser
from tests.wsclient import close_code, open_socket, refused, still_open

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a-new-Passw0rd-for-tests"


def room() -> str:
    return f"revoke-{uuid.uuid4().hex[:8]}"


def ask_for_ticket(base: str, api_key: str) -> tuple[int, str | None]:
    """``(status, ticket)``, asked for as a program does: ``Authorization: Token <key>``."""
    request = urllib.request.Request(
        base.replace("ws://", "http://") + "/api/ws-tickets",
        data=b"",
        method="POST",
        headers={"Authorization": f"Token {api_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())["ticket"]
    except urllib.error.HTTPError as error:
        with error:
            return error.code, None


def ticket_for(base: str, api_key: str) -> str:
    status, ticket = ask_for_ticket(base, api_key)
    assert status == 201 and ticket
    return ticket


def in_a_thread(change):
    """Run an ORM change as an administrator's shell would, off the test's event loop."""

    def run():
        try:
            change()
        finally:
            connection.close()

    return asyncio.to_thread(run)


async def closed_on_both(two_servers, cookie: str, act) -> list[int | None]:
    """Open a socket on each process with ``cookie``, ``act()``, and return both close codes
    (each must come within 5 s of the act)."""
    name = room()
    sockets = [await open_socket(base, name, cookie) for base in (two_servers.a, two_servers.b)]
    started = time.monotonic()
    await act()
    codes = list(await asyncio.gather(*(close_code(socket, 5) for socket in sockets)))
    elapsed = time.monotonic() - started
    print(f"\nboth sockets closed {elapsed * 1000:.0f} ms after the change (codes {codes})")
    assert elapsed < 5
    return codes


def test_logout_closes_that_sessions_sockets_on_both_processes(two_servers, make_user):
    ann = make_user()
    browser = Browser(two_servers.a).log_in(ann.user.username)
    other_device = Browser(two_servers.b).log_in(ann.user.username)

    async def scenario():
        kept = await open_socket(two_servers.b, room(), other_device.session.cookie)

        async def log_out():
            status, _ = await asyncio.to_thread(browser.post_form, "/accounts/logout/", {})
            assert status == 200  # redirected to LOGOUT_REDIRECT_URL, no error page

        old_cookie = browser.session.cookie
        assert await closed_on_both(two_servers, old_cookie, log_out) == [4401, 4401]
        for base in (two_servers.a, two_servers.b):
            assert await refused(base, room(), old_cookie)
        assert await still_open(kept)  # the other device's session was not revoked
        await kept.close()

    asyncio.run(scenario())


def test_a_password_change_closes_every_session_of_the_user(two_servers, make_user):
    ann = make_user()
    changer = Browser(two_servers.a).log_in(ann.user.username)
    other_device = Browser(two_servers.b).log_in(ann.user.username)
    _, secret = apikeys.create(ann.user)

    async def scenario():
        elsewhere = await open_socket(two_servers.a, room(), other_device.session.cookie)
        ticket = await asyncio.to_thread(ticket_for, two_servers.a, secret)
        by_key = await open_socket(two_servers.b, room(), ticket=ticket)

        async def change_password():
            status, _ = await asyncio.to_thread(
                changer.post_form,
                "/accounts/password_change/",
                {
                    "old_password": "secret-pass-123",
                    "new_password1": NEW_PASSWORD,
                    "new_password2": NEW_PASSWORD,
                },
            )
            assert status == 200

        old_cookie = changer.session.cookie
        assert await closed_on_both(two_servers, old_cookie, change_password) == [4401, 4401]
        assert await close_code(elsewhere, 5) == 4401
        assert await refused(two_servers.b, room(), old_cookie)
        assert await refused(two_servers.b, room(), other_device.session.cookie)
        # The changer's browser carries on, with the session Django gave it in exchange.
        assert changer.session.cookie != old_cookie
        assert not await refused(two_servers.b, room(), changer.session.cookie)
        # An API key is a credential of its own: a password change leaves it be.
        assert await still_open(by_key)
        await by_key.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("change", ["deactivation", "deletion"])
def test_deactivation_and_deletion_close_all_of_the_users_sockets(two_servers, make_user, change):
    ann, bob = make_user(), make_user()
    second_session = Browser(two_servers.b).log_in(ann.user.username)
    user_id = ann.user.pk

    def deactivate():
        user = get_user_model().objects.get(pk=user_id)
        user.is_active = False
        user.save()

    def delete():
        get_user_model().objects.get(pk=user_id).delete()

    async def scenario():
        second = await open_socket(two_servers.a, room(), second_session.session.cookie)
        bobs = await open_socket(two_servers.a, room(), bob.cookie)

        async def act():
            await in_a_thread(deactivate if change == "deactivation" else delete)

        assert await closed_on_both(two_servers, ann.cookie, act) == [4401, 4401]
        assert await close_code(second, 5) == 4401
        for cookie in (ann.cookie, second_session.session.cookie):
            assert await refused(two_servers.b, room(), cookie)
        assert await still_open(bobs)
        await bobs.close()

    asyncio.run(scenario())


def test_deleting_an_api_key_closes_the_sockets_it_opened(two_servers, make_user):
    ann = make_user()
    key, secret = apikeys.create(ann.user)

    async def scenario():
        ticket = await asyncio.to_thread(ticket_for, two_servers.a, secret)
        by_key = await open_socket(two_servers.b, room(), ticket=ticket)
        by_session = await open_socket(two_servers.b, room(), ann.cookie)
        await in_a_thread(key.delete)
        assert await close_code(by_key, 5) == 4401
        assert await still_open(by_session)
        await by_session.close()
        assert await asyncio.to_thread(ask_for_ticket, two_servers.a, secret) == (401, None)

    asyncio.run(scenario())
