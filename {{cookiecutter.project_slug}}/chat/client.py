"""A command-line chat client: ``python -m chat.client ROOM``.

Every line read from standard input is posted to ROOM; every message of the room is printed
to standard output, one line each: ``[HH:MM:SS] author: body``. Status goes to standard
error. At the end of the input it waits until the server has accepted every line, then
exits (0).

It authenticates as a program does, without a browser's cookie jar: with an API key
(``manage.py apikey <username>``) from the environment variable ``CHAT_API_KEY`` (never on
the command line, where other users' ``ps`` would see it), traded for a single-use ticket
(``POST /api/ws-tickets``) before each connection. ``CHAT_URL`` (or ``--url``) names the
server, ``http://127.0.0.1:8000`` by default.

It does what the protocol asks of every client (docs/protocol.md):

- each line gets a fresh UUID and stays in the outbox until ``message.accepted``; after
  ``unavailable``, ``rate_limited`` or a lost connection it is sent again with the same id,
  which the server never stores twice;
- each message is printed once, by (author, id), whether it came live or from the history API;
- after a reconnect it asks the history API for what it missed (``after=``), starting a
  little before the last message it printed, since messages from several server processes
  may arrive slightly out of order;
- it reconnects with exponential back-off and jitter, and gives up for good (exit 1) when it
  is refused: its key revoked, or removed from a private room (4403).

It imports nothing of Django or of this project: copy the file anywhere ``websockets`` is
installed and it runs.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

CLOSE_FORBIDDEN = 4403  # removed from this private room
RESEND_AFTER = 2.0  # seconds, after "unavailable" or "rate_limited"
CATCH_UP_OVERLAP = timedelta(seconds=10)
BACKOFF_BASE, BACKOFF_MAX = 0.5, 30.0
REMEMBERED_IDS = 10_000  # (author, id) of printed messages kept to drop duplicates
HISTORY_ON_START = 20


class Refused(Exception):
    """The server will not let this client in; trying again would not help."""


def cursor(sent_at: str, message_id: str) -> str:
    """A history cursor (docs/protocol.md): base64url of ``sent_at|id``, unpadded."""
    return base64.urlsafe_b64encode(f"{sent_at}|{message_id}".encode()).decode().rstrip("=")


class ChatClient:
    def __init__(self, base_url: str, api_key: str, room: str, out=sys.stdout, err=sys.stderr):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.room = room
        self.out, self.err = out, err
        self.outbox: dict[str, str] = {}  # id -> body, until accepted
        # (author, id) of each message printed, most recent last: an id is unique per author.
        self.printed: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.newest: str | None = None  # sent_at of the newest message printed
        self.socket: ClientConnection | None = None
        self.input_over = False
        self.tasks: set[asyncio.Task] = set()  # strong references until done

    @property
    def done(self) -> bool:
        return self.input_over and not self.outbox

    # --- HTTP: tickets and history (urllib, on a thread) ---------------------------------

    def request(self, method: str, path: str) -> dict:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"Token {self.api_key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                detail = json.loads(error.read() or b"{}").get("error", error.reason)
                raise Refused(detail) from None
            raise

    async def ticket(self) -> str:
        return (await asyncio.to_thread(self.request, "POST", "/api/ws-tickets"))["ticket"]

    async def history(self, **params) -> dict:
        path = f"/api/rooms/{urllib.parse.quote(self.room)}/messages"
        return await asyncio.to_thread(
            self.request, "GET", f"{path}?{urllib.parse.urlencode(params)}"
        )

    async def catch_up(self) -> None:
        """The recent history at the first connection; what was missed at the next ones."""
        if self.newest is None:
            for message in (await self.history(limit=HISTORY_ON_START))["messages"]:
                self.show(message)
            return
        start = datetime.fromisoformat(self.newest) - CATCH_UP_OVERLAP
        after: str | None = cursor(start.isoformat(timespec="microseconds"), str(uuid.UUID(int=0)))
        while after:
            page = await self.history(after=after, limit=200)
            for message in page["messages"]:
                self.show(message)
            after = page["next"]

    # --- Messages in and out -------------------------------------------------------------

    def show(self, message: dict) -> None:
        identity = (message["author"], message["id"])
        if identity in self.printed:
            return
        self.printed[identity] = None
        while len(self.printed) > REMEMBERED_IDS:
            self.printed.popitem(last=False)
        if self.newest is None or message["sent_at"] > self.newest:
            self.newest = message["sent_at"]
        time, author, body = message["sent_at"][11:19], message["author"], message["body"]
        print(f"[{time}] {author}: {body}", file=self.out)
        self.out.flush()

    async def send(self, message_id: str) -> None:
        if self.socket is not None and message_id in self.outbox:
            frame = {"type": "message.send", "id": message_id, "body": self.outbox[message_id]}
            with contextlib.suppress(ConnectionClosed):
                await self.socket.send(json.dumps(frame))

    def resend_later(self, message_id: str) -> None:
        async def later():
            await asyncio.sleep(RESEND_AFTER)
            await self.send(message_id)

        task = asyncio.create_task(later())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, frame: dict) -> None:
        kind, message_id = frame.get("type"), str(frame.get("id"))
        if kind == "message":
            self.show(frame)
        elif kind == "message.accepted":
            self.outbox.pop(message_id, None)
        elif kind == "error":
            if frame.get("code") in ("unavailable", "rate_limited"):
                self.resend_later(message_id)  # same id: never stored twice
            else:
                self.outbox.pop(message_id, None)
                print(f"not sent ({frame.get('code')}): {frame.get('detail')}", file=self.err)
        if self.done and self.socket is not None:
            await self.socket.close()

    async def read_input(self, lines: asyncio.Queue) -> None:
        while (line := await lines.get()) is not None:
            if body := line.strip():
                message_id = str(uuid.uuid4())
                self.outbox[message_id] = body
                await self.send(message_id)  # or, if the socket is down, when it is back
        self.input_over = True
        if self.done and self.socket is not None:
            await self.socket.close()

    # --- The connection ------------------------------------------------------------------

    def socket_url(self, ticket: str) -> str:
        scheme = "wss" if self.base_url.startswith("https:") else "ws"
        host = self.base_url.split("://", 1)[1]
        room = urllib.parse.quote(self.room)
        return f"{scheme}://{host}/ws/rooms/{room}/?ticket={urllib.parse.quote(ticket)}"

    async def connection(self) -> int | None:
        """One connection, from ticket to close: its close code (None if it never opened)."""
        ticket = await self.ticket()
        try:
            async with connect(self.socket_url(ticket), open_timeout=10) as socket:
                self.socket = socket
                print(f"connected to #{self.room}", file=self.err)
                await self.catch_up()
                for message_id in list(self.outbox):
                    await self.send(message_id)
                if self.done:
                    await socket.close()
                async for raw in socket:
                    await self.handle(json.loads(raw))
            return socket.close_code
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        finally:
            self.socket = None

    async def attempt(self) -> int | None:
        """``connection``, with what can go wrong on the way reported; Refused propagates."""
        try:
            return await self.connection()
        except InvalidStatus as refused:
            print(f"handshake refused: {refused}", file=self.err)
            # HTTP 403: the room is private and we are not in it (then the history API
            # refuses too: Refused), or the server could not check just now (retry).
            if refused.response.status_code == 403:
                await self.history(limit=1)
        except (OSError, InvalidHandshake, TimeoutError, urllib.error.URLError) as exc:
            print(f"connection failed: {exc!r}", file=self.err)
        return None

    async def run(self, lines: asyncio.Queue) -> int:
        reading = asyncio.create_task(self.read_input(lines))
        failures = 0
        try:
            while not self.done:
                try:
                    code = await self.attempt()
                except Refused as refused:
                    print(f"refused: {refused}", file=self.err)
                    return 1
                if code == CLOSE_FORBIDDEN:
                    print(f"refused: not a member of #{self.room}", file=self.err)
                    return 1
                if not self.done:
                    failures = 0 if code is not None else failures + 1
                    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2**failures)
                    await asyncio.sleep(ceiling / 2 + random.random() * ceiling / 2)
            return 0
        finally:
            reading.cancel()


def stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
    """Standard input, line by line, into a queue (None at the end), from a thread."""
    lines: asyncio.Queue = asyncio.Queue()

    def pump():
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return lines


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chat.client", description="Post stdin's lines to ROOM; print the room."
    )
    parser.add_argument("room")
    parser.add_argument("--url", default=os.environ.get("CHAT_URL", "http://127.0.0.1:8000"))
    args = parser.parse_args(argv)
    api_key = os.environ.get("CHAT_API_KEY", "")
    if not api_key:
        parser.error("set CHAT_API_KEY (make one with: python manage.py apikey <username>)")
    client = ChatClient(args.url, api_key, args.room)
    return await client.run(stdin_lines(asyncio.get_running_loop()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
    sys.exit(130)
