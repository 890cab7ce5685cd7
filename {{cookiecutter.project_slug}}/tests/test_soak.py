"""The soak: a steady, moderate load for a long time, with sockets coming and going.

Opt-in (``make soak``: 15 minutes; ``make soak SOAK_SECONDS=60`` for a short one, as the
template's CI runs it). Users talk in a few rooms at a steady pace, each on a socket that
lives a few seconds, leaves, and comes back (resending, same id, whatever was not
accepted). Meanwhile the test samples the ASGI and worker processes' memory, PostgreSQL's
connections by role and Redis's memory and keys: everything the project keeps in Redis
(with the Redis broker, the broker's queue too) is on a redis-server of the soak's own, so
that those figures are the soak's alone. It asserts what must hold at any length:
nothing accepted lost or stored twice, no PostgreSQL connection in the ASGI process and the
worker within its budget, every Redis key with an expiry or a bound, no runaway memory. It
prints the figures (the RSS slopes, the connection counts, Redis memory per message) with a
chart; docs/operations.md quotes a 15-minute run.
"""

import asyncio
import contextlib
import csv
import itertools
import json
import os
import random
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chat import redis_store
from chat.models import Message
from config.roles import Role
from support.pgstat import connections_of
from support.processes import child_env, rss_bytes, sampling, start_web, start_worker
from tests.conftest import use_redis_of_its_own

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS") or 0)
USERS = int(os.environ.get("SOAK_USERS", "8"))
ROOMS = 4
RATE = float(os.environ.get("SOAK_RATE", "2"))  # messages per second per user
SOCKET_LIFETIME = (3.0, 15.0)  # seconds a socket stays, drawn uniformly
AWAY = (0.2, 2.0)  # seconds between a user's sockets
WARM_UP = 0.25  # the first quarter of the run: imports, pools and caches filling
# A leak of anything per socket or per message (a consumer, an outbox, a task result) costs
# well over this within the 900 sockets and 14,000 messages of the default run.
RSS_GROWTH_BOUND = 16 * 2**20

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not SOAK_SECONDS, reason="opt-in: make soak (SOAK_SECONDS)"),
]


class Chatter:
    """One user talking in one room at ``RATE`` messages a second, on a socket that lives
    ``SOCKET_LIFETIME`` seconds, then leaves for ``AWAY`` seconds and comes back. What got
    no ``message.accepted`` before the socket closed is resent on the next one, same id:
    what the contract asks of every client."""

    def __init__(self, url: str, logged_in, room: str, seed: int):
        self.url = f"{url}/ws/rooms/{room}/"
        self.cookie = logged_in.cookie
        self.rng = random.Random(seed)
        self.sent: list[str] = []
        self.accepted: set[str] = set()
        self.refused = 0  # "unavailable" or "rate_limited" answers, each resent later
        self.sockets = 0
        self.answered = asyncio.Event()

    @property
    def unaccepted(self) -> list[str]:
        return [i for i in self.sent if i not in self.accepted]

    async def run(self, until: float):
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            lifetime = min(self.rng.uniform(*SOCKET_LIFETIME), until - loop.time())
            with contextlib.suppress(OSError, ConnectionClosed, InvalidHandshake):
                await self.visit(lifetime, new_messages=True)
            await asyncio.sleep(self.rng.uniform(*AWAY))

    async def finish(self, within: float):
        """One last socket, until everything sent is accepted."""
        async with asyncio.timeout(within):
            while self.unaccepted:
                with contextlib.suppress(OSError, ConnectionClosed, InvalidHandshake):
                    await self.visit(5, new_messages=False)

    async def visit(self, lifetime: float, new_messages: bool):
        async with connect(
            self.url,
            origin="http://localhost",
            additional_headers={"Cookie": self.cookie},
            open_timeout=10,
        ) as socket:
            self.sockets += 1
            reader = asyncio.create_task(self.read(socket))
            try:
                for message_id in self.unaccepted:
                    await self.send(socket, message_id)
                async with asyncio.timeout(lifetime):
                    while new_messages:
                        message_id = str(uuid.uuid4())
                        self.sent.append(message_id)
                        await self.send(socket, message_id)
                        await asyncio.sleep(1 / RATE)
                    while self.unaccepted:
                        self.answered.clear()
                        await self.answered.wait()
            except TimeoutError:
                pass  # the visit is over; what is unanswered goes out again next time
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await reader  # an unexpected frame fails the test here

    async def send(self, socket, message_id: str):
        frame = {"type": "message.send", "id": message_id, "body": f"soak {message_id}"}
        await socket.send(json.dumps(frame))

    async def read(self, socket):
        async for raw in socket:
            frame = json.loads(raw)
            if frame["type"] == "message.accepted":
                self.accepted.add(frame["id"])
                self.answered.set()
            elif frame["type"] == "error":
                assert frame["code"] in ("unavailable", "rate_limited"), frame
                self.refused += 1


@dataclass
class Sample:
    seconds: float
    asgi_rss: int
    worker_rss: int
    worker_main_rss: int  # of which Celery's main process (the consumer, not the pool)
    pg_asgi: int
    pg_worker: int
    redis_memory: int
    redis_keys: int
    accepted: int


def process_tree_rss(pid: int) -> int:
    """RSS of a process and its children (the Celery worker's main process and its pool)."""
    total = rss_bytes(pid)
    with contextlib.suppress(FileNotFoundError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError, StopIteration):
                total += rss_bytes(int(child))
    return total


def slope_per_hour(samples: list[Sample], field: str) -> float:
    """Least-squares growth of ``field`` per hour over ``samples``."""
    times = [s.seconds for s in samples]
    values = [getattr(s, field) for s in samples]
    return statistics.linear_regression(times, values).slope * 3600


def keys_without_expiry(redis_client) -> set[str]:
    return {
        key.decode() for key in redis_client.scan_iter(count=1000) if redis_client.ttl(key) == -1
    }


def unbounded(keys: set[str]) -> set[str]:
    """Those of ``keys`` (without an expiry) that are not among the few the project and the
    Celery broker keep, each bounded by something other than time."""
    bounded = {
        redis_store.room_offsets(),  # one field per room
        redis_store.pending_index(),  # the messages accepted and not yet stored
        # The Celery broker's (the Redis transport), when REDIS_URL is the broker too: the
        # batches waiting for the worker, and those it holds.
        "persist",
        "unacked",
        "unacked_index",
    }
    return {
        k
        for k in keys
        if k not in bounded
        and not k.startswith("_kombu.binding")
        # The core channel layer's backup of the message its process is receiving: one key
        # per process, one message, gone at its next receive (channels_redis.core).
        and not k.endswith("$inflight")
    }


@pytest.fixture
def own_redis(settings, tmp_path):
    """The soak's Redis, and the processes' environment that puts everything there."""
    server = use_redis_of_its_own(settings, tmp_path / "redis")
    broker = settings.CELERY_BROKER_URL if settings.BROKER_IS_AMQP else server.url
    env = child_env(CHANNEL_LAYER_URLS=server.url, CELERY_BROKER_URL=broker)
    client = redis.Redis.from_url(server.url)
    yield client, env
    client.close()
    server.stop()


def test_soak(make_user, own_redis, tmp_path):
    redis_client, env = own_redis
    worker = start_worker(env, tmp_path / "worker.log")
    web, port = start_web(env, tmp_path / "web.log")
    rooms = [f"soak-{uuid.uuid4().hex[:8]}" for _ in range(ROOMS)]
    chatters = [
        Chatter(f"ws://127.0.0.1:{port}", make_user(), rooms[n % ROOMS], seed=n)
        for n in range(USERS)
    ]
    samples: list[Sample] = []
    started = time.monotonic()

    def sample():
        samples.append(
            Sample(
                seconds=time.monotonic() - started,
                asgi_rss=rss_bytes(web.pid),
                worker_rss=process_tree_rss(worker.pid),
                worker_main_rss=rss_bytes(worker.pid),
                pg_asgi=connections_of(Role.WEB),
                pg_worker=connections_of(Role.WORKER),
                redis_memory=redis_client.info("memory")["used_memory"],
                redis_keys=redis_client.dbsize(),
                accepted=sum(len(c.accepted) for c in chatters),
            )
        )
        progress(samples[-1])

    async def talk():
        until = asyncio.get_running_loop().time() + SOAK_SECONDS
        await asyncio.gather(*(c.run(until) for c in chatters))
        await asyncio.gather(*(c.finish(within=60) for c in chatters))

    try:
        with sampling(sample, interval=max(1.0, SOAK_SECONDS / 120)):
            asyncio.run(talk())
        sent = {i for c in chatters for i in c.sent}
        worker.wait_until(lambda: stored(sent) == len(sent), 120, "every message to be stored")
        sample()
        keys_left = unbounded(keys_without_expiry(redis_client))
    finally:
        web.stop()
        worker.stop()

    report = Report(samples, chatters, rooms)
    report.write(tmp_path)
    print(report.table(tmp_path))

    assert report.lost == 0 and report.duplicated == 0
    assert max(s.pg_asgi for s in samples) == 0
    assert max(s.pg_worker for s in samples) <= settings.CONNECTION_BUDGET.worker
    assert not keys_left, f"keys without an expiry or a bound: {sorted(keys_left)[:20]}"
    assert report.growth("asgi_rss") < RSS_GROWTH_BOUND, report.table(tmp_path)
    assert report.growth("worker_rss") < RSS_GROWTH_BOUND, report.table(tmp_path)


def stored(ids) -> int:
    return Message.objects.filter(id__in=list(ids)).count()


def progress(s: Sample):
    print(
        f"  soak {s.seconds:6.0f}s  accepted {s.accepted:7d}  "
        f"ASGI {s.asgi_rss / 2**20:6.1f} MiB  worker {s.worker_rss / 2**20:6.1f} MiB  "
        f"PG {s.pg_asgi}/{s.pg_worker}  Redis {s.redis_memory / 2**20:6.1f} MiB",
        flush=True,
    )


class Report:
    def __init__(self, samples: list[Sample], chatters: list[Chatter], rooms: list[str]):
        self.samples = samples
        self.steady = [s for s in samples if s.seconds >= WARM_UP * SOAK_SECONDS]
        self.chatters = chatters
        sent = [i for c in chatters for i in c.sent]
        rows = list(Message.objects.filter(room__in=rooms).values_list("id", flat=True))
        self.sent, self.stored = len(sent), len(rows)
        self.lost = len(set(sent) - {str(i) for i in rows})
        self.duplicated = len(rows) - len(set(rows))

    def growth(self, field: str) -> int:
        """From the end of the warm-up to the end of the run (the mean of a few samples at
        each end, not one sample's noise)."""
        ends = max(1, len(self.steady) // 10)
        first = statistics.mean(getattr(s, field) for s in self.steady[:ends])
        last = statistics.mean(getattr(s, field) for s in self.steady[-ends:])
        return round(last - first)

    def by_period(self, field: str, periods: int = 6) -> list[float]:
        """Growth of ``field`` in each sixth of the run, in MiB: whether memory levels off
        (warm-up ends later than the first quarter: caches and pools fill for a while) or
        keeps on growing at the end."""
        marks = [
            next(s for s in self.samples if s.seconds >= n * SOAK_SECONDS / periods)
            for n in range(periods)
        ] + [self.samples[-1]]
        values = [getattr(s, field) / 2**20 for s in marks]
        return [after - before for before, after in itertools.pairwise(values)]

    def table(self, directory: Path) -> str:
        mib = 2**20
        pg_worker = [s.pg_worker for s in self.samples]
        redis_growth = self.growth("redis_memory")
        accepted_steady = self.steady[-1].accepted - self.steady[0].accepted
        lines = [
            f"Soak: {SOAK_SECONDS:.0f} s, {USERS} users in {ROOMS} rooms, {RATE:g} messages/s "
            f"each, {sum(c.sockets for c in self.chatters)} sockets opened, "
            f"{sum(c.refused for c in self.chatters)} sends refused and resent",
            f"{'':28}{'after warm-up':>15}{'end':>12}{'growth':>12}{'slope/hour':>14}",
        ]
        for field, label in (
            ("asgi_rss", "ASGI RSS (MiB)"),
            ("worker_rss", "worker RSS (MiB)"),
            ("worker_main_rss", "  its main process"),
        ):
            first, last = getattr(self.steady[0], field), getattr(self.steady[-1], field)
            growth, slope = self.growth(field), slope_per_hour(self.steady, field)
            lines.append(
                f"{label:28}{first / mib:15.1f}{last / mib:12.1f}"
                f"{growth / mib:+12.1f}{slope / mib:+14.1f}"
            )
        for field, label in (
            ("asgi_rss", "ASGI"),
            ("worker_rss", "worker"),
            ("worker_main_rss", "worker main process"),
        ):
            periods = " ".join(f"{growth:+.1f}" for growth in self.by_period(field))
            lines.append(f"{label} RSS growth in each sixth of the run (MiB): {periods}")
        lines += [
            f"{'Redis used memory (MiB)':28}{self.steady[0].redis_memory / mib:15.1f}"
            f"{self.steady[-1].redis_memory / mib:12.1f}{redis_growth / mib:+12.1f}"
            f"   ({redis_growth / max(1, accepted_steady):.0f} bytes per message accepted)",
            f"{'Redis keys':28}{self.steady[0].redis_keys:15d}{self.steady[-1].redis_keys:12d}",
            f"PostgreSQL connections: ASGI {max(s.pg_asgi for s in self.samples)} at most; "
            f"worker {min(pg_worker)} to {max(pg_worker)} "
            f"(budget {settings.CONNECTION_BUDGET.worker})",
            f"Messages: {self.sent} sent and accepted, {self.stored} stored, "
            f"{self.lost} lost, {self.duplicated} duplicated",
            f"Samples and chart: {directory / 'soak.csv'}, {directory / 'soak.png'}",
        ]
        return "\n".join(lines)

    def write(self, directory: Path):
        with open(directory / "soak.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(asdict(self.samples[0])))
            writer.writeheader()
            writer.writerows(asdict(s) for s in self.samples)
        with contextlib.suppress(ImportError):  # matplotlib comes with the bench extra
            chart(self.samples, directory / "soak.png")


def chart(samples: list[Sample], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.seconds / 60 for s in samples]
    figure, (memory, connections) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for field, label in (
        ("asgi_rss", "ASGI RSS"),
        ("worker_rss", "worker RSS (with its pool)"),
        ("worker_main_rss", "worker's main process RSS"),
        ("redis_memory", "Redis used memory"),
    ):
        memory.plot(minutes, [getattr(s, field) / 2**20 for s in samples], label=label)
    memory.set_ylabel("MiB")
    memory.set_ylim(bottom=0)
    memory.legend(loc="lower right")
    memory.set_title("Soak: memory and PostgreSQL connections over time")
    connections.step(minutes, [s.pg_worker for s in samples], where="post", label="worker")
    connections.step(minutes, [s.pg_asgi for s in samples], where="post", label="ASGI")
    connections.axhline(
        settings.CONNECTION_BUDGET.worker, color="red", linestyle=":", label="worker budget"
    )
    connections.set_ylabel("PostgreSQL connections")
    connections.set_xlabel("minutes")
    connections.set_ylim(bottom=0)
    connections.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
