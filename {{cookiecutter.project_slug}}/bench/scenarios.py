"""The four scenarios of the benchmark. Each returns rows of figures (dicts) for the report.

1. comparison: the same offered load on designs (a) to (d);
2. scale: more and more sockets on the project's design;
3. persistence: a preloaded queue drained by the worker, batched vs one task per message;
4. matrix: daphne vs uvicorn, and the core vs pub/sub Redis layer, on the project's design.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection

from bench import load
from bench.pgwatch import ConnectionWatch
from bench.stack import (
    DESIGNS,
    SERVERS,
    Stage,
    author_id,
    cpu_seconds,
    default_server,
    empty_messages,
    empty_queue,
    rss_mb,
    stored,
)
from chat.models import Message
from chat.queue import PERSIST_TASK
from config.celery import app

LAYERS = ("redis", "redis_pubsub")


@dataclass(frozen=True)
class Sizes:
    sockets: int  # comparison and matrix
    rooms: int
    rate: float  # messages a second, over all sockets
    duration: float  # seconds of sending
    settle: float  # seconds allowed for the last frames to arrive
    scale: tuple[int, ...]  # socket counts, 10 per room
    scale_rate: float
    scale_duration: float
    batched: int  # messages preloaded for the batched worker
    naive: int  # ... and for the one-task-per-message worker
    batch_size: int  # messages per task when batched
    matrix_duration: float
    warmup: float  # seconds of the same load before each measured run, for every design


FULL = Sizes(200, 20, 100, 15, 20, (100, 500, 1000), 50, 5, 20000, 2000, 100, 10, 3)
QUICK = Sizes(100, 10, 50, 4, 10, (100, 300), 50, 3, 4000, 400, 100, 4, 1)


def budget() -> dict:
    return {"worker": settings.CONNECTION_BUDGET.worker, "web": settings.CONNECTION_BUDGET.web}


def load_run(
    stage: Stage,
    sizes: Sizes,
    cookies: list[str],
    design: str,
    progress,
    server: str | None = None,
    layer: str | None = None,
    duration: float | None = None,
    worker=None,
) -> dict:
    """One server process, ``sizes.sockets`` sockets, the offered load; its figures."""
    server = server or default_server()
    layer = layer or settings.CHANNEL_LAYER
    duration = duration or sizes.duration
    rooms = [f"bench-{design}-{server}-{layer}-{n}" for n in range(sizes.rooms)]
    tally = load.Tally()
    persisting = DESIGNS[design][2]

    async def drive():
        sockets = await load.open_sockets(url, cookies, rooms, sizes.sockets)
        # A warm-up at the same load, not counted: first connections, first tasks, caches.
        progress(f"{len(sockets)} sockets open; warming up for {sizes.warmup:g} s")
        warmup = load.Tally()
        load.attach(sockets, warmup)
        await load.offer(sockets, sizes.rate, sizes.warmup, progress)
        await load.settle(warmup, want_persisted=persisting, within=sizes.settle)
        load.attach(sockets, tally)
        progress(f"sending {sizes.rate:g}/s for {duration:g} s")
        await load.offer(sockets, sizes.rate, duration, progress)
        settled = await load.settle(tally, want_persisted=persisting, within=sizes.settle)
        for socket in sockets:
            await socket.close()
        return settled

    empty_messages()
    web, url = stage.server(server, design, layer)
    worker_cpu = cpu_seconds(worker.pid) if worker else 0.0
    try:
        web_cpu = cpu_seconds(web.pid)
        with ConnectionWatch(connection.settings_dict) as watch:
            settled = asyncio.run(drive())
        memory = rss_mb(web.pid)
        web_cpu = cpu_seconds(web.pid) - web_cpu
    finally:
        web.stop()
    worker_cpu = cpu_seconds(worker.pid) - worker_cpu if worker else 0.0
    figures = load.summary(tally)
    stored_count = None if design == "d" else stored(tally.sent)
    return {
        "design": design,
        "server": server,
        "layer": layer,
        "sockets": sizes.sockets,
        "rooms": sizes.rooms,
        **figures,
        "settled": settled,
        "stored": stored_count,
        "unstored": None if stored_count is None else figures["sent"] - stored_count,
        "web_peak": watch.peak["web"],
        "worker_peak": watch.peak["worker"],
        "samples": watch.samples,
        # Every process shares the machine's cores: who used them during the run.
        "web_cpu_s": round(web_cpu, 1),
        "worker_cpu_s": round(worker_cpu, 1),
        **memory,
    }


def comparison(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    rows = {}
    # (c) last, with a worker started for it alone: an idle worker holds no connection,
    # but one that has stored a batch keeps it, and would show up in the other rows.
    for design in "abd":
        progress(f"design {design}", head=True)
        rows[design] = load_run(stage, sizes, cookies, design, progress)
    progress("design c", head=True)
    worker = stage.worker()
    try:
        rows["c"] = load_run(stage, sizes, cookies, "c", progress, worker=worker)
    finally:
        worker.stop()
    return [rows[design] for design in "abcd"]


def scale(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    """One server, sockets added level by level (10 per room), each level loaded in turn."""
    rows = []
    biggest = max(sizes.scale)
    rooms = [f"bench-scale-{n}" for n in range(biggest // 10)]

    async def drive():
        sockets: list[load.Socket] = []
        for count in sizes.scale:
            progress(f"{count} sockets", head=True)
            # Handshakes too are watched: that is where most designs query the user.
            with ConnectionWatch(connection.settings_dict) as watch:
                sockets += await load.open_sockets(url, cookies, rooms, count, len(sockets))
                progress(f"{len(sockets)} sockets open; warming up for {sizes.warmup:g} s")
                warmup = load.Tally()
                load.attach(sockets, warmup)
                await load.offer(sockets, sizes.scale_rate, sizes.warmup, progress)
                await load.settle(warmup, want_persisted=True, within=sizes.settle)
                tally = load.Tally()
                load.attach(sockets, tally)
                progress(f"sending {sizes.scale_rate:g}/s for {sizes.scale_duration:g} s")
                await load.offer(sockets, sizes.scale_rate, sizes.scale_duration, progress)
                settled = await load.settle(tally, want_persisted=True, within=sizes.settle)
            row = {"sockets": len(sockets), **load.summary(tally), "settled": settled}
            row.update(web_peak=watch.peak["web"], worker_peak=watch.peak["worker"])
            rows.append((row | {"samples": watch.samples} | rss_mb(web.pid), tally.sent))
        for socket in sockets:
            await socket.close()

    empty_messages()
    worker = stage.worker()
    web, url = stage.server(default_server(), "c")
    try:
        asyncio.run(drive())
    finally:
        web.stop()
        worker.stop()
    return [row | {"unstored": row["sent"] - stored(sent)} for row, sent in rows]


def record(room: str, author: int, n: int, notify: bool) -> dict:
    """A hand-off record as the ASGI process makes it (``chat.consumers``)."""
    message = {
        "id": str(uuid.uuid4()),
        "room": room,
        "author": "bench-user-0",
        "body": f"preloaded message {n}",
        "sent_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "author_id": author,
    }
    if notify:
        # Sockets nobody reads: the worker's notification costs what it costs in real use,
        # spread over 200 reply channels as if 200 senders were waiting.
        message["reply_channel"] = f"specific.bench{n % 200}!socket"
    return message


def drain(stage: Stage, name: str, total: int, per_task: int, notify: bool, progress) -> dict:
    """Preload ``total`` messages into the queue, then time the worker emptying it."""
    empty_messages()
    empty_queue()
    room = "bench-persist"
    author = author_id()
    records = [record(room, author, n, notify) for n in range(total)]
    with app.producer_or_acquire() as producer:
        for first in range(0, total, per_task):
            app.send_task(PERSIST_TASK, args=[records[first : first + per_task]], producer=producer)
    tasks = -(-total // per_task)
    progress(f"{name}: {total} messages queued as {tasks} tasks; starting the worker")
    with ConnectionWatch(connection.settings_dict) as watch:
        worker = stage.worker(wait=False)
        try:
            worker.wait_until(lambda: " ready." in worker.output(), 60, "the worker to be ready")
            start = time.perf_counter()
            worker.wait_until(
                lambda: Message.objects.filter(room=room).count() >= total,
                600,
                f"{total} messages to be stored",
            )
            elapsed = time.perf_counter() - start
        finally:
            worker.stop()
    rate = round(total / elapsed, 1)
    progress(f"{name}: {rate:g} msgs/s, peak {watch.peak['worker']} worker connections")
    return {
        "worker": name,
        "messages": total,
        "tasks": tasks,
        "notify": notify,
        "seconds": round(elapsed, 2),
        "stored_per_s": rate,
        "worker_peak": watch.peak["worker"],
        "samples": watch.samples,
    }


def persistence(stage: Stage, sizes: Sizes, progress) -> list[dict]:
    progress("persistence", head=True)
    return [
        drain(
            stage,
            f"batched ({sizes.batch_size}/task)",
            sizes.batched,
            sizes.batch_size,
            True,
            progress,
        ),
        drain(
            stage,
            f"batched ({sizes.batch_size}/task), no notification",
            sizes.batched,
            sizes.batch_size,
            False,
            progress,
        ),
        drain(stage, "one task per message", sizes.naive, 1, True, progress),
    ]


def matrix(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    rows = []
    for layer in LAYERS:
        worker = stage.worker(layer)
        try:
            for server in SERVERS:
                progress(f"{server} + {layer}", head=True)
                rows.append(
                    load_run(
                        stage,
                        sizes,
                        cookies,
                        "c",
                        progress,
                        server=server,
                        layer=layer,
                        duration=sizes.matrix_duration,
                        worker=worker,
                    )
                )
        finally:
            worker.stop()
    return rows
