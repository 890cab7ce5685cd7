"""A WebSocket client speaking the contract, for end-to-end tests (``websockets`` library)."""

import asyncio
import json
import uuid
from collections import Counter

from websockets.asyncio.client import connect


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
