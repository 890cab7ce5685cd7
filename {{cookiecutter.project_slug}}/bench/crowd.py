"""Many idle sockets in a process of their own: the sockets scenario's clients.

Thousands of clients in the benchmark's own process would take the server's core: here they
live in a second process (``Crowd`` starts it), which the benchmark drives with one JSON line
per command on its stdin, answered with one JSON line on its stdout:

- ``{"open": N, "url": ..., "cookies": [...], "rooms": [...]}``: sockets until N are open
  (``OPEN_BATCH`` handshakes at a time): how many opened, failed, and the seconds it took;
- ``{"broadcast": true}``: one message into every room at once, from one of its sockets;
  the answer comes once every socket has its room's frame (or after ``within`` seconds):
  the frames expected and delivered, the seconds from the first send to the last frame;
- ``{"close": true}``: every socket closed; the process exits.

Each client offers permessage-deflate, as browsers do, and answers the server's keepalive
pings without sending any of its own, as browsers do: whether compression is used is the
server's choice (``WS_PER_MESSAGE_DEFLATE``).
"""

import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import time
import uuid
from collections import Counter

from websockets.asyncio.client import connect

from bench.load import OPEN_BATCH


def raise_file_limit() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard limit (children inherit
    it): a socket is a file. The (before, after) soft limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


class Member:
    """One socket of the crowd: it reads all the time, and keeps the ids of ``message``
    frames it has seen."""

    def __init__(self, url: str, cookie: str, room: str):
        self.url, self.cookie, self.room = f"{url}/ws/rooms/{room}/", cookie, room
        self.seen: set[str] = set()
        self.arrived = asyncio.Event()
        self.last_at = 0.0  # when the latest message frame arrived (perf_counter)

    async def open(self) -> None:
        self.ws = await connect(
            self.url,
            origin="http://localhost",
            additional_headers={"Cookie": self.cookie},
            compression="deflate",  # offered, as browsers do
            ping_interval=None,  # the server pings; the client answers
            open_timeout=60,
            max_queue=None,
        )
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        with contextlib.suppress(Exception):  # closed: the broadcast counts what arrived
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    self.last_at = time.perf_counter()
                    self.seen.add(frame["id"])
                    self.arrived.set()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()


class Crowd:
    """The driving side: the second process, one command at a time."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.crowd"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **command) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the crowd process exited with {self.process.wait()}")
        return json.loads(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.ask(close=True)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def serve() -> None:
    members: list[Member] = []
    failed = 0
    errors: Counter[str] = Counter()  # why handshakes failed
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(**figures) -> None:
        print(json.dumps(figures), flush=True)

    while line := await reader.readline():
        command = json.loads(line)
        if "open" in command:
            began = time.perf_counter()
            rooms, cookies = command["rooms"], command["cookies"]
            new = [
                Member(command["url"], cookies[n % len(cookies)], rooms[n % len(rooms)])
                for n in range(len(members) + failed, command["open"])
            ]
            for first in range(0, len(new), OPEN_BATCH):
                batch = new[first : first + OPEN_BATCH]
                outcomes = await asyncio.gather(*(m.open() for m in batch), return_exceptions=True)
                for member, outcome in zip(batch, outcomes, strict=True):
                    if outcome is None:
                        members.append(member)
                    else:
                        failed += 1
                        errors[str(outcome)[:80]] += 1
            answer(
                opened=len(members),
                failed=failed,
                errors=dict(errors),
                seconds=round(time.perf_counter() - began, 2),
            )
        elif "broadcast" in command:
            answer(**await broadcast(members, command.get("within", 120)))
        elif "close" in command:
            await asyncio.gather(*(m.close() for m in members))
            answer(closed=len(members))
            return


async def broadcast(members: list[Member], within: float) -> dict:
    """One message into each room, all sent at once; wait until every member has its
    room's frame, or ``within`` seconds have passed."""
    senders = {m.room: m for m in members}  # one per room
    ids = {room: str(uuid.uuid4()) for room in senders}
    began = time.perf_counter()
    await asyncio.gather(
        *(
            m.ws.send(json.dumps({"type": "message.send", "id": ids[room], "body": "x" * 200}))
            for room, m in senders.items()
        )
    )

    def missing() -> list[Member]:
        return [m for m in members if ids[m.room] not in m.seen]

    deadline = began + within
    waiting = missing()
    while waiting and time.perf_counter() < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting[0].arrived.wait(), deadline - time.perf_counter())
        waiting[0].arrived.clear()
        waiting = [m for m in waiting if ids[m.room] not in m.seen]
    # All there: until the last frame arrived; not all: until the deadline.
    end = max((m.last_at for m in members), default=began) if not waiting else deadline
    return {
        "rooms": len(ids),
        "expected": len(members),
        "delivered": len(members) - len(waiting),
        "seconds": round(end - began, 3),
    }


if __name__ == "__main__":
    raise_file_limit()
    asyncio.run(serve())
