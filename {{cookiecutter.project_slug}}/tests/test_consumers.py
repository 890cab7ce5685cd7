"""The room consumer through the real ASGI stack (origin check, session identity, routing),
the real Redis channel layer and the real broker, with every database access forbidden.
"""

import asyncio
import json
import time
import uuid

import pytest
from channels.layers import get_channel_layer
from kombu import Connection

from chat import protocol, redis_store, socket_slots
from support.processes import refusing_port
from tests.broker import queued_records
from tests.communicator import connected, frames_until, socket

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the users, committed by fixtures
    pytest.mark.database_forbidden,  # the test bodies: the WebSocket path
    pytest.mark.usefixtures("persist_queue"),
]


def send_frame(body: str = "hello", message_id: str | None = None) -> dict:
    return {"type": "message.send", "id": message_id or str(uuid.uuid4()), "body": body}


# A broker that is down: a port that refuses connections while this module runs.
REFUSING, REFUSING_PORT = refusing_port()


@pytest.fixture(scope="module", autouse=True)
def release_the_refusing_port():
    yield
    REFUSING.close()


def publish_to_dead_broker(records: list[dict]) -> None:
    """A hand-off publisher (``CHAT_HANDOFF_PUBLISHER``) for a broker that is down: the
    transport Celery publishes with (kombu), really connecting, and failing. Not a second
    Celery app: Celery gives ``CELERY_BROKER_URL`` from the environment precedence over
    any app's own broker, so wherever that is set, such an app reaches the real broker."""
    url = f"redis://127.0.0.1:{REFUSING_PORT}/0"
    with Connection(url, connect_timeout=1) as connection:
        connection.Producer().publish(records, routing_key="persist", retry=False)


async def test_anonymous_handshake_is_refused():
    ok, _ = await socket(cookie=None).connect()
    assert not ok


async def test_a_session_without_login_is_refused():
    ok, _ = await socket(cookie="sessionid=not-a-real-session").connect()
    assert not ok


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("sessionid=" + "k" * 32, id="well-formed-unknown-key"),
        pytest.param('sessionid="unterminated', id="malformed-cookie-header"),
        pytest.param(
            "sessionid=" + "a" * 200,
            id="long-key",
            # Django warns that such a key would not fit memcached; Redis takes it.
            marks=pytest.mark.filterwarnings("ignore::django.core.cache.CacheKeyWarning"),
        ),
        pytest.param("sessionid=../../etc/passwd", id="path-like-key"),
    ],
)
async def test_a_forged_session_cookie_is_refused(cookie):
    ok, _ = await socket(cookie=cookie).connect()
    assert not ok


async def test_a_session_that_never_logged_in_is_refused():
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    await store.aset("something", "else")  # a real session, but anonymous
    await store.asave()
    ok, _ = await socket(cookie=f"sessionid={store.session_key}").connect()
    assert not ok


async def test_foreign_origin_is_refused(ann):
    ok, _ = await socket(cookie=ann.cookie, origin=(b"origin", b"http://evil.example")).connect()
    assert not ok


@pytest.mark.parametrize("room", ["has space", "x" * 65, "dot.dot", "%C3%A9"])
async def test_malformed_room_is_refused(ann, room):
    ok, _ = await socket(room=room, cookie=ann.cookie).connect()
    assert not ok


async def test_message_fans_out_is_accepted_and_reaches_the_queue(
    ann, bob, redis_client, persist_queue
):
    ann_socket, bob_socket = await connected(ann), await connected(bob)
    elsewhere = await connected(bob, room="elsewhere")
    sent = send_frame("  hi bob  ")

    await ann_socket.send_json_to(sent)
    ann_frames = await frames_until(
        ann_socket, lambda f: {x["type"] for x in f} >= {"message", "message.accepted"}
    )
    bob_frame = await bob_socket.receive_json_from(timeout=5)

    message = next(f for f in ann_frames if f["type"] == "message")
    assert message == bob_frame
    assert message["id"] == sent["id"] and message["body"] == "hi bob"
    assert message["author"] == ann.user.username and message["room"] == "general"
    assert message["sent_at"].endswith("+00:00") and len(message["sent_at"].split(".")[1]) == 12
    accepted = next(f for f in ann_frames if f["type"] == "message.accepted")
    assert accepted["id"] == sent["id"] and accepted["receipt"]
    assert await elsewhere.receive_nothing(timeout=0.2)

    [record] = queued_records(persist_queue)
    assert record["id"] == sent["id"]
    assert record["author_id"] == ann.user.pk
    assert record["reply_channel"]
    for communicator in (ann_socket, bob_socket, elsewhere):
        await communicator.disconnect()


async def test_persisted_events_become_one_frame_per_stored_message(ann, persist_queue):
    """The worker's event names each of the socket's messages stored in a batch; a worker
    of an earlier version, still draining its queue, sends one event per message."""
    ann_socket = await connected(ann)
    await ann_socket.send_json_to(send_frame())
    await frames_until(
        ann_socket, lambda f: {x["type"] for x in f} >= {"message", "message.accepted"}
    )
    [record] = queued_records(persist_queue)
    layer = get_channel_layer()

    await layer.send(record["reply_channel"], {"type": "message.persisted", "ids": ["a", "b"]})
    await layer.send(record["reply_channel"], {"type": "message.persisted", "id": "c"})

    frames = await frames_until(ann_socket, lambda f: len(f) == 3)
    assert frames == [protocol.persisted_frame(i) for i in "abc"]
    await ann_socket.disconnect()


async def test_a_resent_id_is_neither_fanned_out_nor_queued_twice(ann, redis_client, persist_queue):
    ann_socket = await connected(ann)
    sent = send_frame()
    await ann_socket.send_json_to(sent)
    first = await frames_until(
        ann_socket, lambda f: {x["type"] for x in f} >= {"message", "message.accepted"}
    )
    await ann_socket.send_json_to(sent)
    again = await ann_socket.receive_json_from(timeout=5)

    assert [f["type"] for f in first].count("message") == 1
    assert again["type"] == "message.accepted" and again["id"] == sent["id"]
    assert await ann_socket.receive_nothing(timeout=0.2)
    assert [r["id"] for r in queued_records(persist_queue)] == [sent["id"]]
    await ann_socket.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("nope", protocol.INVALID_JSON),
        ("[]", protocol.INVALID_FRAME),
        (json.dumps({"type": "message.delete"}), protocol.UNKNOWN_TYPE),
        (json.dumps(send_frame(message_id="123")), protocol.INVALID_ID),
        (json.dumps(send_frame(body="   ")), protocol.EMPTY_BODY),
        (json.dumps(send_frame(body="x" * 4001)), protocol.BODY_TOO_LONG),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(ann, raw, code):
    ann_socket = await connected(ann)
    await ann_socket.send_to(text_data=raw)
    error = await ann_socket.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code and error["detail"]

    await ann_socket.send_json_to(send_frame("still here"))
    frames = await frames_until(
        ann_socket, lambda f: {x["type"] for x in f} >= {"message", "message.accepted"}
    )
    assert any(f["type"] == "message" and f["body"] == "still here" for f in frames)
    await ann_socket.disconnect()


async def test_binary_frames_get_invalid_frame(ann):
    ann_socket = await connected(ann)
    await ann_socket.send_to(bytes_data=b"\x00\x01")
    error = await ann_socket.receive_json_from(timeout=5)
    assert error == {
        "type": "error",
        "code": "invalid_frame",
        "detail": error["detail"],
        "id": None,
    }
    await ann_socket.disconnect()


async def test_a_frame_over_the_hard_cap_closes_with_1009(ann):
    ann_socket = await connected(ann)
    await ann_socket.send_to(text_data=json.dumps(send_frame(body="x" * 70_000)))
    closed = await ann_socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 1009}


async def test_broker_down_means_unavailable_not_accepted(
    ann, settings, redis_client, persist_queue
):
    settings.CHAT_HANDOFF_PUBLISHER = f"{__name__}.publish_to_dead_broker"
    ann_socket = await connected(ann)
    sent = send_frame()
    await ann_socket.send_json_to(sent)
    # The client library's own retries of a refused connection (redis-py, kombu) take
    # seconds; the sender hears within CHAT_HANDOFF_TIMEOUT whatever they do.
    frames = await frames_until(
        ann_socket,
        lambda f: any(x["type"] == "error" for x in f),
        within=settings.CHAT_HANDOFF_TIMEOUT + 5,
    )

    error = frames[-1]
    assert error["code"] == "unavailable" and error["id"] == sent["id"]
    assert not any(f["type"] == "message.accepted" for f in frames)
    assert queued_records(persist_queue) == []

    # Nothing was accepted, so a resend with the same id is handed off afresh.
    settings.CHAT_HANDOFF_PUBLISHER = "chat.queue.publish"  # the project's own
    await ann_socket.send_json_to(sent)
    frames = await frames_until(
        ann_socket, lambda f: any(x["type"] == "message.accepted" for x in f)
    )
    assert [r["id"] for r in queued_records(persist_queue)] == [sent["id"]]
    await ann_socket.disconnect()


async def test_too_many_frames_get_rate_limited_and_sustained_abuse_closes_4429(ann, settings):
    settings.CHAT_RATE_BURST, settings.CHAT_RATE_LIMIT, settings.CHAT_RATE_MAX_STRIKES = 3, 0.01, 2
    ann_socket = await connected(ann)
    for _ in range(3):
        await ann_socket.send_to(text_data="not json")  # counts too: any frame is a frame
        assert (await ann_socket.receive_json_from(timeout=5))["code"] == "invalid_json"
    for _ in range(2):
        await ann_socket.send_json_to(send_frame())
        error = await ann_socket.receive_json_from(timeout=5)
        assert error == {
            "type": "error",
            "code": "rate_limited",
            "detail": error["detail"],
            "id": None,
        }
    await ann_socket.send_json_to(send_frame())
    assert await ann_socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4429}


async def test_html_and_script_bodies_are_fanned_out_and_queued_verbatim(
    ann, bob, redis_client, persist_queue
):
    body = '<script>alert("x")</script><img src=x onerror=alert(1)> &amp; \u202e \'; DROP TABLE'
    ann_socket, bob_socket = await connected(ann), await connected(bob)
    await ann_socket.send_json_to(send_frame(body))
    await frames_until(ann_socket, lambda f: any(x["type"] == "message.accepted" for x in f))
    assert (await bob_socket.receive_json_from(timeout=5))["body"] == body
    assert [r["body"] for r in queued_records(persist_queue)] == [body]
    for communicator in (ann_socket, bob_socket):
        await communicator.disconnect()


async def closed_with(communicator) -> int | None:
    """Connect; the close code if the server closes right after accepting, else None."""
    ok, _ = await communicator.connect()
    assert ok
    if await communicator.receive_nothing(timeout=0.3):
        return None
    output = await communicator.receive_output(timeout=5)
    return output["code"] if output["type"] == "websocket.close" else None


async def test_one_socket_too_many_for_a_user_is_closed_with_4409(ann, bob, settings):
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    first, second = await connected(ann), await connected(ann, room="elsewhere")
    assert await closed_with(socket("general", ann.cookie)) == protocol.CLOSE_TOO_MANY_SOCKETS

    bobs = socket("general", bob.cookie)  # the cap is per user
    assert await closed_with(bobs) is None

    await first.disconnect()  # a clean goodbye frees the slot at once
    again = socket("general", ann.cookie)
    assert await closed_with(again) is None
    await again.send_json_to(send_frame())
    await frames_until(again, lambda f: any(x["type"] == "message.accepted" for x in f))
    for communicator in (second, bobs, again):
        await communicator.disconnect()


async def test_an_open_socket_keeps_renewing_its_slot(ann, settings):
    settings.CHAT_MAX_SOCKETS_PER_USER, settings.CHAT_SOCKET_SLOT_TTL = 1, 0.6
    first = await connected(ann)
    redis = redis_store.async_client()
    key = redis_store.user_sockets(ann.user.pk)
    [(_, claimed_until)] = await redis.zrange(key, 0, -1, withscores=True)
    deadline = time.monotonic() + 10
    while (await redis.zrange(key, 0, -1, withscores=True))[0][1] < claimed_until + 1:
        assert time.monotonic() < deadline, "the open socket never renewed its slot"
        await asyncio.sleep(0.05)
    # Well past the first claim's end, the live socket still holds the only slot.
    assert await closed_with(socket("general", ann.cookie)) == protocol.CLOSE_TOO_MANY_SOCKETS
    await first.disconnect()


async def test_slots_of_a_crashed_process_free_themselves(ann, settings):
    settings.CHAT_MAX_SOCKETS_PER_USER, settings.CHAT_SOCKET_SLOT_TTL = 2, 1
    # Two sockets of a process that died: claimed, then never renewed nor released.
    for holder in ("dead-process!1", "dead-process!2"):
        assert await socket_slots.claim(ann.user.pk, holder)
    assert await closed_with(socket("general", ann.cookie)) == protocol.CLOSE_TOO_MANY_SOCKETS

    deadline = time.monotonic() + 10
    while (code := await closed_with(attempt := socket("general", ann.cookie))) is not None:
        assert code == protocol.CLOSE_TOO_MANY_SOCKETS
        assert time.monotonic() < deadline, "the dead process's slots never ran out"
        await asyncio.sleep(0.1)
    await attempt.disconnect()
