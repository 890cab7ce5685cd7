"""The hand-off never hangs: a broker that takes connections and never answers costs the
senders an ``unavailable`` within seconds, not a publishing thread blocked for minutes.

Failure injection: ``SilentBroker`` is a TCP server of the test's own that accepts every
connection and never sends a byte, as a broker looks to its clients after a failover, or
behind a NAT or firewall that dropped the connection's state. A real web process publishes
to it; only the broker's socket timeouts (config/settings.py) end the wait.
"""

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid

import pytest
from websockets.asyncio.client import connect

from chat import protocol
from chat.handoff import get_handoff
from support.processes import child_env, start_web
from tests.communicator import connected, frames_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("persist_queue")]

SOCKET_TIMEOUT = 1.0  # the broker's connect and socket timeouts, for the web process
# Three attempts (the publish retry policy) of at most a connect and a read timeout each,
# the retry intervals, and room for a loaded machine.
BOUND = 3 * 2 * SOCKET_TIMEOUT + 1 + 5


class SilentBroker:
    """Accepts TCP connections and never answers (failure injection, see above)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self.accept, name="silent-broker", daemon=True)
        self.thread.start()

    def accept(self):
        with contextlib.suppress(OSError):  # the server socket closed: stop
            while True:
                connection, _ = self.server.accept()
                self.connections.append(connection)  # kept open, never read, never answered

    def close(self):
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_broker():
    broker = SilentBroker()
    yield broker
    broker.close()


@pytest.fixture
def web(silent_broker, tmp_path):
    env = child_env(
        CELERY_BROKER_URL=f"redis://127.0.0.1:{silent_broker.port}/0",
        CELERY_BROKER_CONNECT_TIMEOUT=str(SOCKET_TIMEOUT),
        CELERY_BROKER_SOCKET_TIMEOUT=str(SOCKET_TIMEOUT),
        # Far away, so that what answers is the broker's socket timeout, not this backstop.
        CHAT_HANDOFF_TIMEOUT="300",
    )
    process, port = start_web(env, tmp_path / "web.log")
    yield f"ws://127.0.0.1:{port}"
    process.stop()


@pytest.mark.e2e
async def test_a_half_open_broker_answers_unavailable_within_seconds_and_resends_too(
    web, ann, silent_broker
):
    async with connect(
        f"{web}/ws/rooms/general/",
        origin="http://localhost",
        additional_headers={"Cookie": ann.cookie},
    ) as ws:
        frame = {"type": "message.send", "id": str(uuid.uuid4()), "body": "into the void"}
        started = time.monotonic()
        await ws.send(json.dumps(frame))
        await ws.send(json.dumps(frame))  # resent while its hand-off is in flight
        answers: list[dict] = []
        async with asyncio.timeout(BOUND):
            while len(answers) < 2:
                got = json.loads(await ws.recv())
                if got["type"] in ("error", "message.accepted"):
                    answers.append(got)
        elapsed = time.monotonic() - started
    assert [(a["type"], a.get("code"), a["id"]) for a in answers] == [
        ("error", protocol.UNAVAILABLE, frame["id"])
    ] * 2
    assert silent_broker.connections, "the web process never reached the silent broker"
    print(f"\nunavailable after {elapsed:.1f}s (socket timeouts {SOCKET_TIMEOUT}s)")


stuck = threading.Event()


def publish_that_never_returns(records: list[dict]) -> None:
    """A hand-off publisher stuck for as long as the test says (``stuck``)."""
    stuck.wait(60)


@pytest.mark.database_forbidden
async def test_a_publish_stuck_past_the_hand_off_timeout_answers_unavailable(ann, settings):
    """Whatever holds a publish up, its senders hear ``unavailable`` at the deadline."""
    settings.CHAT_HANDOFF_PUBLISHER = f"{__name__}.publish_that_never_returns"
    settings.CHAT_HANDOFF_TIMEOUT = 0.5
    stuck.clear()
    sock = await connected(ann)
    try:
        frame = {"type": "message.send", "id": str(uuid.uuid4()), "body": "stuck"}
        await sock.send_json_to(frame)
        got = await frames_until(sock, lambda f: any(x["type"] == "error" for x in f), within=5)
        [error] = [x for x in got if x["type"] == "error"]
        assert (error["code"], error["id"]) == (protocol.UNAVAILABLE, frame["id"])
    finally:
        stuck.set()
        await sock.disconnect()


published: list[list[dict]] = []


def publish_to_list(records: list[dict]) -> None:
    """A hand-off publisher that keeps what it was given (``published``)."""
    published.append(records)


def test_a_batch_left_by_a_closed_event_loop_does_not_hold_the_next_loops(settings):
    """A loop that closes inside the batch window (the end of a test, of a server) leaves
    a timer that will never fire: the next loop's records must still be published. Each
    loop has a hand-off of its own (``get_handoff``); were it shared, the dead timer would
    hold the next loop's batch, and the second ``submit`` would time out."""
    settings.CHAT_HANDOFF_PUBLISHER = f"{__name__}.publish_to_list"
    settings.CHAT_HANDOFF_MAX_BATCH, settings.CHAT_HANDOFF_MAX_DELAY = 10, 0.05
    published.clear()

    async def left_in_the_window():
        asyncio.get_running_loop().create_task(get_handoff().submit({"id": "abandoned"}))
        await asyncio.sleep(0)  # one turn: the record is pending, its timer set

    async def published_in_time():
        async with asyncio.timeout(5):
            await get_handoff().submit({"id": "next"})

    asyncio.run(left_in_the_window())
    asyncio.run(published_in_time())
    assert published == [[{"id": "next"}]]
