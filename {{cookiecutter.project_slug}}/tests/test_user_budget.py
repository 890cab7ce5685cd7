"""Per-user budgets span a user's sockets and server processes; frames are sent as UTF-8,
not ASCII escapes. Against real server processes."""

import asyncio
import json
import time
import uuid

import pytest
from websockets.asyncio.client import connect

from support.processes import child_env, start_web

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MESSAGES_PER_SECOND = 5


@pytest.fixture
def two_webs(persist_queue, tmp_path):
    env = child_env(CHAT_USER_MESSAGES_PER_SECOND=str(MESSAGES_PER_SECOND))
    webs = [start_web(env, tmp_path / f"web{i}.log") for i in range(2)]
    yield [port for _, port in webs]
    for process, _ in webs:
        process.stop()


def open_socket(port: int, room: str, user):
    return connect(
        f"ws://127.0.0.1:{port}/ws/rooms/{room}/",
        origin="http://localhost",
        additional_headers={"Cookie": user.cookie},
    )


async def answers(socket, ids: set[str]) -> dict[str, str]:
    """For each id, what the server answered first: "message" or an error code."""
    seen: dict[str, str] = {}
    async with asyncio.timeout(30):
        while not ids <= seen.keys():
            frame = json.loads(await socket.recv())
            answered = frame["type"] in ("message", "error")
            if answered and frame.get("id") in ids and frame["id"] not in seen:
                seen[frame["id"]] = frame.get("code", frame["type"])
    return seen


def test_a_users_message_budget_spans_their_sockets_on_two_processes(two_webs, make_user):
    """Each socket alone stays far under the per-connection limit; together they are over
    the user's budget, and the excess is refused with rate_limited."""
    room = f"budget-{uuid.uuid4().hex[:8]}"
    user = make_user()
    per_socket = 3 * MESSAGES_PER_SECOND

    async def scenario():
        async with (
            open_socket(two_webs[0], room, user) as one,
            open_socket(two_webs[1], room, user) as two,
        ):
            ids = {one: set(), two: set()}
            started = time.monotonic()
            for _ in range(per_socket):
                for socket in (one, two):
                    message_id = str(uuid.uuid4())
                    ids[socket].add(message_id)
                    frame = {"type": "message.send", "id": message_id, "body": "hi"}
                    await socket.send(json.dumps(frame))
            results = [*(await answers(one, ids[one])).values()]
            results += [*(await answers(two, ids[two])).values()]
            return results, time.monotonic() - started

    results, elapsed = asyncio.run(scenario())
    fanned_out = results.count("message")
    refused = results.count("rate_limited")
    assert fanned_out + refused == 2 * per_socket
    # One-second windows: at most a budget for each window the sends could touch.
    assert fanned_out <= MESSAGES_PER_SECOND * (int(elapsed) + 2)
    assert refused > 0 and fanned_out >= 1


def test_non_ascii_bodies_are_not_escaped_on_the_wire(two_webs, make_user):
    room = f"utf8-{uuid.uuid4().hex[:8]}"
    user = make_user()
    body = "\U0001f600 caf\u00e9 \u4e00\u4e8c"

    async def scenario():
        async with (
            open_socket(two_webs[0], room, user) as sender,
            open_socket(two_webs[1], room, user) as reader,
        ):
            message_id = str(uuid.uuid4())
            await sender.send(json.dumps({"type": "message.send", "id": message_id, "body": body}))
            async with asyncio.timeout(30):
                while True:
                    text = await reader.recv()
                    if message_id in text:
                        return text

    text = asyncio.run(scenario())  # a text frame: exactly the UTF-8 the server sent
    assert body in text and "\\u" not in text
    assert json.loads(text)["body"] == body
