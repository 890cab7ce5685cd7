"""The scenarios of the benchmark. Each returns rows of figures (dicts) for the report.

1. comparison: the same offered load on designs (a) to (d);
2. scale: more and more sockets on the project's design;
3. persistence: a preloaded queue drained by the worker, batched vs one task per message,
   and a backlog queued by real traffic, each against PostgreSQL's own ceiling;
4. matrix: daphne vs uvicorn, and the core vs pub/sub Redis layer, on the project's design;
5. knee: a rising offered load on every design, until it no longer keeps up;
6. table: the rows of the article's comparison table, with 1,000 sockets;
7. wall: every design against a PostgreSQL with few connections (``bench.wall``);
8. cluster: the project's design on two server processes and a sharded channel layer;
9. sockets: thousands of idle sockets on the project's process and on the bare consumer (e).
"""

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from bench import load, pgceiling
from bench.crowd import Crowd, raise_file_limit
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
    procfile_server,
    rss_mb,
    stored,
)
from chat.models import Message
from chat.queue import PERSIST_TASK
from config.celery import app
from support.processes import (
    Process,
    RedisServer,
    database_url,
    pgbouncer_binary,
    sampling,
    server_binaries,
    tcp_connections_to,
)
from support.redis_clients import clients_by_name

LAYERS = ("redis", "redis_pubsub")


@dataclass(frozen=True)
class Sizes:
    designs: str  # the comparison's, one letter each (bench.stack.DESIGNS)
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
    backlog: int  # messages sent through the sockets while the worker is stopped
    backlog_rate: float  # ... at this many a second
    matrix_duration: float
    warmup: float  # seconds of the same load before each measured run, for every design
    knee_designs: str
    knee_rates: tuple[float, ...]  # offered messages a second, step after step
    knee_step: float  # seconds of sending per step
    knee_settle: float  # seconds after a step for its last frames: later is lost
    table_designs: str  # the article's rows, at the comparison's load with more sockets
    table_sockets: int  # 10 per room
    table_duration: float
    wall_designs: str
    wall_processes: tuple[int, ...]  # K, server processes per design
    wall_sockets: int  # opened at once, then each sends one message at once
    wall_threads: int  # ASGI_THREADS of each server process
    wall_max_connections: int  # of the wall's own PostgreSQL
    wall_settle: float
    cluster_shards: int  # redis-servers of the channel layer, for 2 server processes
    crowd: tuple[int, ...]  # idle sockets on one process, level after level, 20 per room
    crowd_idle: float  # seconds over which idle CPU is measured, keepalive pings included
    crowd_ping: int | None  # WS_PING_INTERVAL of both servers (None: the shipped default)


FULL = Sizes(
    designs="abcdefgh",
    sockets=200,
    rooms=20,
    rate=100,
    duration=7,
    settle=20,
    scale=(100, 500, 1000),
    scale_rate=50,
    scale_duration=5,
    batched=20000,
    naive=2000,
    batch_size=100,
    backlog=20000,
    backlog_rate=1000,
    matrix_duration=4,
    warmup=3,
    knee_designs="abcdefgh",
    knee_rates=(75, 110, 170, 250, 380, 570, 850, 1280),
    knee_step=3,
    knee_settle=3,
    table_designs="abfghc",
    table_sockets=1000,
    table_duration=3,
    wall_designs="abfghc",
    wall_processes=(1, 2, 4),
    wall_sockets=1000,
    # Python's default pool on a machine of 28 cores or more (min(32, cores + 4)).
    wall_threads=32,
    wall_max_connections=30,
    wall_settle=10,
    cluster_shards=3,
    crowd=(1000, 10000),
    crowd_idle=20,  # one of the shipped 20 s ping intervals: every socket pinged once
    crowd_ping=None,
)
QUICK = Sizes(
    designs="abcd",
    sockets=100,
    rooms=10,
    rate=50,
    duration=4,
    settle=10,
    scale=(100, 300),
    scale_rate=50,
    scale_duration=3,
    batched=4000,
    naive=400,
    batch_size=100,
    backlog=1000,
    backlog_rate=500,
    matrix_duration=4,
    warmup=1,
    knee_designs="ce",
    knee_rates=(25, 50, 100),
    knee_step=2,
    knee_settle=3,
    table_designs="fghc",
    table_sockets=200,
    table_duration=2,
    wall_designs="bc",
    wall_processes=(2,),
    wall_sockets=200,
    wall_threads=32,
    wall_max_connections=30,
    wall_settle=10,
    cluster_shards=3,
    crowd=(100, 500),
    crowd_idle=6,
    crowd_ping=2,  # so that a short window sees pings: three rounds
)


def available(sizes: Sizes, chosen: list[str]) -> tuple[Sizes, list[str], dict[str, str]]:
    """What this machine can run: without pgbouncer, no design (h); without PostgreSQL's
    server binaries, no wall. The sizes and scenarios left, and what was skipped and why."""
    skipped = {}
    if not pgbouncer_binary():
        skipped["design (h)"] = "no pgbouncer (apt-get install pgbouncer)"
        lists = ("designs", "knee_designs", "table_designs", "wall_designs")
        sizes = replace(sizes, **{name: getattr(sizes, name).replace("h", "") for name in lists})
    if "wall" in chosen and server_binaries() is None:
        skipped["wall"] = "no PostgreSQL server binaries (apt-get install postgresql)"
        chosen = [name for name in chosen if name != "wall"]
    return sizes, chosen, skipped


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
    rate: float | None = None,
    processes: int = 1,
    env: dict | None = None,
) -> dict:
    """``processes`` server processes (one by default; ``env`` adds to their environment),
    ``sizes.sockets`` sockets spread over them, the offered load; its figures."""
    server = server or default_server()
    layer = layer or settings.CHANNEL_LAYER
    duration = duration or sizes.duration
    rate = rate or sizes.rate
    rooms = [f"bench-{design}-{server}-{layer}-{n}" for n in range(sizes.rooms)]
    tally = load.Tally()
    persisting = DESIGNS[design].persists

    async def drive():
        sockets = await load.open_sockets(urls, cookies, rooms, sizes.sockets)
        # A warm-up at the same load, not counted: first connections, first tasks, caches.
        progress(f"{len(sockets)} sockets open; warming up for {sizes.warmup:g} s")
        warmup = load.Tally()
        load.attach(sockets, warmup)
        await load.offer(sockets, rate, sizes.warmup, progress)
        await load.settle(warmup, want_persisted=persisting, within=sizes.settle)
        load.attach(sockets, tally)
        progress(f"sending {rate:g}/s for {duration:g} s")
        await load.offer(sockets, rate, duration, progress)
        settled = await load.settle(tally, want_persisted=persisting, within=sizes.settle)
        for socket in sockets:
            await socket.close()
        return settled

    empty_messages()
    started = stage.servers(server, design, processes, layer, env=env)
    webs, urls = [web for web, _ in started], [url for _, url in started]
    worker_cpu = cpu_seconds(worker.pid) if worker else 0.0
    try:
        web_cpu = sum(cpu_seconds(web.pid) for web in webs)
        with ConnectionWatch(connection.settings_dict) as watch:
            settled = asyncio.run(drive())
        memory = rss_mb(webs[0].pid)
        web_cpu = sum(cpu_seconds(web.pid) for web in webs) - web_cpu
    finally:
        stage.stop(*webs)
    worker_cpu = cpu_seconds(worker.pid) - worker_cpu if worker else 0.0
    figures = load.summary(tally)
    stored_count = stored(tally.sent) if DESIGNS[design].stores else None
    return {
        "design": design,
        "server": server,
        "layer": layer,
        "sockets": sizes.sockets,
        "rooms": sizes.rooms,
        "processes": processes,
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
    for design in sizes.designs.replace("c", ""):
        progress(f"design {design}", head=True)
        rows[design] = load_run(stage, sizes, cookies, design, progress)
    if "c" in sizes.designs:
        progress("design c", head=True)
        worker = stage.worker()
        try:
            rows["c"] = load_run(stage, sizes, cookies, "c", progress, worker=worker)
        finally:
            worker.stop()
    return [rows[design] for design in sorted(rows)]


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
            # Redis's clients are bounded by pools too (config/connections.py): counted
            # from outside, with every socket open and just used.
            row["redis_connections"] = tcp_connections_to(web.pid, redis_port)
            rows.append((row | {"samples": watch.samples} | rss_mb(web.pid), tally.sent))
        for socket in sockets:
            await socket.close()

    empty_messages()
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    worker = stage.worker()
    web, url = stage.server(default_server(), "c")
    try:
        asyncio.run(drive())
    finally:
        stage.stop(web)
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


def ceiling(records: list[dict], progress) -> dict:
    """PostgreSQL's own rate for these rows (``bench.pgceiling``), from as many connections
    as the worker's budget; the rows are gone again afterwards."""
    figures = pgceiling.measure(
        database_url(connection.settings_dict), records, settings.CONNECTION_BUDGET.worker
    )
    progress(
        f"PostgreSQL's ceiling for {figures['rows']} rows from {figures['connections']} "
        f"connections: {figures['insert_per_s']:g} rows/s by INSERT, "
        f"{figures['copy_per_s']:g} by COPY"
    )
    return figures


def run_worker_until_stored(
    stage: Stage, rows: Callable[[], int], expected: int, env: dict | None = None
) -> tuple:
    """Start the worker (with ``env``), and time it from ready until ``rows()`` counts
    ``expected``; the seconds, and the watch of its PostgreSQL connections. ``rows`` is
    polled 20 times a second on the same cores: a cheap count, not a lookup of thousands of
    ids."""
    with ConnectionWatch(connection.settings_dict) as watch:
        worker = stage.worker(wait=False, env=env)
        try:
            worker.wait_until(lambda: " ready." in worker.output(), 60, "the worker to be ready")
            start = time.perf_counter()
            worker.wait_until(lambda: rows() >= expected, 600, f"{expected} messages to be stored")
            elapsed = time.perf_counter() - start
        finally:
            worker.stop()
    return elapsed, watch


def drain(
    stage: Stage,
    name: str,
    total: int,
    per_task: int,
    notify: bool,
    progress,
    against_ceiling: bool = False,
) -> dict:
    """Preload ``total`` messages into the queue, then time the worker emptying it; with
    ``against_ceiling``, PostgreSQL's own rate for the same rows first."""
    empty_messages()
    empty_queue()
    room = "bench-persist"
    author = author_id()
    records = [record(room, author, n, notify) for n in range(total)]
    limit = ceiling(records, progress) if against_ceiling else None
    with app.producer_or_acquire() as producer:
        for first in range(0, total, per_task):
            app.send_task(PERSIST_TASK, args=[records[first : first + per_task]], producer=producer)
    tasks = -(-total // per_task)
    progress(f"{name}: {total} messages queued as {tasks} tasks; starting the worker")
    # The naive worker stores each task's batch alone, not with those queued behind it.
    env = {"CHAT_PERSIST_GATHER": "0"} if per_task == 1 else None
    elapsed, watch = run_worker_until_stored(
        stage, Message.objects.filter(room=room).count, total, env
    )
    rate = round(total / elapsed, 1)
    progress(f"{name}: {rate:g} msgs/s, peak {watch.peak['worker']} worker connections")
    return {
        "worker": name,
        "kind": "preloaded" if per_task > 1 else "one per task",
        "messages": total,
        "tasks": tasks,
        "notify": notify,
        "seconds": round(elapsed, 2),
        "stored_per_s": rate,
        "worker_peak": watch.peak["worker"],
        "samples": watch.samples,
        **({"ceiling": limit} if limit else {}),
    }


def backlog(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> dict:
    """Catching up after a worker outage: ``sizes.backlog`` messages sent through the real
    WebSocket path with no worker running, so queued in the small batches real traffic
    makes; then the worker started, timed until all are stored, and PostgreSQL's own rate
    for the same rows measured afterwards."""
    empty_messages()
    empty_queue()
    # A room per socket: the fan-out (one frame per message, to its sender) stays far below
    # the server's knee, so that what is measured is the queue, not a server falling behind.
    rooms = [f"bench-backlog-{n}" for n in range(sizes.sockets)]
    tally = load.Tally()
    duration = sizes.backlog / sizes.backlog_rate

    async def drive():
        sockets = await load.open_sockets(url, cookies, rooms, sizes.sockets)
        load.attach(sockets, tally)
        progress(f"sending {sizes.backlog_rate:g}/s for {duration:g} s, no worker")
        await load.offer(sockets, sizes.backlog_rate, duration, progress)
        # Accepted means handed to the broker: then the backlog is complete. A server that
        # fell behind the offered rate is waited for as long as it keeps accepting; a refused
        # message is never stored, and not waited for.
        seen, deadline = tally.accepted, time.perf_counter() + sizes.settle
        while tally.accepted < len(tally.sent):
            if tally.accepted > seen:
                seen, deadline = tally.accepted, time.perf_counter() + sizes.settle
            elif time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.05)
        for socket in sockets:
            await socket.close()

    web, url = stage.server(default_server(), "c")
    try:
        asyncio.run(drive())
    finally:
        stage.stop(web)
    tasks = queued_tasks()
    ids, accepted = list(tally.sent), tally.accepted
    unanswered = len(ids) - accepted - tally.errors.total()
    progress(
        f"backlog: {accepted} of {len(ids)} messages accepted, {dict(tally.errors)} refused, "
        f"{unanswered} unanswered; sockets the server closed (by close code): "
        f"{dict(tally.closed)}; queued as {tasks} tasks; starting the worker"
    )
    # The table was emptied before the backlog: every row in it is the backlog's.
    elapsed, watch = run_worker_until_stored(stage, Message.objects.count, accepted)
    rate = round(accepted / elapsed, 1)
    progress(f"backlog: {rate:g} msgs/s, peak {watch.peak['worker']} worker connections")
    records = stored_records(ids)
    empty_messages()
    return {
        "worker": "backlog from real traffic",
        "kind": "backlog",
        "messages": accepted,
        "sent": len(ids),
        "refused": dict(tally.errors),
        "unanswered": unanswered,
        "closed_by_server": dict(tally.closed),
        "tasks": tasks,
        "notify": True,
        "seconds": round(elapsed, 2),
        "stored_per_s": rate,
        "worker_peak": watch.peak["worker"],
        "samples": watch.samples,
        "ceiling": ceiling(records, progress),
    }


def queued_tasks() -> int:
    """Tasks waiting in the persistence queue (Redis broker: a list; RabbitMQ: the queue's
    message count)."""
    queue = settings.CELERY_TASK_ROUTES[PERSIST_TASK]["queue"]
    with app.connection_for_read() as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def stored_records(ids: list[str]) -> list[dict]:
    """The stored rows of ``ids``, as hand-off records (for the ceiling to write again)."""
    return [
        {
            "id": str(m.id),
            "room": m.room,
            "author_id": m.author_id,
            "body": m.body,
            "sent_at": m.sent_at.isoformat(),
            "offset": m.offset,
        }
        for m in Message.objects.filter(id__in=ids)
    ]


def persistence(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    progress("persistence", head=True)
    return [
        drain(
            stage,
            f"batched ({sizes.batch_size}/task)",
            sizes.batched,
            sizes.batch_size,
            True,
            progress,
            against_ceiling=True,
        ),
        drain(
            stage,
            f"batched ({sizes.batch_size}/task), no notification",
            sizes.batched,
            sizes.batch_size,
            False,
            progress,
        ),
        backlog(stage, sizes, cookies, progress),
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


def knee(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    """Every design in turn, the same sockets, the offered load raised step by step until
    the design no longer keeps up (``load.holds``). One row per step; the last step that held
    is the design's knee."""
    rows = []
    for design in sizes.knee_designs:
        progress(f"design {design}", head=True)
        worker = stage.worker() if DESIGNS[design].persists else None
        try:
            rows += sweep(stage, sizes, cookies, design, progress)
        finally:
            if worker:
                worker.stop()
    return rows


def sweep(stage: Stage, sizes: Sizes, cookies: list[str], design: str, progress) -> list[dict]:
    rooms = [f"bench-knee-{design}-{n}" for n in range(sizes.rooms)]
    per_room = sizes.sockets / sizes.rooms
    persisted = DESIGNS[design].persists
    steps = []

    async def step(sockets: list[load.Socket], rate: float) -> tuple[dict, load.Tally]:
        tally = load.Tally()
        load.attach(sockets, tally)
        # The clients share the machine: their own CPU says when they, not the server,
        # were the limit (a whole core).
        client_cpu, web_cpu = time.process_time(), cpu_seconds(web.pid)
        await load.offer(sockets, rate, sizes.knee_step, lambda text: None)
        # A design with a worker is also waited for its "persisted" frames: the persist
        # lag at the knee is one of its figures, and the server's work for them is counted.
        await load.settle(tally, want_persisted=persisted, within=sizes.knee_settle)
        web_cpu = cpu_seconds(web.pid) - web_cpu
        figures = load.summary(tally)
        row = {
            "design": design,
            "rate": rate,
            "offered_frames_per_s": round(figures["offered_per_s"] * per_room, 1),
            **figures,
            "held": load.holds(figures),
            "client_cpu": round((time.process_time() - client_cpu) / sizes.knee_step, 2),
            "web_cpu": round(web_cpu / sizes.knee_step, 2),
            # The ASGI process's CPU per frame it delivered, all its other work included.
            "web_cpu_us_per_frame": (
                round(web_cpu / figures["delivered_frames"] * 1e6, 1)
                if figures["delivered_frames"]
                else None
            ),
        }
        return row, tally

    async def drive():
        sockets = await load.open_sockets(url, cookies, rooms, sizes.sockets)
        warmup = load.Tally()
        load.attach(sockets, warmup)
        await load.offer(sockets, sizes.knee_rates[0], sizes.warmup, lambda text: None)
        await load.settle(warmup, want_persisted=False, within=sizes.settle)
        for rate in sizes.knee_rates:
            row, tally = await step(sockets, rate)
            if not row["held"]:
                # One hiccup of a shared machine is not a knee: once the backlog has drained,
                # the step runs once more, and the second try counts.
                await load.settle(tally, want_persisted=False, within=sizes.settle)
                first = row["latency_p99_ms"]
                row, _ = await step(sockets, rate)
                row["first_try_p99_ms"] = first
            steps.append(row)
            progress(
                f"{rate:g} msgs/s ({row['offered_frames_per_s']:g} frames/s): p99 "
                f"{row['latency_p99_ms']} ms, {row['missing_frames']} lost, "
                f"{'held' if row['held'] else 'did not hold'}"
                + (
                    f" (first try: p99 {row['first_try_p99_ms']} ms)"
                    if "first_try_p99_ms" in row
                    else ""
                )
            )
            if not row["held"]:
                break
        for socket in sockets:
            await socket.close()

    if DESIGNS[design].stores:
        empty_messages()
    web, url = stage.server(default_server(), design)
    try:
        asyncio.run(drive())
    finally:
        stage.stop(web)
    return steps


def table(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    """The article's rows with more sockets (10 per room) than the comparison, at its offered
    load: peak PostgreSQL connections, handshakes included. The report sets them beside the
    comparison's rows and the knees."""
    rows = []
    more = replace(sizes, sockets=sizes.table_sockets, rooms=sizes.table_sockets // 10)
    for design in sizes.table_designs:
        progress(f"design {design}, {more.sockets} sockets", head=True)
        worker = stage.worker() if DESIGNS[design].persists else None
        try:
            rows.append(
                load_run(
                    stage,
                    more,
                    cookies,
                    design,
                    progress,
                    duration=sizes.table_duration,
                    worker=worker,
                )
            )
        finally:
            if worker:
                worker.stop()
    return rows


def cluster(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    """Past one process: the project's design on two server processes, each room's sockets
    on both, the channel layer sharded over redis-servers of the benchmark's own
    (``CHANNEL_LAYER_URLS``), at the comparison's load. Every member must get every
    message, whichever process holds its socket."""
    directory = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    shards = []
    try:
        for n in range(sizes.cluster_shards):
            (directory / str(n)).mkdir()
            shards.append(RedisServer(directory / str(n), appendfsync=None))
        env = {"CHANNEL_LAYER_URLS": ",".join(shard.url for shard in shards)}
        progress(f"2 server processes, {len(shards)} channel-layer shards", head=True)
        worker = stage.worker(env=env)
        try:
            row = load_run(
                stage, sizes, cookies, "c", progress, worker=worker, processes=2, env=env
            )
        finally:
            worker.stop()
    finally:
        for shard in shards:
            shard.stop(signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
    return [row | {"shards": len(shards)}]


CROWD_ROOM = 20  # sockets per room in the sockets scenario


def sockets(stage: Stage, sizes: Sizes, cookies: list[str], progress) -> list[dict]:
    """Idle sockets on one server process: the project's (c) and the bare consumer (e), on
    the same server settings (the Procfile's web line), each with its clients in a process
    of their own (``bench.crowd``). One design after the other, at each level of
    ``sizes.crowd``, once one message sent into every room has reached every socket: memory
    above the idle process, Redis and PostgreSQL connections. Then, both holding their
    sockets, CPU over the same ``crowd_idle`` seconds of nothing but keepalive pings: the
    same window, so that other work on the machine weighs on both alike."""
    soft, hard = raise_file_limit()
    progress(f"open-file limit raised from {soft} to {hard} (servers and clients inherit it)")
    if max(sizes.crowd) * 1.1 > hard:
        progress(f"warning: {max(sizes.crowd)} sockets need more files than {hard}")
    env = {"WS_PING_INTERVAL": str(sizes.crowd_ping)} if sizes.crowd_ping else {}
    rows: dict[str, list[dict]] = {}
    webs: dict[str, Process] = {}
    with contextlib.ExitStack() as stack:
        for design in "ce":
            progress(f"design {design}, up to {max(sizes.crowd)} idle sockets", head=True)
            ((web, url),) = stage.servers(
                default_server(), design, env=env, command=procfile_server(DESIGNS[design].app)
            )
            stack.callback(stage.stop, web)
            crowd = Crowd()
            stack.callback(crowd.stop)  # before its server: the sockets close first
            webs[design] = web
            rows[design] = crowd_levels(sizes, cookies, design, web, url, crowd, progress)
        progress(f"both idle for {sizes.crowd_idle:g} s (keepalive pings only)", head=True)
        before = {design: cpu_seconds(web.pid) for design, web in webs.items()}
        time.sleep(sizes.crowd_idle)  # the measurement window itself, not a wait for a state
        for design, web in webs.items():
            busy = (cpu_seconds(web.pid) - before[design]) / sizes.crowd_idle
            rows[design][-1]["idle_cpu_pct"] = round(busy * 100, 1)
            progress(f"({design}): idle CPU {busy * 100:.1f}% of a core")
    empty_queue()  # the project's batches: no worker stored them
    return rows["c"] + rows["e"]


def crowd_levels(
    sizes: Sizes, cookies: list[str], design: str, web: Process, url: str, crowd: Crowd, progress
) -> list[dict]:
    rooms = [f"bench-crowd-{design}-{n}" for n in range(max(sizes.crowd) // CROWD_ROOM)]
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    idle_mb = rss_mb(web.pid)["rss_mb"]
    redis_peak, redis_pools = 0, {}

    def sample_redis():
        nonlocal redis_peak, redis_pools
        count = tcp_connections_to(web.pid, redis_port)
        if count > redis_peak:  # whose they are, by the name each pool gives its connections
            redis_peak, redis_pools = count, dict(clients_by_name(web.pid, settings.REDIS_URL))

    rows = []
    for level in sizes.crowd:
        redis_peak, redis_pools = 0, {}
        with ConnectionWatch(connection.settings_dict) as watch, sampling(sample_redis, 0.2):
            opened = crowd.ask(open=level, url=url, cookies=cookies, rooms=rooms)
            progress(
                f"{opened['opened']} sockets open, {opened['failed']} failed "
                f"{opened['errors'] or ''}({opened['seconds']:g} s); "
                "one message into every room"
            )
            heard = crowd.ask(broadcast=True, within=max(60.0, level / 50))
        memory = rss_mb(web.pid)
        sockets = opened["opened"]
        row = {
            "design": design,
            "server": default_server(),
            "sockets": sockets,
            "asked": level,
            "failed": opened["failed"],
            "handshake_errors": opened["errors"],
            "handshake_s": opened["seconds"],
            "rooms": heard["rooms"],
            "delivered": heard["delivered"],
            "expected": heard["expected"],
            "delivery_s": heard["seconds"],
            "idle_rss_mb": idle_mb,
            **memory,
            "kib_per_socket": round((memory["rss_mb"] - idle_mb) * 1024 / max(sockets, 1), 1),
            "redis_clients_peak": redis_peak,
            "redis_clients_by_pool": redis_pools,
            # What the pools of one process may hold (config.connections.RedisBudget).
            "redis_budget": sum(settings.REDIS_BUDGET.per_process().values()),
            "redis_pool_sizes": dict(settings.REDIS_BUDGET.per_pool()),
            "web_peak": watch.peak["web"],
            "idle_cpu_pct": None,
        }
        progress(
            f"{heard['delivered']}/{heard['expected']} heard it in {heard['seconds']:g} s; "
            f"{row['kib_per_socket']:g} KiB/socket, {redis_peak} Redis clients, "
            f"{row['web_peak']} PostgreSQL connections"
        )
        rows.append(row)
    return rows
