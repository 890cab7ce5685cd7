"""Private rooms: the API and pages (in process, Django's test client), and what sockets see,
against two real server processes: a non-member refused at the handshake, a removed
member's sockets on both processes closed with 4403 within 5 s, a room made private
closing its non-members' sockets, a lost mirror rebuilt by the worker, never failing open.
"""

import asyncio
import io
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.test import Client

from chat import access, cursors, pending, receipts, redis_store
from chat.models import Message, Room
from support.processes import start_worker
from tests.httpclient import Browser
from tests.wsclient import close_code, open_socket, refused, still_open

pytestmark = pytest.mark.django_db(transaction=True)


def room_name(prefix: str = "private") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def client_of(logged_in, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(logged_in.user)
    return client


def call(client: Client, method: str, path: str, body=None, **headers):
    data = None if body is None else json.dumps(body)
    return client.generic(method, path, data or "", content_type="application/json", **headers)


def mirrored(room: str) -> list[int] | None:
    """The members the WebSocket side's mirror lists for ``room`` (None: public)."""
    raw = redis_store.client().hget(redis_store.room_mirror(), access.field(room))
    return None if raw is None else json.loads(raw)


# --- The API and the pages -------------------------------------------------------------


def test_an_owner_makes_a_private_room_and_manages_its_members(make_user):
    ann, bob, carol = make_user(), make_user(), make_user()
    as_ann, as_bob, as_carol = client_of(ann), client_of(bob), client_of(carol)
    name = room_name()
    members = f"/api/rooms/{name}/members"

    response = call(as_ann, "POST", "/api/rooms", {"name": name, "private": True})
    assert response.status_code == 201, response.content
    assert response.json() == {
        "name": name,
        "private": True,
        "owner": ann.user.username,
        "members": [ann.user.username],
    }
    assert mirrored(name) == [ann.user.pk]
    assert call(as_bob, "POST", "/api/rooms", {"name": name}).status_code == 409

    assert call(as_bob, "POST", members, {"username": carol.user.username}).status_code == 403
    response = call(as_ann, "POST", members, {"username": bob.user.username})
    assert response.status_code == 201
    assert response.json()["members"] == sorted([ann.user.username, bob.user.username])
    assert call(as_ann, "POST", members, {"username": bob.user.username}).status_code == 200
    assert sorted(mirrored(name)) == sorted([ann.user.pk, bob.user.pk])

    assert call(as_bob, "GET", members).status_code == 200  # members may look
    assert call(as_carol, "GET", members).status_code == 403
    assert call(as_bob, "DELETE", f"{members}/{ann.user.username}").status_code == 403
    assert call(as_ann, "DELETE", f"{members}/{ann.user.username}").status_code == 409
    assert call(as_ann, "DELETE", f"{members}/{bob.user.username}").status_code == 204
    assert call(as_ann, "DELETE", f"{members}/{bob.user.username}").status_code == 404
    assert mirrored(name) == [ann.user.pk]


def test_bad_room_requests_get_a_json_400_naming_the_parameter(make_user):
    as_ann = client_of(make_user())
    for body, parameter in [
        ({"name": "two words"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": ["list"]}, "name"),
        ({"name": "ok-name", "private": "yes"}, "private"),
    ]:
        response = call(as_ann, "POST", "/api/rooms", body)
        assert response.status_code == 400 and response.json()["parameter"] == parameter, body


def test_the_api_refuses_strangers_and_bad_input(make_user, client):
    ann = make_user()
    name = room_name()
    assert call(client, "POST", "/api/rooms", {"name": name}).status_code == 401
    as_ann = client_of(ann)
    assert as_ann.post("/api/rooms", "not json", content_type="application/json").status_code == 400
    call(as_ann, "POST", "/api/rooms", {"name": name})
    response = call(as_ann, "POST", f"/api/rooms/{name}/members", {"username": "nobody-here"})
    assert response.status_code == 404 and response.json()["parameter"] == "username"
    assert call(as_ann, "GET", f"/api/rooms/{room_name()}/members").status_code == 404


def test_a_public_room_with_history_cannot_be_taken_private(make_user):
    """Its history would change hands: whoever named it first would read everyone's."""
    ann, bob = make_user(), make_user()
    name = room_name("public")
    Message.objects.create(
        id=uuid.uuid4(), room=name, author=bob.user, body="hi", sent_at=datetime.now(UTC)
    )
    assert call(client_of(ann), "POST", "/api/rooms", {"name": name}).status_code == 409
    assert not Room.objects.filter(name=name).exists()


def test_state_changes_need_the_csrf_token(make_user):
    """The session alone is not enough: a page on another site could send it."""
    ann, bob = make_user(), make_user()
    as_ann = client_of(ann, enforce_csrf=True)
    name = room_name()
    response = call(as_ann, "POST", "/api/rooms", {"name": name})
    assert response.status_code == 403 and "CSRF" in response.json()["error"]

    as_ann.get("/")  # a page with a form: sets the CSRF cookie
    token = as_ann.cookies["csrftoken"].value
    assert (
        call(as_ann, "POST", "/api/rooms", {"name": name}, HTTP_X_CSRFTOKEN=token).status_code
        == 201
    )
    members = f"/api/rooms/{name}/members"
    assert call(as_ann, "POST", members, {"username": bob.user.username}).status_code == 403
    response = call(
        as_ann, "POST", members, {"username": bob.user.username}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201
    assert call(as_ann, "DELETE", f"{members}/{bob.user.username}").status_code == 403
    assert sorted(mirrored(name)) == sorted([ann.user.pk, bob.user.pk])


def test_non_members_get_403_from_history_receipts_and_the_room_page(make_user):
    ann, bob, carol = make_user(), make_user(), make_user()
    name = room_name()
    call(client_of(ann), "POST", "/api/rooms", {"name": name})
    call(client_of(ann), "POST", f"/api/rooms/{name}/members", {"username": bob.user.username})
    Message.objects.create(
        id=uuid.uuid4(), room=name, author=ann.user, body="secret", sent_at=datetime.now(UTC)
    )
    # Carol even holds a valid receipt for the room (say, from before it was private).
    record = {
        "id": str(uuid.uuid4()),
        "room": name,
        "author": carol.user.username,
        "author_id": carol.user.pk,
        "body": "mine",
        "sent_at": cursors.timestamp(datetime.now(UTC)),
    }
    pending.remember([record])
    receipt = receipts.issue(record, carol.user.pk)

    as_carol = client_of(carol)
    history = f"/api/rooms/{name}/messages"
    response = as_carol.get(history, headers={"X-Write-Receipts": receipt})
    assert response.status_code == 403 and b"secret" not in response.content
    assert b"mine" not in response.content
    page = as_carol.get(f"/rooms/{name}/")
    assert page.status_code == 403 and b"not-a-member" in page.content
    assert name.encode() not in as_carol.get("/").content  # not listed either

    as_bob = client_of(bob)
    assert [m["body"] for m in as_bob.get(history).json()["messages"]] == ["secret"]
    page = as_bob.get(f"/rooms/{name}/")
    assert page.status_code == 200 and page.context["chat_config"]["private"] is True
    assert page.context["chat_config"]["owner"] is False
    assert name.encode() in as_bob.get("/").content


def test_the_mirror_follows_the_database_and_is_rebuilt_from_it(make_user, redis_client):
    ann, bob = make_user(), make_user()
    private, public = room_name(), room_name("public")
    as_ann = client_of(ann)
    call(as_ann, "POST", "/api/rooms", {"name": private})
    call(as_ann, "POST", "/api/rooms", {"name": public, "private": False})
    call(as_ann, "POST", f"/api/rooms/{private}/members", {"username": bob.user.username})
    before = redis_client.hgetall(redis_store.room_mirror())
    assert mirrored(public) is None

    redis_client.delete(redis_store.room_mirror())
    assert not access.is_ready()
    out = io.StringIO()
    call_command("rooms_mirror", stdout=out)
    assert "1 private room" in out.getvalue()
    after = redis_client.hgetall(redis_store.room_mirror())
    assert access.is_ready()
    assert {k: v for k, v in after.items() if k != b"ready"} == {
        k: v for k, v in before.items() if k != b"ready"
    }
    assert sorted(mirrored(private)) == sorted([ann.user.pk, bob.user.pk])
    assert redis_client.ttl(redis_store.room_mirror()) > 0

    # The admin's way, through the model: making the room public takes it out.
    room = Room.objects.get(name=private)
    room.private = False
    room.save()
    assert mirrored(private) is None


def test_the_admin_manages_rooms_and_keys_but_deletes_no_room(make_user, django_user_model):
    admin = django_user_model.objects.create_superuser("root-" + uuid.uuid4().hex[:6], "", "x")
    ann = make_user()
    name = room_name()
    call(client_of(ann), "POST", "/api/rooms", {"name": name})
    client = Client()
    client.force_login(admin)
    room = Room.objects.get(name=name)
    for page in ("/admin/chat/room/", f"/admin/chat/room/{room.pk}/change/", "/admin/chat/apikey/"):
        assert client.get(page).status_code == 200, page
    assert client.get(f"/admin/chat/room/{room.pk}/delete/").status_code == 403


# --- Sockets, on two server processes ----------------------------------------------------


def private_room_of(base: str, owner, *members) -> tuple[str, Browser]:
    """A private room made through the real login and API of a server process."""
    browser = Browser(base).log_in(owner.user.username)
    name = room_name()
    assert browser.call("POST", "/api/rooms", {"name": name, "private": True})[0] == 201
    for member in members:
        status, _ = browser.call(
            "POST", f"/api/rooms/{name}/members", {"username": member.user.username}
        )
        assert status == 201
    return name, browser


@pytest.mark.e2e
def test_a_non_member_is_refused_at_the_handshake(two_servers, make_user):
    ann, bob, carol = make_user(), make_user(), make_user()
    name, _ = private_room_of(two_servers.a, ann, bob)

    async def scenario():
        for base in (two_servers.a, two_servers.b):
            assert await refused(base, name, carol.cookie)
            assert not await refused(base, name, bob.cookie)
            assert not await refused(base, name, ann.cookie)
            assert not await refused(base, room_name("public"), carol.cookie)

    asyncio.run(scenario())


@pytest.mark.e2e
def test_a_removed_members_sockets_on_two_processes_close_with_4403_within_5_s(
    two_servers, make_user
):
    ann, bob = make_user(), make_user()
    name, owner = private_room_of(two_servers.a, ann, bob)

    async def scenario():
        on_a = await open_socket(two_servers.a, name, bob.cookie)
        on_b = await open_socket(two_servers.b, name, bob.cookie)
        elsewhere = await open_socket(two_servers.b, room_name("public"), bob.cookie)
        owners = await open_socket(two_servers.b, name, ann.cookie)
        started = time.monotonic()
        status, _ = await asyncio.to_thread(
            owner.call, "DELETE", f"/api/rooms/{name}/members/{bob.user.username}"
        )
        assert status == 204
        codes = await asyncio.gather(close_code(on_a, 5), close_code(on_b, 5))
        elapsed = time.monotonic() - started
        print(f"\nboth sockets closed {elapsed * 1000:.0f} ms after the removal: {codes}")
        assert codes == [4403, 4403]
        assert elapsed < 5
        assert await still_open(elsewhere) and await still_open(owners)
        assert await refused(two_servers.a, name, bob.cookie)
        for socket in (elsewhere, owners):
            await socket.close()

    asyncio.run(scenario())


@pytest.mark.e2e
def test_a_room_made_private_closes_its_non_members_sockets(two_servers, make_user):
    ann, carol = make_user(), make_user()
    name = room_name("going-private")

    async def scenario():
        carols = await open_socket(two_servers.b, name, carol.cookie)
        anns = await open_socket(two_servers.a, name, ann.cookie)
        browser = await asyncio.to_thread(Browser(two_servers.a).log_in, ann.user.username)
        status, _ = await asyncio.to_thread(browser.call, "POST", "/api/rooms", {"name": name})
        assert status == 201
        assert await close_code(carols, 5) == 4403
        assert await still_open(anns)
        await anns.close()

    asyncio.run(scenario())


@pytest.mark.e2e
def test_a_lost_mirror_fails_closed_until_the_worker_rebuilds_it(
    two_servers, make_user, redis_client, persist_queue, tmp_path
):
    """Redis loses the mirror (an operator's FLUSHDB, a restart without persistence): with
    it, nobody can tell a private room from a public one, so every join is refused --
    never let through -- until the worker, which looks every
    ``CHAT_ROOM_MIRROR_CHECK_INTERVAL`` seconds, has rebuilt it from PostgreSQL."""
    ann, bob, carol = make_user(), make_user(), make_user()
    name, _ = private_room_of(two_servers.a, ann, bob)
    redis_client.delete(redis_store.room_mirror())

    async def joins() -> dict[str, bool]:
        return {
            "carol, private": not await refused(two_servers.b, name, carol.cookie),
            "bob, private": not await refused(two_servers.b, name, bob.cookie),
            "carol, public": not await refused(two_servers.a, room_name("public"), carol.cookie),
        }

    assert asyncio.run(joins()) == {
        "carol, private": False,
        "bob, private": False,
        "carol, public": False,
    }

    worker = start_worker(
        {**two_servers.env, "CHAT_ROOM_MIRROR_CHECK_INTERVAL": "0.5"}, tmp_path / "worker.log"
    )
    try:
        worker.wait_until(access.is_ready, 30, "the worker to rebuild the mirror")
    finally:
        worker.stop()
    assert "queued a rebuild" in worker.output()
    assert asyncio.run(joins()) == {
        "carol, private": False,
        "bob, private": True,
        "carol, public": True,
    }
