"""What an ASGI process does every few seconds for all of its sockets at once.

One task per process (per event loop), not one per socket: it renews the presence entries
of the process's sockets (``chat.presence``), announces the users whose entries ran out in
the rooms it serves (their process died, or was stopped too long to renew them), and
reports how many sockets the process holds, for the staff panel (``ops.panel``). It runs
while the process has sockets, and stops after the last one has gone.
"""

import asyncio
import json
import logging
import os
import socket
import time
import weakref

from django.conf import settings
from redis.exceptions import RedisError

from chat import groups, presence, redis_store

logger = logging.getLogger(__name__)

REPORT_EVERY = 2.0  # seconds between socket-count reports; presence goes every TTL / 3
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """The sockets of one process, by room, and the task that speaks for them."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}  # room -> presence entries of this process
        self.task: asyncio.Task | None = None
        self.renewed = time.monotonic()

    @property
    def sockets(self) -> int:
        return sum(len(entries) for entries in self.rooms.values())

    def track(self, room: str, entry: str) -> None:
        self.rooms.setdefault(room, set()).add(entry)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def untrack(self, room: str, entry: str) -> None:
        entries = self.rooms.get(room, set())
        entries.discard(entry)
        if not entries:
            self.rooms.pop(room, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY)
            try:
                if time.monotonic() - self.renewed >= settings.CHAT_PRESENCE_TTL / 3:
                    await self.renew_presence()
                await report(self.sockets)
            except (RedisError, OSError) as error:
                # Redis away for a while: entries may run out meanwhile; they come back
                # with the next renewal, announced as joins.
                logger.warning("Heartbeat failed: %r", error)
            if not self.rooms:
                return  # the next socket starts another (no await since the check)

    async def renew_presence(self) -> None:
        self.renewed = time.monotonic()
        layer = groups.channel_layer()
        rooms = {room: set(entries) for room, entries in self.rooms.items() if entries}
        for room, (rejoined, gone) in (await presence.renew_and_reap(rooms)).items():
            for user in rejoined:
                await layer.group_send(groups.room(room), {"type": "presence.join", "user": user})
            for user in gone:
                await layer.group_send(groups.room(room), {"type": "presence.leave", "user": user})


async def report(sockets: int) -> None:
    """This process's report for the staff panel, good for a few beats."""
    lifetime = REPORT_EVERY * 5
    report = {"process": PROCESS_ID, "pid": os.getpid(), "sockets": sockets, "at": time.time()}
    async with redis_store.async_client().pipeline(transaction=False) as pipe:
        pipe.set(redis_store.server_process(PROCESS_ID), json.dumps(report), ex=int(lifetime))
        pipe.zadd(redis_store.server_processes(), {PROCESS_ID: time.time() + lifetime})
        pipe.zremrangebyscore(redis_store.server_processes(), "-inf", time.time())
        pipe.expire(redis_store.server_processes(), int(lifetime))
        await pipe.execute()


_heartbeats: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def heartbeat() -> Heartbeat:
    """The heartbeat of this process's event loop."""
    return _heartbeats.setdefault(asyncio.get_running_loop(), Heartbeat())
