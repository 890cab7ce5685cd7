"""A WebSocket client speaking the contract, for end-to-end tests (``websockets`` library)."""

import asyncio
import contextlib
import json
import uuid
from collections import Counter

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus


class Client:
    """One WebSocket connection speaking the contract, recording every frame it receives."""

    def __init__(self, base_url: str, logged_in, room: str):
        self.url = f"{base_url}/ws/rooms/{room}/"
        self.cookie = logged_in.cookie
        self.frames: list[dict] = []
        self.changed = asyncio.Event()

    async def __aenter__(self):
        self.socket = await connect(
            self.url, origin="http://localhost", additional_headers={"Cookie": self.cookie}
        )
        self.reader = asyncio.create_task(self.read())
        return self

    async def __aexit__(self, *exc):
        await self.socket.close()
        self.reader.cancel()

    async def read(self):
        async for raw in self.socket:
            self.frames.append(json.loads(raw))
            self.changed.set()

    async def send(self, body: str) -> str:
        message_id = str(uuid.uuid4())
        await self.socket.send(json.dumps({"type": "message.send", "id": message_id, "body": body}))
        return message_id

    async def wait_until(self, condition, within: float = 30):
        try:
            async with asyncio.timeout(within):
                while not condition(self.frames):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            counts = Counter(f["type"] for f in self.frames)
            raise AssertionError(
                f"{self.url}: condition not met in {within}s; got {counts}"
            ) from None

    def ids(self, frame_type: str) -> list[str]:
        return [f["id"] for f in self.frames if f["type"] == frame_type]


class Stream:
    """A client that must get every one of its messages accepted, whatever fails meanwhile.

    It does what the contract asks of a client: send each message with its own id, and
    resend (same id) every message that got no ``message.accepted`` -- after an
    ``unavailable`` answer, or after reconnecting when the socket dropped. ``url()`` is asked
    again at each reconnect, so a test can move the server. At most ``window`` messages are
    awaiting an answer at once.
    """

    def __init__(self, url, logged_in, room: str, count: int, window: int = 100):
        self.url = url
        self.cookie = logged_in.cookie
        self.room = room
        self.ids = [str(uuid.uuid4()) for _ in range(count)]
        self.accepted: set[str] = set()
        self.unavailable = 0  # "unavailable" answers heard
        self.reconnects = 0
        self.window = window

    @property
    def done(self) -> bool:
        return len(self.accepted) == len(self.ids)

    async def run(self, within: float):
        async with asyncio.timeout(within):
            while not self.done:
                # The server went away, or refuses handshakes while it comes back.
                with contextlib.suppress(OSError, ConnectionClosed, InvalidHandshake):
                    await self.one_connection()
                if not self.done:
                    self.reconnects += 1
                    await asyncio.sleep(0.2)  # a client's reconnect back-off

    async def one_connection(self):
        async with connect(
            f"{self.url()}/ws/rooms/{self.room}/",
            origin="http://localhost",
            additional_headers={"Cookie": self.cookie},
            open_timeout=10,
        ) as socket:
            while not self.done:
                waiting: set[str] = set()
                for message_id in (i for i in self.ids if i not in self.accepted):
                    while len(waiting) >= self.window:
                        await self.answer(socket, waiting)
                    waiting.add(message_id)
                    frame = {"type": "message.send", "id": message_id, "body": f"m {message_id}"}
                    await socket.send(json.dumps(frame))
                while waiting:
                    await self.answer(socket, waiting)
                if not self.done:
                    await asyncio.sleep(0.2)  # heard "unavailable": back off, then resend

    async def answer(self, socket, waiting: set[str]):
        frame = json.loads(await socket.recv())
        if frame["type"] == "message.accepted":
            self.accepted.add(frame["id"])
            waiting.discard(frame["id"])
        elif frame["type"] == "error":
            assert frame["code"] == "unavailable", frame
            self.unavailable += 1
            waiting.discard(frame["id"])


# --- Sockets that are refused or closed: the access tests ---------------------------------


async def open_socket(
    base_url: str, room: str, cookie: str | None = None, ticket: str | None = None, **options
):
    """A socket to ``room`` as a browser opens it (cookie, Origin), or as a program does
    (``ticket``, no Origin), or as ``options`` say."""
    options.setdefault("origin", None if ticket else "http://localhost")
    if cookie:
        options["additional_headers"] = {"Cookie": cookie}
    query = f"?ticket={ticket}" if ticket else ""
    return await connect(f"{base_url}/ws/rooms/{room}/{query}", open_timeout=10, **options)


async def refused(base_url: str, room: str, cookie: str | None = None, **options) -> bool:
    """True if the handshake is refused with HTTP 403; False if the socket opens."""
    try:
        socket = await open_socket(base_url, room, cookie, **options)
    except InvalidStatus as refusal:
        assert refusal.response.status_code == 403, refusal
        return True
    await socket.close()
    return False


async def close_code(socket, within: float) -> int | None:
    """Read (and drop) frames until the server closes the socket: its close code."""
    async with asyncio.timeout(within):
        try:
            while True:
                await socket.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def still_open(socket) -> bool:
    """The socket is open and its consumer answers: a frame that is not JSON gets its
    ``invalid_json`` error back (and nothing is handed off)."""
    await socket.send("not json")
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await socket.recv())
            if frame["type"] == "error" and frame["code"] == "invalid_json":
                return True
