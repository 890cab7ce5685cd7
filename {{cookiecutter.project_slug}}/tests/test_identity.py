"""An id belongs to its first author: a user who sends under another user's id hijacks
nothing, live, in storage, in the pending store or in history (docs/protocol.md)."""

import asyncio
import json
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest

from chat import history, offsets, pending, receipts, redis_store, tasks
from chat.models import DeadLetter, Message
from chat.persistence import store_batch
from support.processes import child_env, start_web, start_worker
from tests.wsclient import Client


def record(user, message_id: str, body: str, room: str = "ident") -> dict:
    return {
        "id": message_id,
        "room": room,
        "author": user.username,
        "author_id": user.pk,
        "body": body,
        "sent_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "reply_channel": "",
    }


# --- Storage ------------------------------------------------------------------------------


def rows_of(message_id: str) -> list[tuple[int, int, str]]:
    """(key, author, body) of every row stored under ``message_id``, first stored first."""
    return list(
        Message.objects.filter(id=message_id)
        .order_by("key")
        .values_list("key", "author_id", "body")
    )


@pytest.mark.django_db
def test_storage_keeps_each_authors_message_under_one_id_once_and_never_changes_the_first(
    django_user_model,
):
    ann, bob = (django_user_model.objects.create_user(username=n) for n in ("ann", "bob"))
    message_id = str(uuid.uuid4())
    original, other = record(ann, message_id, "mine"), record(bob, message_id, "not hers")

    assert store_batch([original]).stored == [original]
    (first,) = rows_of(message_id)
    later = store_batch([other])  # after the claim ran out, say
    together = store_batch([original, other])  # a redelivery holding both
    resent = store_batch([{**other, "body": "changed"}])  # (author, id) is stored once

    assert later.stored == [other] and later.dead == []
    assert together.stored == [original, other] and together.dead == []
    assert resent.stored and resent.dead == []
    assert first[1:] == (ann.pk, "mine")
    assert [row[1:] for row in rows_of(message_id)] == [(ann.pk, "mine"), (bob.pk, "not hers")]
    assert rows_of(message_id)[0] == first  # the same row, untouched
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db
def test_both_in_one_first_batch_each_is_stored_and_each_sender_hears_of_its_own_only(
    django_user_model, monkeypatch, persist_queue
):
    ann, bob = (django_user_model.objects.create_user(username=n) for n in ("ann", "bob"))
    message_id = str(uuid.uuid4())
    original = {**record(ann, message_id, "mine"), "reply_channel": "ann-socket"}
    other = {**record(bob, message_id, "not hers"), "reply_channel": "bob-socket"}
    told: list[dict] = []
    monkeypatch.setattr(tasks.notifications, "notify_persisted", told.extend)

    assert tasks.persist_messages([original, other]) == {"stored": 2, "dead": 0}
    assert sorted((r["reply_channel"], r["author_id"], r["body"]) for r in told) == [
        ("ann-socket", ann.pk, "mine"),
        ("bob-socket", bob.pk, "not hers"),
    ]
    assert [row[1:] for row in rows_of(message_id)] == [(ann.pk, "mine"), (bob.pk, "not hers")]


# --- The pending store and read-your-writes -----------------------------------------------


@pytest.mark.django_db
def test_pending_entries_and_receipts_are_the_authors_own(django_user_model):
    ann, bob = (django_user_model.objects.create_user(username=n) for n in ("ann", "bob"))
    message_id = str(uuid.uuid4())
    original, forged = record(ann, message_id, "mine"), record(bob, message_id, "forged")
    pending.remember([original])
    pending.remember([forged])  # does not overwrite Ann's entry
    try:
        assert pending.lookup(ann.pk, "ident", [message_id]) == [original]
        assert pending.lookup(bob.pk, "ident", [message_id]) == [forged]
        assert pending.lookup(ann.pk, "elsewhere", [message_id]) == []

        # Bob's receipt names the id, but shows Bob only Bob's own message.
        bobs = history.page("ident", bob.pk, history.Query(), receipts.issue(forged, bob.pk))
        assert [(m["author"], m["body"]) for m in bobs.messages] == [("bob", "forged")]

        pending.forget([forged])  # Bob's record dead-lettered: Ann's entry stays
        assert pending.lookup(ann.pk, "ident", [message_id]) == [original]

        store_batch([original])
        # Ann's stored message does not complete Bob's receipt: his message is not stored.
        bobs = history.page("ident", bob.pk, history.Query(), receipts.issue(forged, bob.pk))
        assert bobs.consistency == "pending"
        assert [(m["author"], m["body"]) for m in bobs.messages] == [("ann", "mine")]
        anns = history.page("ident", ann.pk, history.Query(), receipts.issue(original, ann.pk))
        assert anns.consistency == "complete"
    finally:
        pending.forget([original, forged])


@pytest.mark.django_db
def test_after_offset_never_lets_one_authors_message_hide_anothers_under_the_same_id(
    django_user_model, redis_client
):
    ann, bob = (django_user_model.objects.create_user(username=n) for n in ("ann", "bob"))
    room = f"ident-{uuid.uuid4().hex[:8]}"
    message_id = str(uuid.uuid4())
    # Both unstored in the room's recent window: Redis lost the claims in between, say.
    window = redis_store.recent_messages(room)
    for offset, (user, body) in enumerate([(ann, "mine"), (bob, "forged")], start=1):
        fields = record(user, message_id, body, room)
        entry = {k: v for k, v in fields.items() if k not in ("author_id", "reply_channel")}
        redis_client.zadd(window, {offsets.window_entry(entry): offset})
    try:
        page = history.page(room, ann.pk, history.Query(after_offset=0))
        assert [(m["author"], m["body"], m["offset"]) for m in page.messages] == [
            ("ann", "mine", 1),
            ("bob", "forged", 2),
        ]
    finally:
        redis_client.delete(window)


# --- Against the real server and worker ---------------------------------------------------


@pytest.fixture
def servers(persist_queue, tmp_path):
    env = child_env()
    web, port = start_web(env, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "worker.log")
    yield f"ws://127.0.0.1:{port}"
    for process in (web, worker):
        process.stop()


def history_of(base: str, logged_in, room: str) -> list[dict]:
    url = f"{base.replace('ws://', 'http://')}/api/rooms/{room}/messages"
    request = urllib.request.Request(url, headers={"Cookie": logged_in.cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["messages"]


async def send_as(client: Client, message_id: str, body: str) -> None:
    await client.socket.send(json.dumps({"type": "message.send", "id": message_id, "body": body}))


def about(client: Client, message_id: str) -> list[dict]:
    return [f for f in client.frames if f.get("id") == message_id]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_message_sent_under_another_users_id_is_refused_and_hijacks_nothing(servers, make_user):
    ann, bob, cat = make_user(), make_user(), make_user()
    room = f"ident-{uuid.uuid4().hex[:8]}"

    async def scenario():
        async with (
            Client(servers, ann, room) as anns,
            Client(servers, bob, room) as bobs,
            Client(servers, cat, room) as cats,
        ):
            message_id = await anns.send("the original")
            await bobs.wait_until(lambda frames: message_id in bobs.ids("message"))
            await send_as(bobs, message_id, "the forgery")  # before Ann's is stored...
            await bobs.wait_until(lambda frames: message_id in bobs.ids("error"))
            await anns.wait_until(lambda frames: message_id in anns.ids("message.persisted"))
            await send_as(bobs, message_id, "the forgery")  # ...and after
            await bobs.wait_until(lambda frames: bobs.ids("error").count(message_id) == 2)
            # Bob's own messages still go through; once Cat has his, Cat has seen
            # whatever the forgeries could have fanned out before it.
            barrier = await bobs.send("a message of my own")
            await cats.wait_until(lambda frames: barrier in cats.ids("message"))
            await bobs.wait_until(lambda frames: barrier in bobs.ids("message.persisted"))
            return message_id, anns, bobs, cats

    message_id, anns, bobs, cats = asyncio.run(scenario())

    assert [(e["type"], e["code"]) for e in about(bobs, message_id) if e["type"] == "error"] == [
        ("error", "id_conflict")
    ] * 2
    assert not {"message.accepted", "message.persisted"} & {
        f["type"] for f in about(bobs, message_id)
    }
    for client in (anns, bobs, cats):
        live = [
            (f["author"], f["body"]) for f in about(client, message_id) if f["type"] == "message"
        ]
        assert live == [(ann.user.username, "the original")]
    stored = [
        (m["author"], m["body"]) for m in history_of(servers, cat, room) if m["id"] == message_id
    ]
    assert stored == [(ann.user.username, "the original")]
    assert not DeadLetter.objects.filter(message_id=message_id).exists()  # never handed off


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_once_the_claim_has_run_out_both_messages_are_stored_and_the_first_is_untouched(
    servers, make_user, redis_client
):
    ann, bob = make_user(), make_user()
    room = f"ident-{uuid.uuid4().hex[:8]}"

    async def stored_by_ann():
        async with Client(servers, ann, room) as anns:
            message_id = await anns.send("the original")
            await anns.wait_until(lambda frames: message_id in anns.ids("message.persisted"))
            return message_id

    async def sent_by_bob_after_the_claim_ran_out(message_id: str):
        async with Client(servers, ann, room) as anns, Client(servers, bob, room) as bobs:
            await send_as(bobs, message_id, "bob's own")
            await bobs.wait_until(lambda frames: message_id in bobs.ids("message.persisted"))
            # Notices to one socket arrive in order: once Ann hears of a later message of
            # hers, she would have heard any notice about Bob's.
            barrier = await anns.send("a later message")
            await anns.wait_until(lambda frames: barrier in anns.ids("message.persisted"))
            return anns, bobs

    message_id = asyncio.run(stored_by_ann())
    first = Message.objects.values().get(id=message_id)
    assert redis_client.delete(redis_store.message_claim(message_id)) == 1  # ran out
    anns, bobs = asyncio.run(sent_by_bob_after_the_claim_ran_out(message_id))

    assert message_id not in anns.ids("message.persisted")  # Bob's is not hers
    assert bobs.ids("message.persisted").count(message_id) == 1
    assert "error" not in {f["type"] for f in about(bobs, message_id)}
    ann_row, bob_row = Message.objects.filter(id=message_id).order_by("key").values()
    assert ann_row == first  # never changed
    assert (bob_row["author_id"], bob_row["body"]) == (bob.user.pk, "bob's own")
    assert not DeadLetter.objects.filter(message_id=message_id).exists()
    expected = [(ann.user.username, "the original", True), (bob.user.username, "bob's own", True)]
    for reader in (ann, bob):
        assert [
            (m["author"], m["body"], m["persisted"])
            for m in history_of(servers, reader, room)
            if m["id"] == message_id
        ] == expected
    live = [(f["author"], f["body"]) for f in about(anns, message_id) if f["type"] == "message"]
    assert live == [(bob.user.username, "bob's own")]  # under Bob's name, not Ann's


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_resending_ones_own_id_from_another_socket_stays_harmless(servers, make_user):
    ann = make_user()
    room = f"ident-{uuid.uuid4().hex[:8]}"

    async def scenario():
        async with Client(servers, ann, room) as first, Client(servers, ann, room) as second:
            message_id = await first.send("mine")
            await first.wait_until(lambda frames: message_id in first.ids("message.persisted"))
            await send_as(second, message_id, "mine")
            await second.wait_until(lambda frames: message_id in second.ids("message.persisted"))
            return message_id, second

    message_id, second = asyncio.run(scenario())
    assert "error" not in {f["type"] for f in about(second, message_id)}
    assert [m["id"] for m in history_of(servers, ann, room)] == [message_id]
