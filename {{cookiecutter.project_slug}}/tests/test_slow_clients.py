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
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from chat import protocol, redis_store
from support.processes import NO_RATE_LIMITS, child_env, rss_bytes, sampling, start_web

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PING_INTERVAL, PING_TIMEOUT = 1, 2
DEAD_CLIENTS = 3
RATE = 80  # messages per second: well within what one ASGI process fans out on 2 cores
# Near CHAT_MAX_BODY, and 6 bytes a character as JSON escapes it: about 23 KB per frame.
BODY = "\u4e00" * 3900


def tiny_receive_buffer_socket(port: int) -> socket.socket:
    """A TCP socket whose kernel receive buffer holds little, so that what a client does
    not read piles up on the server's side, where it is measured. Its segments are
    Ethernet-sized: for loopback's 64 KB ones Linux would size the server's send buffer
    at megabytes, which no client on a real network gets."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.fixture
def web(persist_queue, tmp_path):
    env = child_env(
        **NO_RATE_LIMITS,
        WS_PING_INTERVAL=str(PING_INTERVAL),
        WS_PING_TIMEOUT=str(PING_TIMEOUT),
    )
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
        return sum(redis_client.zcard(redis_store.user_sockets(pk)) for pk in user_ids)

    dead_ids = [user.user.pk for user in dead_users]

    async def with_dead_clients():
        # max_queue=1: the library stops reading from the socket once one frame waits.
        dead = [
            await open_socket(url, user, sock=tiny_receive_buffer_socket(port), max_queue=1)
            for user in dead_users
        ]
        try:
            latencies = await talk(url, speaker, listener, count)
            # The server drops every client that stopped reading (their slots free up).
            async with asyncio.timeout(30):
                while open_sockets(dead_ids):  # noqa: ASYNC110 (a count in Redis: no event)
                    await asyncio.sleep(0.05)
        finally:
            for client in dead:  # this side of the dropped connections
                client.transport.abort()
        return latencies

    control = asyncio.run(talk(url, speaker, listener, count // 2))  # the room, all readers
    baseline = rss_bytes(process.pid)
    with sampling(sample, interval=0.05):
        latencies = asyncio.run(with_dead_clients())

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


# --- Slow readers: 4408, bounded memory, and the fast readers unaffected ------------------

FLOODERS, SLOW_READERS, FAST_READERS = 20, 20, 5
FLOOD_RATE = 1  # message per second per flooding socket: 20 a second into the room
FLOOD_SECONDS = 16
SLOW_READ_RATE = 8 * 1024  # bytes per second a slow reader takes off its socket
# 1000 emoji: 4 KB on the wire (it would be 12 KB escaped), 4.6 KB of memory as a str.
FLOOD_BODY = "\U0001f600" * 1000
BACKLOG_BYTES = 128 * 1024  # CHAT_SEND_BACKLOG_BYTES here (a quarter of the default)
SERVER_BUFFERS = 128 * 1024  # the ASGI server's 64 KiB write buffer, and the kernel's


@pytest.fixture
def flood_web(persist_queue, tmp_path):
    """The defaults, but for what the attacker must get past to make a flood at all."""
    env = child_env(
        **NO_RATE_LIMITS,
        CHAT_MAX_SOCKETS_PER_USER="100",
        CHAT_SEND_BACKLOG_BYTES=str(BACKLOG_BYTES),
    )
    process, port = start_web(env, tmp_path / "web.log")
    yield process, port
    process.stop()


async def flood(url: str, attacker, seconds: float, readers: list) -> list[float]:
    """FLOODERS sockets of ``attacker`` post FLOOD_BODY at FLOOD_RATE each for ``seconds``
    (and read all they get, as a browser tab would); ``readers`` (open sockets) read fast.
    The readers' latencies, from send to receipt."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    expected = FLOODERS * int(seconds * FLOOD_RATE)

    async def read(socket):
        seen = 0
        while seen < expected:
            frame = json.loads(await socket.recv())
            if frame["type"] == "message":
                latencies.append(time.monotonic() - sent_at[frame["id"]])
                seen += 1

    async def post(socket):
        for _ in range(int(seconds * FLOOD_RATE)):
            message_id = str(uuid.uuid4())
            sent_at[message_id] = time.monotonic()
            await socket.send(
                json.dumps({"type": "message.send", "id": message_id, "body": FLOOD_BODY})
            )
            await asyncio.sleep(1 / FLOOD_RATE)  # pacing, not synchronisation

    async def drain(socket):
        async for _ in socket:
            pass

    flooders = [await open_socket(url, attacker) for _ in range(FLOODERS)]
    draining = [asyncio.create_task(drain(socket)) for socket in flooders]
    try:
        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(
                *(post(socket) for socket in flooders), *(read(socket) for socket in readers)
            )
    finally:
        for task in draining:
            task.cancel()
        for socket in flooders:
            await socket.close()
    return latencies


def read_slowly(port: int, path: str, cookie: str) -> int | None:
    """A client on a slow link: it takes SLOW_READ_RATE bytes a second off its socket (and
    answers pings) until the server closes; the close code the server sent.

    Sans-I/O websockets over a blocking socket, so that nothing reads ahead of the pace:
    what it has not taken stays on the server's side."""
    client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
    request = client.connect()
    request.headers["Origin"] = "http://localhost"
    request.headers["Cookie"] = cookie
    client.send_request(request)
    try:
        with tiny_receive_buffer_socket(port) as sock:
            sock.settimeout(30)
            sock.sendall(b"".join(client.data_to_send()))
            while client.close_rcvd is None:
                data = sock.recv(1024)
                if not data:
                    break
                client.receive_data(data)
                client.events_received()
                if pending := client.data_to_send():
                    sock.sendall(b"".join(pending))  # pongs
                time.sleep(len(data) / SLOW_READ_RATE)  # pacing: a slow link
    except ConnectionResetError:
        return None  # dropped without a close frame
    return client.close_rcvd.code if client.close_rcvd else None


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[-1]


def test_slow_readers_are_closed_with_4408_and_neither_grow_memory_nor_slow_the_room(
    flood_web, make_user
):
    """One account floods a room from 20 sockets while its 20 others read at 16 KB/s (the
    issue's attack); 5 other users read at full speed."""
    process, port = flood_web
    url = f"ws://127.0.0.1:{port}/ws/rooms/flood-{uuid.uuid4().hex[:8]}/"
    attacker = make_user()
    readers = [make_user() for _ in range(FAST_READERS)]
    peak = {"rss": 0}

    def sample():
        peak["rss"] = max(peak["rss"], rss_bytes(process.pid))

    async def baseline_run():
        fast = [await open_socket(url, user) for user in readers]
        try:
            return await flood(url, attacker, 6, fast)
        finally:
            for socket in fast:
                await socket.close()

    async def attack():
        path = urlparse(url).path
        loop = asyncio.get_running_loop()
        slow_reading = [
            loop.run_in_executor(threads, read_slowly, port, path, attacker.cookie)
            for _ in range(SLOW_READERS)
        ]
        fast = [await open_socket(url, user) for user in readers]
        try:
            latencies = await flood(url, attacker, FLOOD_SECONDS, fast)
            async with asyncio.timeout(60):
                codes = await asyncio.gather(*slow_reading)
        finally:
            for socket in fast:
                socket.transport.abort()
        return latencies, codes

    threads = ThreadPoolExecutor(SLOW_READERS)  # one each: none waits for another
    control = asyncio.run(baseline_run())
    baseline = rss_bytes(process.pid)
    with sampling(sample, interval=0.05):
        latencies, codes = asyncio.run(attack())
    threads.shutdown()

    frame_bytes = len(json.dumps(FLOOD_BODY, ensure_ascii=False).encode()) + 150
    fanned_to_slow = SLOW_READERS * FLOODERS * FLOOD_SECONDS * FLOOD_RATE * frame_bytes
    # Twice the bounds: the connections themselves, and the allocator's slack, cost too.
    allowance = int(SLOW_READERS * (BACKLOG_BYTES + SERVER_BUFFERS) * 2)
    assert fanned_to_slow > 2 * allowance, "the test must be able to tell the difference"
    growth = peak["rss"] - baseline
    print(
        f"\n{SLOW_READERS} slow readers, {fanned_to_slow / 2**20:.0f} MiB fanned out to them: "
        f"ASGI RSS {baseline / 2**20:.0f} -> {peak['rss'] / 2**20:.0f} MiB "
        f"(+{growth / 2**20:.1f} MiB, allowance {allowance / 2**20:.1f} MiB); fast readers' "
        f"p99 {p99(latencies) * 1000:.0f} ms (no slow readers: {p99(control) * 1000:.0f} ms); "
        f"slow readers' close codes {sorted(set(codes), key=str)}"
    )
    assert codes == [protocol.CLOSE_TOO_SLOW] * SLOW_READERS
    assert growth < allowance, "the server kept what its slow readers could not take"
    # Ratios, not absolute times; the floor absorbs a shared machine's scheduling noise.
    assert p99(latencies) <= 2 * max(p99(control), 0.05), "the room waited for slow readers"
