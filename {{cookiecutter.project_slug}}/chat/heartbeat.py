"""What an ASGI process does every few seconds for all of its sockets at once.

One task per process (per event loop), not one per socket (``chat.periodic`` says why): it
renews the presence entries of the process's sockets (``chat.presence``), announces the
users whose entries ran out in the rooms it serves (their process died, or was stopped too
long to renew them), and reports how many sockets the process holds, for the staff panel
(``ops.panel``). It runs while the process has sockets, and stops after the last one has
gone.
"""

import json
import os
import socket
import time

from django.conf import settings

from chat import groups, presence, redis_store
from chat.per_loop import PerLoop
from chat.periodic import Periodic

REPORT_EVERY = 2.0  # seconds between socket-count reports; presence goes every TTL / 3
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat(Periodic[str]):
    """The sockets of one process, by room (room -> presence entries), and the task that
    speaks for them."""

    interval = REPORT_EVERY
    failure = "Heartbeat failed"

    def __init__(self) -> None:
        super().__init__()
        self.renewed = time.monotonic()  # when the presence entries were last renewed

    @property
    def sockets(self) -> int:
        return sum(len(entries) for entries in self.members.values())

    async def work(self) -> None:
        """Renew presence if a third of its TTL has passed, and report. If Redis is away
        for a while, entries may run out meanwhile; they come back with the next renewal,
        announced as joins."""
        if time.monotonic() - self.renewed >= settings.CHAT_PRESENCE_TTL / 3:
            await self.renew_presence()
        await report(self.sockets)

    async def renew_presence(self) -> None:
        self.renewed = time.monotonic()
        layer = groups.channel_layer()
        reaped = await presence.renew_and_reap(self.members)  # read before any await
        for room, (rejoined, gone) in reaped.items():
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


@PerLoop
def heartbeat() -> Heartbeat:
    """The heartbeat of this event loop (of the process, on a server)."""
    return Heartbeat()
