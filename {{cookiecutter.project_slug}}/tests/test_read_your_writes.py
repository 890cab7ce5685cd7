"""Read-your-writes with real processes: the ASGI server runs, the worker does not (yet)."""

import asyncio
import json
import urllib.request
import uuid

import pytest

from support.processes import child_env, start_web, start_worker, wait_for
from tests.wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(persist_queue, tmp_path):
    """A web process, and a way to start the worker when the test says so."""
    # 20 messages of 4,000 characters at once are over a user's byte budget per second:
    # not what these tests are about.
    env = child_env(CHAT_USER_BYTES_PER_SECOND=str(2**20))
    web, port = start_web(env, tmp_path / "web.log")
    started = []

    def start_the_worker():
        started.append(start_worker(env, tmp_path / "worker.log"))

    yield f"ws://127.0.0.1:{port}", start_the_worker
    for process in [web, *started]:
        process.stop()


def history(base: str, logged_in, room: str, receipts: list[str] | None = None):
    headers = {"Cookie": logged_in.cookie}
    if receipts:
        headers["X-Write-Receipts"] = ",".join(receipts)
    url = f"{base.replace('ws://', 'http://')}/api/rooms/{room}/messages"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read()), r.headers["X-Consistency"]


async def send_and_get_receipts(base, logged_in, room, bodies) -> dict[str, str]:
    async with Client(base, logged_in, room) as client:
        ids = [await client.send(body) for body in bodies]
        await client.wait_until(lambda frames: set(ids) <= set(client.ids("message.accepted")))
        return {f["id"]: f["receipt"] for f in client.frames if f["type"] == "message.accepted"}


def test_a_reload_shows_my_message_while_the_worker_is_stopped_then_once_stored(servers, make_user):
    base, start_the_worker = servers
    ann, bob = make_user(), make_user()
    room = f"ryw-{uuid.uuid4().hex[:8]}"
    [(message_id, receipt)] = asyncio.run(send_and_get_receipts(base, ann, room, ["mine"])).items()

    body, consistency = history(base, ann, room, [receipt])
    assert consistency == "pending"
    assert [(m["id"], m["body"], m["persisted"]) for m in body["messages"]] == [
        (message_id, "mine", False)
    ]
    assert history(base, bob, room, [receipt])[0]["messages"] == []  # not Bob's receipt

    start_the_worker()
    wait_for(lambda: history(base, ann, room, [receipt])[1] == "complete", 30, "storage")
    for receipts in ([receipt], None):
        body, consistency = history(base, ann, room, receipts)
        assert consistency == "complete"
        assert [(m["id"], m["persisted"]) for m in body["messages"]] == [(message_id, True)]


def test_twenty_receipts_of_4000_character_messages_fit_in_one_request(servers, make_user):
    base, _ = servers
    ann = make_user()
    room = f"big-{uuid.uuid4().hex[:8]}"
    bodies = [uuid.uuid4().hex * 125 for _ in range(20)]  # 4000 characters, incompressible-ish
    sent = asyncio.run(send_and_get_receipts(base, ann, room, bodies))

    body, consistency = history(base, ann, room, list(sent.values()))
    assert consistency == "pending"
    assert sorted(m["id"] for m in body["messages"]) == sorted(sent)
    assert sorted(m["body"] for m in body["messages"]) == sorted(bodies)
