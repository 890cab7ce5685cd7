"""The load: authenticated WebSocket clients (``websockets``), an open-loop sender, timings.

Messages are sent on a fixed schedule whatever the server answers (an open loop), so a slow
design shows up as latency and lost frames, not as a politely lower offered rate. Every
client reads all the time; the time a ``message`` frame arrives, minus the time its
message was sent, is its fan-out latency (one clock: all clients live in this process).
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

OPEN_BATCH = 50  # sockets opened at once
# A design keeps up with an offered load while every frame arrives, once, with a fan-out
# p99 under this, and no message is refused: its knee is the highest such load.
KNEE_P99_MS = 250


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Tally:
    """Everything the clients saw during one run."""

    sent: dict = field(default_factory=dict)  # id -> (send time, room)
    room_sizes: Counter = field(default_factory=Counter)
    deliveries: Counter = field(default_factory=Counter)  # (socket, id) -> frames
    latencies: list = field(default_factory=list)
    persist_lags: list = field(default_factory=list)
    accepted: int = 0
    persisted: int = 0
    errors: Counter = field(default_factory=Counter)
    closed: Counter = field(default_factory=Counter)  # close code -> sockets the server closed
    first_send: float = 0.0
    last_send: float = 0.0
    last_delivery: float = 0.0

    @property
    def expected(self) -> int:
        return sum(self.room_sizes[room] for _, room in self.sent.values())


class Socket:
    def __init__(self, index: int, url: str, cookie: str, room: str, tally: Tally):
        self.index = index
        self.url = f"{url}/ws/rooms/{room}/"
        self.cookie = cookie
        self.room = room
        self.tally = tally
        self.closing = False  # the client's own close, not the server's

    async def open(self):
        # No compression and no keepalive pings: the client's CPU goes to reading frames.
        self.ws = await connect(
            self.url,
            origin="http://localhost",
            additional_headers={"Cookie": self.cookie},
            compression=None,
            ping_interval=None,
            open_timeout=60,
            max_queue=None,
        )
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                tally = self.tally  # replaced between runs over the same sockets
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message":
                    key = (self.index, frame["id"])
                    tally.deliveries[key] += 1
                    if tally.deliveries[key] == 1 and frame["id"] in tally.sent:
                        tally.latencies.append(now - tally.sent[frame["id"]][0])
                    tally.last_delivery = now
                elif kind == "message.accepted":
                    tally.accepted += 1
                elif kind == "message.persisted" and frame["id"] in tally.sent:
                    tally.persisted += 1  # of this run's messages, not an earlier run's
                    tally.persist_lags.append(now - tally.sent[frame["id"]][0])
                elif kind == "error":
                    tally.errors[frame["code"]] += 1
        except ConnectionClosedError:
            pass
        if not self.closing:  # the server closed it (rate limit, slow reader...): say so
            self.tally.closed[self.ws.close_code] += 1

    async def send(self, body: str) -> None:
        message_id = str(uuid.uuid4())
        self.tally.sent[message_id] = (time.perf_counter(), self.room)
        await self.ws.send(json.dumps({"type": "message.send", "id": message_id, "body": body}))

    async def close(self):
        self.closing = True
        await self.ws.close()
        self.reader.cancel()


def sockets_for(
    urls: str | list[str], cookies: list[str], rooms: list[str], count: int, start: int = 0
) -> list[Socket]:
    """Sockets ``start``..``count-1``: socket n belongs to user n % users, room n % rooms,
    and, with several servers, each room's sockets are spread over all of them."""
    urls = [urls] if isinstance(urls, str) else urls
    return [
        Socket(
            n,
            urls[n // len(rooms) % len(urls)],
            cookies[n % len(cookies)],
            rooms[n % len(rooms)],
            Tally(),
        )
        for n in range(start, count)
    ]


async def open_sockets(
    urls: str | list[str], cookies: list[str], rooms: list[str], count: int, start: int = 0
) -> list[Socket]:
    """Open ``sockets_for(...)``, ``OPEN_BATCH`` at a time."""
    sockets = sockets_for(urls, cookies, rooms, count, start)
    for first in range(0, len(sockets), OPEN_BATCH):
        await asyncio.gather(*(s.open() for s in sockets[first : first + OPEN_BATCH]))
    return sockets


async def burst(
    urls: list[str], cookies: list[str], rooms: list[str], count: int
) -> tuple[list[Socket], int]:
    """Open ``sockets_for(...)`` all at once: those that opened, and how many failed."""
    sockets = sockets_for(urls, cookies, rooms, count)
    outcomes = await asyncio.gather(*(s.open() for s in sockets), return_exceptions=True)
    opened = [socket for socket, outcome in zip(sockets, outcomes, strict=True) if outcome is None]
    return opened, len(sockets) - len(opened)


def attach(sockets: list[Socket], tally: Tally) -> None:
    """Count from now on into ``tally``, for a run over these sockets."""
    for socket in sockets:
        socket.tally = tally
        tally.room_sizes[socket.room] += 1


async def offer(sockets: list[Socket], rate: float, duration: float, progress) -> None:
    """Send ``rate`` messages a second for ``duration`` seconds, round robin over sockets."""
    total = int(rate * duration)
    tally = sockets[0].tally
    start = time.perf_counter()
    tally.first_send = start
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the schedule, not waiting for an answer
        await sockets[n % len(sockets)].send(f"bench message {n}")
        if n and n % int(rate) == 0:
            progress(f"{n}/{total} sent")
    tally.last_send = time.perf_counter()


async def settle(tally: Tally, want_persisted: bool, within: float) -> bool:
    """Wait until every fan-out frame (and ``persisted``, if wanted) is in, or time runs out."""
    deadline = time.perf_counter() + within

    def complete():
        delivered = len(tally.deliveries) >= tally.expected
        return delivered and (not want_persisted or tally.persisted >= len(tally.sent))

    while not complete():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def summary(tally: Tally) -> dict:
    """The run's figures: rates, latencies in ms, duplicates and missing deliveries."""
    sending = max(tally.last_send - tally.first_send, 1e-9)
    delivering = max(tally.last_delivery - tally.first_send, 1e-9)
    ms = lambda value: None if value is None else round(value * 1000, 1)  # noqa: E731
    return {
        "sent": len(tally.sent),
        "offered_per_s": round(len(tally.sent) / sending, 1),
        "delivered_frames": sum(tally.deliveries.values()),
        "delivered_per_s": round(sum(tally.deliveries.values()) / delivering, 1),
        "latency_p50_ms": ms(percentile(tally.latencies, 50)),
        "latency_p99_ms": ms(percentile(tally.latencies, 99)),
        "persist_lag_p99_ms": ms(percentile(tally.persist_lags, 99)),
        "accepted": tally.accepted,
        "persisted": tally.persisted,
        "duplicate_frames": sum(n - 1 for n in tally.deliveries.values() if n > 1),
        "missing_frames": tally.expected - len(tally.deliveries),
        "errors": dict(tally.errors),
        "closed_by_server": dict(tally.closed),
    }


def holds(figures: dict) -> bool:
    """Did a design keep up with a step's load (``KNEE_P99_MS``)?"""
    p99 = figures["latency_p99_ms"]
    return (
        p99 is not None
        and p99 <= KNEE_P99_MS
        and figures["missing_frames"] == 0
        and figures["duplicate_frames"] == 0
        and not figures["errors"]
        and not figures.get("closed_by_server")
    )


def knees(rows: list[dict]) -> dict[str, float]:
    """Each design's knee: the highest offered frames/s of a step that held (0: none did)."""
    found: dict[str, float] = {}
    for row in rows:
        best = row["offered_frames_per_s"] if row["held"] else 0.0
        found[row["design"]] = max(found.get(row["design"], 0.0), best)
    return found


def unbroken(rows: list[dict]) -> set[str]:
    """Designs that held at every step: their knee is beyond the sweep, at least its top."""
    broke = {row["design"] for row in rows if not row["held"]}
    return {row["design"] for row in rows} - broke
