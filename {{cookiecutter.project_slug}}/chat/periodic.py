"""Work done every few seconds for all of a process's sockets at once, in one task.

Some work must be redone for every open socket for as long as it lives: its slot's claim
renewed (``chat.socket_slots``), its presence entry renewed (``chat.heartbeat``). A task per
socket, each with its own timer and its own Redis round trip, cost a process with 10,000
idle sockets about 500 Redis transactions a second, the better part of its idle CPU
(docs/benchmark.md, "Sockets"). So each kind of work keeps the process's sockets here,
grouped by key (a user, a room), and one task does the rounds for all of them, a few
pipelined round trips each time. The task starts with the first socket and ends after the
last one has gone: an idle process keeps no task, and neither does a test's finished loop.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from redis.exceptions import RedisError

Key = TypeVar("Key")


class Periodic(ABC, Generic[Key]):
    """The sockets of one event loop, grouped by key, and the task that works for them.

    A subclass says how often (``interval``) and what to do (``work``); one instance serves
    an event loop (``chat.per_loop``), which is a whole process on a server.
    """

    failure = "Periodic work failed"  # what the log says when a round fails

    def __init__(self) -> None:
        self.members: dict[Key, set[str]] = {}  # key -> this loop's sockets under it
        self.task: asyncio.Task | None = None

    @property
    @abstractmethod
    def interval(self) -> float:
        """Seconds between two rounds."""

    @abstractmethod
    async def work(self) -> None:
        """One round, for every member. A Redis error is logged, and the rounds go on.

        Sockets come and go during the round's awaits: read ``members`` before the first
        (into the commands to send), and they change nothing in this round."""

    def add(self, key: Key, member: str) -> None:
        self.members.setdefault(key, set()).add(member)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def discard(self, key: Key, member: str) -> None:
        members = self.members.get(key, set())
        members.discard(member)
        if not members:
            self.members.pop(key, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.work()
            except (RedisError, OSError) as error:
                # Redis away for a while: the next round tries again (``work`` says why
                # that is safe). Logged under the subclass's module.
                logging.getLogger(type(self).__module__).warning("%s: %r", self.failure, error)
            if not self.members:
                return  # the next socket starts another (no await since the check)
