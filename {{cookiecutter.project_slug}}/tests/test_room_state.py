"""Offsets, presence and typing on the WebSocket path, in process: the real ASGI application,
the real Redis channel layer and Redis, and every database access forbidden."""

import uuid

import pytest

from chat import offsets, presence, redis_store
from chat.heartbeat import heartbeat
from chat.offsets import RESEED_GAP
from tests import broker
from tests.communicator import connected, frames_until

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the users, committed by fixtures
    pytest.mark.database_forbidden,  # the test bodies: the WebSocket path
    pytest.mark.usefixtures("persist_queue"),
]


def a_room() -> str:
    return f"state-{uuid.uuid4().hex[:10]}"


def send_frame(body: str = "hello") -> dict:
    return {"type": "message.send", "id": str(uuid.uuid4()), "body": body}


async def room_state(communicator, frame_type: str, user=None, within: float = 5) -> dict:
    """The next frame of ``frame_type`` (about ``user``), passing over every other frame."""

    def found(frames):
        last = frames[-1] if frames else {}
        return last.get("type") == frame_type and user in (None, last.get("user"))

    return (await frames_until(communicator, found, within, room_state=True))[-1]


async def test_offsets_count_up_per_room_and_come_with_every_message(ann, bob):
    room, other = a_room(), a_room()
    ann_socket, bob_socket = await connected(ann, room), await connected(bob, room)
    elsewhere = await connected(ann, other)
    for body in ("one", "two", "three"):
        await ann_socket.send_json_to(send_frame(body))
    await elsewhere.send_json_to(send_frame("somewhere else"))

    seen = await frames_until(bob_socket, lambda f: len(f) == 3)
    assert [(f["body"], f["offset"]) for f in seen] == [("one", 1), ("two", 2), ("three", 3)]
    mine = await frames_until(elsewhere, lambda f: any(x["type"] == "message" for x in f))
    assert next(f["offset"] for f in mine if f["type"] == "message") == 1  # its own count
    window = offsets.recent(room, after=1)
    assert [(m["body"], m["offset"]) for m in window] == [("two", 2), ("three", 3)]
    for communicator in (ann_socket, bob_socket, elsewhere):
        await communicator.disconnect()


@pytest.fixture
def counters_lost_afterwards():
    """A test that loses the counters leaves them started afresh (no gap) for the next
    tests, whose rooms are new."""
    yield
    redis_store.client().delete(redis_store.room_offsets())
    offsets.seed({})


@pytest.mark.usefixtures("counters_lost_afterwards")
async def test_no_offset_is_handed_out_until_lost_counters_are_seeded_again(ann, settings):
    """Redis lost the counters (a restart without persistence): restarting them at 1 would
    hand out numbers PostgreSQL already has, so senders hear "unavailable" until they are
    seeded again (by the worker, or migrate; here as seed_offsets does it)."""
    room = a_room()
    ann_socket = await connected(ann, room)
    await ann_socket.send_json_to(send_frame("before"))
    first = await frames_until(ann_socket, lambda f: any(x["type"] == "message" for x in f))
    assert next(f["offset"] for f in first if f["type"] == "message") == 1

    redis_store.client().delete(redis_store.room_offsets())
    refused = send_frame("while lost")
    await ann_socket.send_json_to(refused)
    error = await ann_socket.receive_json_from(timeout=5)
    assert (error["type"], error["code"], error["id"]) == ("error", "unavailable", refused["id"])

    offsets.seed({room: 41, "elsewhere": 7})  # PostgreSQL's highest offsets, say
    await ann_socket.send_json_to(refused)  # resent, same id, as the contract asks
    again = await frames_until(ann_socket, lambda f: any(x["type"] == "message" for x in f))
    # Past a gap: messages accepted before the loss and not yet stored hold numbers above 41.
    assert next(f["offset"] for f in again if f["type"] == "message") == 41 + RESEED_GAP + 1
    await ann_socket.disconnect()


@pytest.mark.usefixtures("counters_lost_afterwards")
async def test_after_a_loss_a_room_with_nothing_stored_starts_past_the_gap_too(ann):
    """Its first messages may all be on their way to the worker, numbered from 1."""
    redis_store.client().delete(redis_store.room_offsets())
    offsets.seed({a_room(): 41})
    room = a_room()
    ann_socket = await connected(ann, room)
    await ann_socket.send_json_to(send_frame("first after the loss"))
    first = await frames_until(ann_socket, lambda f: any(x["type"] == "message" for x in f))
    assert next(f["offset"] for f in first if f["type"] == "message") == RESEED_GAP + 1
    await ann_socket.disconnect()


def test_seeding_counters_that_are_there_only_raises_them():
    """As every migrate does: no gap, no counter lowered."""
    low, high = a_room(), a_room()
    offsets.seed({low: 5, high: 50})  # the counters exist: this only raises them
    offsets.seed({low: 9, high: 20})
    counters = redis_store.client().hgetall(redis_store.room_offsets())
    assert (int(counters[low]), int(counters[high])) == (9, 50)


async def test_the_recent_window_is_bounded_in_length(ann, settings):
    settings.CHAT_RECENT_WINDOW = 3
    room = a_room()
    ann_socket = await connected(ann, room)
    for n in range(5):
        await ann_socket.send_json_to(send_frame(f"m{n}"))
    await frames_until(ann_socket, lambda f: len([x for x in f if x["type"] == "message"]) == 5)
    assert [m["offset"] for m in offsets.recent(room, after=0)] == [3, 4, 5]
    assert 0 < redis_store.client().ttl(redis_store.recent_messages(room)) <= 3600
    await ann_socket.disconnect()


async def test_presence_on_join_then_join_and_leave_for_first_and_last_sockets(ann, bob):
    room = a_room()
    ann_socket = await connected(ann, room)
    here = await room_state(ann_socket, "presence")
    assert here == {"type": "presence", "users": [ann.user.username]}

    bob_first = await connected(bob, room)
    assert (await room_state(bob_first, "presence"))["users"] == sorted(
        [ann.user.username, bob.user.username]
    )
    assert await room_state(ann_socket, "presence.join", bob.user.username) == {
        "type": "presence.join",
        "user": bob.user.username,
    }
    bob_second = await connected(bob, room)  # not his first socket: no announcement
    await room_state(bob_second, "presence")
    await bob_first.disconnect()  # not his last socket: no announcement either
    await bob_second.disconnect()
    left = await frames_until(
        ann_socket, lambda f: f and f[-1]["type"] == "presence.leave", room_state=True
    )
    joins = [f for f in left if f["type"] == "presence.join"]
    assert joins == [], "a second socket was announced as a join"
    assert left[-1] == {"type": "presence.leave", "user": bob.user.username}
    assert await presence.users(room) == [ann.user.username]
    await ann_socket.disconnect()
    assert await presence.users(room) == []


async def test_users_of_a_process_that_died_leave_when_their_entries_run_out(ann, settings):
    """A process that dies renews nothing; a live process in the same room reaps the entries
    that ran out and announces who left (here the dead process's socket is an entry that was
    made and never renewed)."""
    settings.CHAT_PRESENCE_TTL = 0.6
    room = a_room()
    dead_entry = presence.member("specific.dead-process!1", "carol")
    assert await presence.join(room, dead_entry)
    ann_socket = await connected(ann, room)
    assert (await room_state(ann_socket, "presence"))["users"] == ["carol", ann.user.username]

    gone = await room_state(ann_socket, "presence.leave", "carol", within=10)
    assert gone == {"type": "presence.leave", "user": "carol"}
    assert await presence.users(room) == [ann.user.username]  # ann's own entry was renewed
    await ann_socket.disconnect()


async def test_typing_reaches_the_others_only_rate_limited_never_stored_nor_queued(
    ann, bob, redis_client, persist_queue
):
    room = a_room()
    ann_socket, ann_other_tab = await connected(ann, room), await connected(ann, room)
    bob_socket = await connected(bob, room)
    for _ in range(5):  # a burst from one keyboard: one event goes out
        await ann_socket.send_json_to({"type": "typing"})
    assert await room_state(bob_socket, "typing") == {"type": "typing", "user": ann.user.username}
    later = await bob_socket.frames_within(0.5)
    assert "typing" not in [f["type"] for f in later], "more than one event for a burst"
    told = await ann_other_tab.frames_within(0.1)
    assert "typing" not in [f["type"] for f in told], "the typist's own tabs were told"
    assert broker.length(persist_queue) == 0, "typing reached the persistence queue"
    for communicator in (ann_socket, ann_other_tab, bob_socket):
        await communicator.disconnect()


async def test_the_heartbeat_reports_this_process_and_stops_with_its_last_socket(ann, settings):
    room = a_room()
    ann_socket = await connected(ann, room)
    beat = heartbeat()
    assert beat.sockets >= 1 and beat.task is not None and not beat.task.done()
    await ann_socket.disconnect()
    assert beat.sockets == 0
    await beat.task  # its last beat reports nothing open, then it ends
    assert beat.task.done()
