"""The room consumer: validate, fan out, hand off. It never touches the database.

Each ``message.send`` frame goes through three steps:

1. ``chat.protocol`` validates it (bad input gets an ``error`` frame, the socket stays open);
2. the channel layer fans it out to the room at once (``group_send``);
3. ``chat.handoff`` publishes it to the persistence queue in a micro-batch, after which the
   sender gets ``message.accepted`` with a receipt. The worker's ``message.persisted``
   follows once PostgreSQL has it.

If the channel layer is down, nothing happens and the sender hears ``unavailable``. If the
broker is down, others may already have seen the message, but it was not accepted: the
sender hears ``unavailable`` and resends with the same id, which clients deduplicate.
"""

import asyncio
import contextlib
import json
from collections import OrderedDict
from datetime import UTC, datetime

from channels.consumer import get_handler_name
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from chat import cursors, protocol, receipts, socket_slots
from chat.handoff import Unavailable, handoff
from chat.ratelimit import TokenBucket
from ops import metrics

RECENT_IDS = 1024  # how many ids per connection are remembered to drop duplicates


def group_name(room: str) -> str:
    return f"room.{room}"


class RoomConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.identity = self.scope["identity"]
        self.room = self.scope["url_route"]["kwargs"]["room"]
        if self.identity is None or not protocol.is_valid_room(self.room):
            await self.close()  # before accept(): the handshake is refused with HTTP 403
            return
        try:
            admitted = await socket_slots.claim(self.identity.user_id, self.channel_name)
        except (RedisError, OSError):
            await self.close()  # cannot count the user's sockets: refuse the handshake
            return
        if not admitted:
            # Accepted only to close with a code the client can see (a refused handshake
            # reaches browser code as a bare 1006).
            await self.accept()
            await self.close(code=protocol.CLOSE_TOO_MANY_SOCKETS)
            return
        self.renewing = asyncio.create_task(
            socket_slots.keep_renewing(self.identity.user_id, self.channel_name)
        )
        self.group = group_name(self.room)
        # id -> receipt, or None while the hand-off is in flight.
        self.recent: OrderedDict[str, str | None] = OrderedDict()
        self.handing_off: set[asyncio.Task] = set()
        self.rate = TokenBucket(
            rate=settings.CHAT_RATE_LIMIT,
            burst=settings.CHAT_RATE_BURST,
            max_strikes=settings.CHAT_RATE_MAX_STRIKES,
        )
        self.connected = True
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        metrics.SOCKETS_CONNECTED.inc()

    async def dispatch(self, message):
        """Call the handler for ``message``, without Channels' per-message database cleanup.

        Channels closes stale database connections before every handler, through a
        ``sync_to_async`` hop to its one shared thread. This consumer never has a
        connection to close, and on the fan-out path that hop would be paid per frame.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send):
        """Run the consumer; give its slot back however it ends.

        ``disconnect`` is not called when the consumer dies of an exception (Redis gone, a
        send racing the server's close of a dead client), and a slot kept until its claim
        runs out would count against the user for ``CHAT_SOCKET_SLOT_TTL``.
        """
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release_slot()

    async def disconnect(self, code):
        if getattr(self, "connected", False):
            metrics.SOCKETS_CONNECTED.dec()
        self.connected = False
        await self.release_slot()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def release_slot(self):
        if renewing := getattr(self, "renewing", None):
            del self.renewing
            renewing.cancel()
            with contextlib.suppress(RedisError, OSError):  # else the claim runs out
                await socket_slots.release(self.identity.user_id, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        metrics.FRAMES_RECEIVED.inc()
        if not self.rate.allow():
            if self.rate.abused:
                await self.close(code=protocol.CLOSE_RATE_LIMITED)
            else:
                await self.send_frame(
                    protocol.error_frame(protocol.RATE_LIMITED, "Too many frames; slow down.")
                )
            return
        if text_data is None:
            await self.send_frame(
                protocol.error_frame(protocol.INVALID_FRAME, "Frames must be JSON text frames.")
            )
            return
        if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
            await self.close(code=protocol.CLOSE_FRAME_TOO_LARGE)
            return
        try:
            command = protocol.parse_client_frame(text_data, max_body=settings.CHAT_MAX_BODY)
        except protocol.ProtocolError as error:
            await self.send_frame(error.frame())
            return

        if command.id in self.recent:
            # A resend of a recent id is never fanned out or handed off twice. If it was
            # accepted, say so again; if it is in flight, its answer is on its way.
            receipt = self.recent[command.id]
            if receipt is not None:
                await self.send_frame(protocol.accepted_frame(command.id, receipt))
            return

        message = {
            "id": command.id,
            "room": self.room,
            "author": self.identity.username,
            "body": command.body,
            "sent_at": cursors.timestamp(datetime.now(UTC)),
        }
        try:
            await self.channel_layer.group_send(
                self.group, {"type": "room.message", "message": message}
            )
        except (RedisError, OSError, ChannelFull):
            await self.send_unavailable(command.id)
            return
        self.remember(command.id, None)
        # Hand off in the background, so this socket's next frames (and the room's
        # messages to it) are not held up by the batch window.
        task = asyncio.create_task(self.hand_off(message))
        self.handing_off.add(task)
        task.add_done_callback(self.handing_off.discard)

    async def hand_off(self, message: dict):
        record = {
            **message,
            "author_id": self.identity.user_id,
            "reply_channel": self.channel_name,
        }
        try:
            await handoff.submit(record)
        except Unavailable:
            self.recent.pop(message["id"], None)
            await self.send_unavailable(message["id"])
            return
        metrics.MESSAGES_ACCEPTED.inc()
        receipt = receipts.issue(message, self.identity.user_id)
        self.remember(message["id"], receipt)
        await self.send_frame(protocol.accepted_frame(message["id"], receipt))

    def remember(self, message_id: str, receipt: str | None):
        self.recent[message_id] = receipt
        self.recent.move_to_end(message_id)
        while len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)

    async def send_unavailable(self, message_id: str):
        await self.send_frame(
            protocol.error_frame(
                protocol.UNAVAILABLE,
                "The message could not be accepted right now; resend it with the same id.",
                message_id,
            )
        )

    async def send_frame(self, frame: dict):
        if self.connected:
            await self.send(text_data=json.dumps(frame))
            metrics.FRAMES_SENT.inc()

    # Channel-layer events ----------------------------------------------------------------

    async def room_message(self, event):
        await self.send_frame(protocol.message_frame(event["message"]))

    async def message_persisted(self, event):
        await self.send_frame(protocol.persisted_frame(event["id"]))
