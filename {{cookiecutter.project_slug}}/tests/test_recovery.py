"""Exact recovery by offsets, presence and typing, with real processes: two ASGI servers
started from the Procfile (one of them with its clock 30 seconds ahead), the Celery worker
stopped or running, real WebSocket clients, real Redis and PostgreSQL.
"""

import asyncio
import json
import os
import signal
import time
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chat.models import Message
from config.roles import Role
from support.pgstat import connections_of
from support.processes import child_env, start_web, start_worker, wait_for
from tests import broker
from tests.wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Debian's libfaketime (apt-get install faketime): the process sees its wall clock moved,
# its monotonic clock (timeouts, keepalives) left alone.
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEW = 30  # seconds


@pytest.fixture
def stack(persist_queue, tmp_path):
    """Start web processes (each on its own port) and the worker when the test says so."""
    started = []

    def web(**extra):
        name = f"web-{len(started)}"
        process, port = start_web(child_env(**extra), tmp_path / f"{name}.log")
        started.append(process)
        return process, f"ws://127.0.0.1:{port}"

    def worker():
        started.append(start_worker(child_env(), tmp_path / "worker.log"))

    yield type("Stack", (), {"web": staticmethod(web), "worker": staticmethod(worker)})
    for process in started:
        process.stop()


def a_room() -> str:
    return f"recovery-{uuid.uuid4().hex[:8]}"


def after_offset(base: str, logged_in, room: str, offset: int) -> list[dict]:
    """Every message after ``offset``, following ``next`` to the end."""
    messages: list[dict] = []
    while True:
        url = f"{base.replace('ws://', 'http://')}/api/rooms/{room}/messages"
        query = f"?after_offset={offset}&limit=7"  # small pages: the walk is tested too
        request = urllib.request.Request(url + query, headers={"Cookie": logged_in.cookie})
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.loads(response.read())
        messages += page["messages"]
        if page["next"] is None:
            return messages
        offset = int(page["next"])


def message_frames(client: Client) -> list[dict]:
    return [f for f in client.frames if f["type"] == "message"]


async def talk(base: str, speaker, room: str, bodies: list[str]) -> list[str]:
    """Send each body and wait until the room has fanned it out and the broker has it."""
    async with Client(base, speaker, room) as client:
        ids = [await client.send(body) for body in bodies]
        await client.wait_until(
            lambda frames: (
                set(ids) <= set(client.ids("message.accepted"))
                and set(ids) <= set(client.ids("message"))
            )
        )
    return ids


def missed_while_away(servers: list[str], reader, writer, room: str, worker_running: bool):
    """The reader sees some messages, drops off, others are sent (through both servers
    in turn), and the reader asks for what came after the last offset it saw."""

    async def scenario():
        async with Client(servers[0], reader, room) as client:
            seen = await talk(servers[1], writer, room, [f"seen {n}" for n in range(3)])
            await client.wait_until(lambda frames: len(message_frames(client)) >= len(seen))
            last = max(f["offset"] for f in message_frames(client))
        missed = []
        for n in range(12):
            missed += await talk(servers[n % len(servers)], writer, room, [f"missed {n}"])
        return last, missed

    last, missed = asyncio.run(scenario())
    caught_up = after_offset(servers[0], reader, room, last)
    assert [m["id"] for m in caught_up] == missed, "missed one, got one twice, or out of order"
    offsets = [m["offset"] for m in caught_up]
    assert offsets == sorted(set(offsets)) and offsets[0] > last
    if not worker_running:
        assert not any(m["persisted"] for m in caught_up)
    return caught_up


def test_a_client_that_reconnects_with_its_offset_gets_exactly_what_it_missed(stack, make_user):
    """With the worker stopped (everything comes from the recent window), then running."""
    reader, writer = make_user(), make_user()
    _, first = stack.web()
    _, second = stack.web()
    room = a_room()

    missed_while_away([first, second], reader, writer, room, worker_running=False)
    assert Message.objects.filter(room=room).count() == 0

    stack.worker()
    caught_up = missed_while_away([first, second], reader, writer, room, worker_running=True)
    last = caught_up[-1]["offset"]
    wait_for(
        lambda: Message.objects.filter(room=room, offset__lte=last).count() == 30,
        60,
        "the worker to store the room",
    )
    stored = after_offset(first, reader, room, 0)
    assert len(stored) == 30 and all(m["persisted"] for m in stored)
    assert [m["offset"] for m in stored] == sorted({m["offset"] for m in stored})


@pytest.mark.skipif(
    not LIBFAKETIME.exists() and os.environ.get("CI") != "true",
    reason="needs Debian's faketime (apt-get install faketime)",
)
def test_servers_whose_clocks_disagree_by_30_seconds_still_recover_exactly(stack, make_user):
    """sent_at comes from each server's clock: catching up by time (the newest sent_at seen,
    less an overlap) misses what the slow clock stamped. Offsets come from Redis."""
    assert LIBFAKETIME.exists(), "apt-get install faketime"
    reader, writer = make_user(), make_user()
    _, honest = stack.web()
    _, ahead = stack.web(LD_PRELOAD=str(LIBFAKETIME), FAKETIME=f"+{SKEW}s", DONT_FAKE_MONOTONIC="1")
    room = a_room()
    caught_up = missed_while_away([ahead, honest], reader, writer, room, worker_running=False)

    stamps = [datetime.fromisoformat(m["sent_at"]) for m in caught_up]
    assert max(stamps) - min(stamps) > timedelta(seconds=SKEW - 5), (
        "the clocks did not disagree: the test proves nothing"
    )
    assert stamps != sorted(stamps), "sent_at order should disagree with the offsets"


def test_presence_agrees_across_processes_and_a_killed_process_users_leave(stack, make_user):
    ann, bob = make_user(), make_user()
    _, first = stack.web()
    doomed, second = stack.web()
    room = a_room()

    async def scenario():
        async with Client(first, ann, room) as ann_client:
            await ann_client.wait_until(lambda f: any(x["type"] == "presence" for x in f))
            bob_client = Client(second, bob, room)
            await bob_client.__aenter__()
            await bob_client.wait_until(lambda f: any(x["type"] == "presence" for x in f))
            await ann_client.wait_until(
                lambda f: {"type": "presence.join", "user": bob.user.username} in f
            )
            bob_sees = next(x for x in bob_client.frames if x["type"] == "presence")["users"]
            assert bob_sees == sorted([ann.user.username, bob.user.username])

            doomed.stop(signal.SIGKILL)  # no goodbye: its entries just stop being renewed
            killed = time.monotonic()
            await ann_client.wait_until(
                lambda f: {"type": "presence.leave", "user": bob.user.username} in f, within=60
            )
            bob_client.reader.cancel()
            return time.monotonic() - killed

    gone_after = asyncio.run(scenario())
    print(f"\nthe killed process's user left after {gone_after:.1f} s")
    assert gone_after < 60


def test_typing_reaches_the_room_and_never_postgresql_or_the_queue(
    stack, make_user, redis_client, persist_queue
):
    ann, bob = make_user(), make_user()
    _, base = stack.web()
    room = a_room()

    async def scenario():
        async with Client(base, ann, room) as typist, Client(base, bob, room) as watcher:
            await watcher.wait_until(lambda f: any(x["type"] == "presence" for x in f))
            for _ in range(20):
                await typist.socket.send(json.dumps({"type": "typing"}))
            await watcher.wait_until(lambda f: {"type": "typing", "user": ann.user.username} in f)

    asyncio.run(scenario())
    assert broker.length(persist_queue) == 0
    assert Message.objects.filter(room=room).count() == 0
    assert connections_of(Role.WEB) == 0
