"""No frame crashes a consumer: whatever a client sends, it gets an ``error`` frame (or a
documented close code), and the same socket then answers a normal ``message.send``.

The property tests drive the real consumer in process (the ASGI application, the real Redis
channel layer and broker) with hostile text: arbitrary JSON whose strings hold characters of
every Unicode category, lone surrogates and NULs, and brackets nested tens of thousands deep.
The last tests send the two frames that used to kill a consumer to a real server process,
over a real WebSocket, and make one consumer die to show its clean-up still runs.
"""

import asyncio
import json
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chat import consumers, failsafe, groups, protocol, redis_store
from ops import metrics
from support.processes import child_env, start_web
from tests.communicator import connected, frames_until
from tests.test_protocol_properties import CODES

# What the consumer may answer a frame besides the validator's codes: hypothesis draws the
# same ids run after run, so a valid message.send can carry an id an earlier run's user
# claimed (chat.claims): another user's id, refused as the contract says.
ANSWERS = CODES | {protocol.ID_CONFLICT}

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the users, committed by fixtures
    pytest.mark.usefixtures("persist_queue"),
]

# Every code point: all Unicode categories, lone surrogates (Cs) and NUL included.
anything = st.characters(codec=None, exclude_categories=())
hostile_text = st.text(anything, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)
send_frames = st.fixed_dictionaries(
    {"type": st.just("message.send"), "id": st.uuids().map(str)},
    optional={"body": hostile_text | json_values, "extra": json_values},
)


def nested(depth: int, kind: str) -> str:
    """Brackets ``depth`` deep: closed, left open, or as an object's values (a third as
    deep: every frame stays under the 64 KiB cap, past which the socket closes with 1009)."""
    if kind == "closed":
        return "[" * depth + "]" * depth
    if kind == "open":
        return "[" * depth
    depth //= 3
    return '{"a":' * depth + "1" + "}" * depth


deep = st.builds(
    nested, st.integers(min_value=500, max_value=30_000), st.sampled_from(["closed", "open", "obj"])
)


def as_text(value, ascii_only: bool) -> str:
    """As a client would spell it: escaped (what a browser's JSON.stringify sends for a lone
    surrogate), or raw (only an in-process caller can pass a raw surrogate)."""
    return json.dumps(value, ensure_ascii=ascii_only)


frames = (
    st.builds(as_text, json_values | send_frames, st.booleans())
    | hostile_text
    | deep
    | st.builds(lambda body: json.dumps(protocol_frame(body)), st.text(anything, min_size=1))
)


def protocol_frame(body: str) -> dict:
    return {"type": "message.send", "id": str(uuid.uuid4()), "body": body}


def expected_answer(text: str):
    """What the validator makes of ``text``: the error code it answers, or None (a command)."""
    try:
        protocol.parse_client_frame(text, max_body=4000)
    except protocol.ProtocolError as error:
        return error.code
    return None


async def answers_then_still_works(socket, text: str) -> None:
    """Send ``text``, then a normal message: the text gets its answer (if it is wrong) and
    the message gets fanned out and accepted, on the same socket."""
    code = expected_answer(text)
    await socket.send_input({"type": "websocket.receive", "text": text})  # "" included
    normal = protocol_frame("still here")
    await socket.send_json_to(normal)
    got = await frames_until(
        socket,
        lambda f: (
            {(x["type"], x.get("id")) for x in f}
            >= {("message", normal["id"]), ("message.accepted", normal["id"])}
        ),
        within=10,
    )
    errors = [f for f in got if f["type"] == "error"]
    assert all(e["code"] in ANSWERS and e["detail"] != failsafe.DETAIL for e in errors), errors
    if code is not None:
        assert errors and errors[0]["code"] == code, (text[:80], got)


@pytest.fixture
def loop():
    """One event loop for a whole property test: its socket lives across the examples."""
    loop = asyncio.new_event_loop()
    yield loop
    for task in asyncio.all_tasks(loop):  # what a failed test left running
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


@pytest.mark.database_forbidden
def test_no_frame_makes_the_consumer_fail_and_the_socket_answers_afterwards(ann, settings, loop):
    # Not the limits' test: 150 examples, each with a normal message, in a few seconds.
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_BURST = 1_000_000
    settings.CHAT_USER_MESSAGES_PER_SECOND = settings.CHAT_USER_BYTES_PER_SECOND = 1_000_000
    failures = metrics.FRAME_FAILURES._value.get()
    socket = loop.run_until_complete(connected(ann))

    @hypothesis_settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(frames)
    def each(text):
        loop.run_until_complete(answers_then_still_works(socket, text))

    try:
        each()
    finally:
        loop.run_until_complete(socket.disconnect())
    # Every frame was answered by the validator, none by the last line of defence.
    assert metrics.FRAME_FAILURES._value.get() == failures


@pytest.mark.database_forbidden
@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param("[" * 30_000 + "]" * 30_000, protocol.INVALID_JSON, id="nested-brackets"),
        pytest.param('{"a":' * 10_000 + "1" + "}" * 10_000, protocol.INVALID_JSON, id="nested"),
        pytest.param(
            json.dumps(protocol_frame("\ud83d")), protocol.INVALID_FRAME, id="lone-surrogate"
        ),
        pytest.param(
            json.dumps(protocol_frame("a\udc00b"), ensure_ascii=False),
            protocol.INVALID_FRAME,
            id="raw-surrogate",
        ),
        pytest.param(json.dumps(protocol_frame("a\x00b")), protocol.INVALID_FRAME, id="nul"),
        pytest.param(
            json.dumps({"type": "message.send", "id": "\ud83d", "body": "x"}),
            protocol.INVALID_ID,
            id="surrogate-id",
        ),
        pytest.param("9" * 5000, protocol.INVALID_JSON, id="huge-integer"),
    ],
)
async def test_each_frame_that_used_to_kill_a_consumer_gets_an_error(ann, text, code):
    socket = await connected(ann)
    await socket.send_to(text_data=text)
    error = await socket.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code, error
    json.dumps(error).encode()  # the error frame itself is sendable text
    await answers_then_still_works(socket, json.dumps(protocol_frame("again")))
    await socket.disconnect()


async def test_a_resend_while_the_hand_off_is_in_flight_gets_the_same_answer(ann, settings):
    """The hand-off is held back (a long batch window); the resend arrives meanwhile and is
    answered when the hand-off resolves, with the same receipt."""
    settings.CHAT_HANDOFF_MAX_DELAY = 0.5
    socket = await connected(ann)
    frame = protocol_frame("twice")
    await socket.send_json_to(frame)
    await socket.send_json_to(frame)
    got = await frames_until(
        socket, lambda f: [x["type"] for x in f].count("message.accepted") == 2, within=10
    )
    accepted = [f for f in got if f["type"] == "message.accepted"]
    assert [f["id"] for f in accepted] == [frame["id"]] * 2
    assert accepted[0]["receipt"] == accepted[1]["receipt"]
    assert [f["type"] for f in got].count("message") == 1  # fanned out once
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def members(group: str) -> set[str]:
    """The channels in ``group``, as the channel layer has them."""
    layer = groups.channel_layer()
    if hasattr(layer, "_get_layer"):  # pub/sub: this process's subscriptions
        loop_layer = layer._get_layer()
        return set(loop_layer.groups.get(loop_layer._get_group_channel_name(group), ()))
    async with layer.connection(layer.consistent_hash(group)) as redis:  # core: in Redis
        return {m.decode() for m in await redis.zrange(layer._group_key(group), 0, -1)}


async def test_a_consumer_that_dies_still_cleans_up(ann, redis_client, monkeypatch):
    """A handler that raises ends the consumer (Channels calls no ``disconnect`` then): the
    sockets gauge, the room and user groups and the socket slot are given back anyway."""

    async def broken(self, event):
        raise RuntimeError("a bug in a handler")

    room = f"crash-{uuid.uuid4().hex[:8]}"
    before = metrics.SOCKETS_CONNECTED._value.get()
    socket = await connected(ann, room=room)
    assert metrics.SOCKETS_CONNECTED._value.get() == before + 1
    assert len(await members(groups.room(room))) == 1
    monkeypatch.setattr(consumers.RoomConsumer, "room_message", broken)
    await socket.send_json_to(protocol_frame("boom"))
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        while True:  # message.accepted may come first; then the consumer's death
            await socket.receive_output(timeout=5)

    assert metrics.SOCKETS_CONNECTED._value.get() == before
    assert await members(groups.room(room)) == set()
    assert await members(groups.user(ann.user.pk)) == set()
    assert redis_client.zcard(redis_store.user_sockets(ann.user.pk)) == 0


# --- Against a real server process ----------------------------------------------------------


@pytest.fixture
def web(tmp_path):
    process, port = start_web(child_env(), tmp_path / "web.log")
    yield f"ws://127.0.0.1:{port}"
    process.stop()


async def frames_of(socket, until, within: float = 10) -> list[dict]:
    got: list[dict] = []
    async with asyncio.timeout(within):
        while not until(got):
            got.append(json.loads(await socket.recv()))
    return got


@pytest.mark.e2e
async def test_a_real_server_answers_nested_brackets_and_a_lone_surrogate(web, ann):
    async with connect(
        f"{web}/ws/rooms/general/",
        origin="http://localhost",
        additional_headers={"Cookie": ann.cookie},
        max_size=None,
    ) as socket:
        await socket.send("[" * 30_000 + "]" * 30_000)
        got = await frames_of(socket, lambda f: any(x["type"] == "error" for x in f))
        assert [x["code"] for x in got if x["type"] == "error"] == [protocol.INVALID_JSON]

        surrogate = protocol_frame("\ud83d")
        await socket.send(json.dumps(surrogate))  # "\ud83d" escaped, as JSON.stringify sends
        got = await frames_of(socket, lambda f: any(x["type"] == "error" for x in f))
        [error] = [x for x in got if x["type"] == "error"]
        assert (error["code"], error["id"]) == (protocol.INVALID_FRAME, surrogate["id"])

        normal = protocol_frame("the socket still works")
        await socket.send(json.dumps(normal))
        got = await frames_of(
            socket, lambda f: {"message", "message.accepted"} <= {x["type"] for x in f}
        )
        assert any(x["type"] == "message" and x["id"] == normal["id"] for x in got)


@pytest.mark.e2e
async def test_a_text_frame_that_is_not_utf8_is_closed_by_the_server_and_others_go_on(web, ann):
    """Invalid UTF-8 never reaches the consumer: the ASGI server ends that socket (uvicorn
    closes it with 1007, as RFC 6455 says; daphne drops the connection, which a client sees
    as 1006), and the process goes on serving the next socket."""
    options = {"origin": "http://localhost", "additional_headers": {"Cookie": ann.cookie}}
    async with connect(f"{web}/ws/rooms/general/", **options) as socket:
        await socket.send(b'{"type": "typing", "x": "\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await socket.recv()
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1007

    async with connect(f"{web}/ws/rooms/general/", **options) as socket:
        normal = protocol_frame("another socket works")
        await socket.send(json.dumps(normal))
        got = await frames_of(
            socket, lambda f: {"message", "message.accepted"} <= {x["type"] for x in f}
        )
        assert any(x["type"] == "message" and x["id"] == normal["id"] for x in got)
