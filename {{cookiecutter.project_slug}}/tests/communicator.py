"""The room consumer in process, through the real ASGI application (origin check, session
identity, routing) and the real Redis channel layer: Channels' ``WebsocketCommunicator``.
"""

import asyncio
import json

from channels.testing import WebsocketCommunicator

from config.asgi import application

ORIGIN = (b"origin", b"http://localhost")
# What the room says about itself (who is here, who types): frames a test reads only when
# it asks for them.
ROOM_STATE = frozenset({"presence", "presence.join", "presence.leave", "typing"})


def is_room_state(output: dict) -> bool:
    return output["type"] == "websocket.send" and json.loads(output["text"])["type"] in ROOM_STATE


class RoomSocket(WebsocketCommunicator):
    """A communicator that, unless asked with ``room_state=True``, passes over the
    presence and typing frames, as a client interested in messages alone would."""

    # The methods below keep the signatures of WebsocketCommunicator's (timeout included).

    async def receive_output(self, timeout: float = 1, room_state: bool = False) -> dict:  # noqa: ASYNC109
        while True:
            output = await super().receive_output(timeout)
            if room_state or not is_room_state(output):
                return output

    async def receive_json_from(self, timeout: float = 1, room_state: bool = False):  # noqa: ASYNC109
        output = await self.receive_output(timeout, room_state)
        assert output["type"] == "websocket.send", output
        return json.loads(output["text"])

    async def frames_within(self, seconds: float) -> list[dict]:
        """Every frame that arrives within ``seconds`` (room state included)."""
        frames: list[dict] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            if await WebsocketCommunicator.receive_nothing(self, remaining):
                break
            while not self.output_queue.empty():
                output = self.output_queue.get_nowait()
                if output["type"] != "websocket.send":
                    self.output_queue.put_nowait(output)  # a close: for receive_output
                    return frames
                frames.append(json.loads(output["text"]))
        return frames

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:  # noqa: ASYNC109
        """True if nothing but presence and typing frames arrives within ``timeout``."""
        frames = await self.frames_within(timeout)
        return all(frame["type"] in ROOM_STATE for frame in frames) and self.output_queue.empty()


def socket(room: str = "general", cookie: str | None = None, origin=ORIGIN) -> RoomSocket:
    headers = [origin] if origin else []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return RoomSocket(application, f"/ws/rooms/{room}/", headers=headers)


async def connected(logged_in, room: str = "general") -> RoomSocket:
    communicator = socket(room, logged_in.cookie)
    ok, _ = await communicator.connect()
    assert ok
    return communicator


async def frames_until(communicator, done, within: float = 5, room_state=False) -> list[dict]:
    """Receive frames until ``done(frames)`` is true."""
    frames: list[dict] = []
    while not done(frames):
        frames.append(await communicator.receive_json_from(within, room_state=room_state))
    return frames
