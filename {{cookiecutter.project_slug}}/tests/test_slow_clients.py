"""Clients that stop reading: they cost the ASGI process bounded memory, and the rest of
the room does not wait for them.

A client whose TCP window is full answers no keepalive ping; the server drops it after
``WS_PING_INTERVAL + WS_PING_TIMEOUT`` seconds (Procfile), which bounds what it can buffer
for that client to the room's traffic over that time. Meanwhile every send to it is
buffered, never awaited by the room: the others' latency stays that of an idle room.
"""

import asyncio
import json
import socket
import statistics
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect

from chat import socket_slots
from tests.processes import database_url, sampling, start_web, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PING_INTERVAL, PING_TIMEOUT = 1, 2
DEAD_CLIENTS = 3
RATE = 80  # messages per second: well within what one ASGI process fans out on 2 cores
# Near CHAT_MAX_BODY, and 6 bytes a character as JSON escapes it: about 23 KB per frame.
BODY = "\u4e00" * 3900


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def tiny_receive_buffer_socket(port: int) -> socket.socket:
    """A TCP socket whose kernel receive buffer holds little, so that what a client does
    not read piles up on the server's side, where it is measured."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.fixture
def web(persist_queue, tmp_path):
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CHAT_RATE_LIMIT": "100000",
        "CHAT_RATE_BURST": "100000",
        "WS_PING_INTERVAL": str(PING_INTERVAL),
        "WS_PING_TIMEOUT": str(PING_TIMEOUT),
    }
    process, port = start_web(env, tmp_path / "web.log")
    yield process, port
    process.stop()


async def talk(url: str, speaker, listener, count: int) -> list[float]:
    """The speaker sends ``count`` messages at RATE; the listener's latency for each."""
    async with open_socket(url, listener) as ears, open_socket(url, speaker) as mouth:
        sent_at: dict[str, float] = {}
        latencies: list[float] = []

        async def listen():
            while len(latencies) < count:
                frame = json.loads(await ears.recv())
                if frame["type"] == "message":
                    latencies.append(time.monotonic() - sent_at[frame["id"]])

        async def drain_speaker():
            async for _ in mouth:
                pass

        listening = asyncio.create_task(listen())
        draining = asyncio.create_task(drain_speaker())
        for _ in range(count):
            message_id = str(uuid.uuid4())
            sent_at[message_id] = time.monotonic()
            frame = {"type": "message.send", "id": message_id, "body": BODY}
            await mouth.send(json.dumps(frame))
            await asyncio.sleep(1 / RATE)  # pacing, not synchronisation
        async with asyncio.timeout(60):
            await listening
        draining.cancel()
    return latencies


def open_socket(url: str, user, **options):
    return connect(
        url, origin="http://localhost", additional_headers={"Cookie": user.cookie}, **options
    )


def p95(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=20)[-1]


def test_clients_that_stop_reading_neither_grow_memory_nor_slow_the_room(
    web, make_user, redis_client
):
    process, port = web
    url = f"ws://127.0.0.1:{port}/ws/rooms/slow-{uuid.uuid4().hex[:8]}/"
    speaker, listener = make_user(), make_user()
    dead_users = [make_user() for _ in range(DEAD_CLIENTS)]
    count = 15 * RATE
    peak = {"rss": 0}

    def sample():
        peak["rss"] = max(peak["rss"], rss_bytes(process.pid))

    def open_sockets(user_ids) -> int:
        return sum(redis_client.zcard(socket_slots.key(pk)) for pk in user_ids)

    async def with_dead_clients():
        # max_queue=1: the library stops reading from the socket once one frame waits.
        dead = [
            await open_socket(url, user, sock=tiny_receive_buffer_socket(port), max_queue=1)
            for user in dead_users
        ]
        latencies = await talk(url, speaker, listener, count)
        return dead, latencies

    control = asyncio.run(talk(url, speaker, listener, count // 2))  # the room, all readers
    baseline = rss_bytes(process.pid)
    with sampling(sample, interval=0.05):
        _, latencies = asyncio.run(with_dead_clients())
    # The server dropped every client that stopped reading (their slots are free again).
    dead_ids = [user.user.pk for user in dead_users]
    wait_for(lambda: open_sockets(dead_ids) == 0, 30, "the server to drop the dead clients")

    frame_bytes = len(json.dumps(BODY))
    fanned_to_dead = DEAD_CLIENTS * count * frame_bytes
    # What the room sends a dead client before the server gives up on it (plus 2 s slack):
    # the most it may hold for it. Without the keepalive timeout it would hold it all.
    allowance = DEAD_CLIENTS * RATE * (PING_INTERVAL + PING_TIMEOUT + 2) * frame_bytes
    assert fanned_to_dead > 2 * allowance, "the test must be able to tell the difference"
    growth = peak["rss"] - baseline
    print(
        f"\n{count} messages at {RATE}/s, {fanned_to_dead / 2**20:.0f} MiB of it for "
        f"{DEAD_CLIENTS} clients that stopped reading: ASGI RSS {baseline / 2**20:.0f} -> "
        f"{peak['rss'] / 2**20:.0f} MiB; listener p95 {p95(latencies) * 1000:.0f} ms "
        f"(all readers: {p95(control) * 1000:.0f} ms)"
    )
    assert growth < allowance, "the server kept what it could not send to dead clients"
    assert p95(latencies) < max(1.0, 3 * p95(control)), "the room waited for its slowest members"
