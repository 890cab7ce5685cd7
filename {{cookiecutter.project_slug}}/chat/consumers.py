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
import time
from datetime import UTC, datetime

from channels.consumer import get_handler_name
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from chat import (
    access,
    cursors,
    failsafe,
    groups,
    offsets,
    presence,
    protocol,
    receipts,
    socket_slots,
    user_budget,
)
from chat.claims import belongs_to
from chat.handoff import Unavailable, get_handoff
from chat.heartbeat import heartbeat
from chat.identity import Identity
from chat.outbox import Outbox
from chat.ratelimit import TokenBucket
from chat.recent import Outcome, RecentIds
from ops import metrics

RECENT_IDS = 1024  # how many ids per connection are remembered to drop duplicates


class RoomConsumer(AsyncWebsocketConsumer):
    """One socket in one room. Its state, declared here, lives as long as the socket."""

    identity: Identity | None = None  # who is on the other end (chat.handshake)
    room: str = ""
    group: str | None = None  # the room's channel-layer group, once joined
    inbox: str | None = None  # the user's group: revocations and removals (chat.groups)
    connected: bool = False  # accepted and not yet gone: frames may be sent
    holds_slot: bool = False  # its slot is claimed, and renewed (socket_slots.keeper)
    presence_entry: str | None = None  # this socket's entry in the room's presence
    typed_at: float = 0.0  # when this socket's last "typing" went out (monotonic)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Resends are answered from here, never fanned out or handed off twice.
        self.recent = RecentIds(RECENT_IDS)
        self.handing_off: set[asyncio.Task] = set()  # strong references until done
        self.rate = TokenBucket(
            rate=settings.CHAT_RATE_LIMIT,
            burst=settings.CHAT_RATE_BURST,
            max_strikes=settings.CHAT_RATE_MAX_STRIKES,
        )
        # Every frame to the client goes through here, bounded (chat.outbox).
        self.outbox = Outbox(
            super().send,
            super().close,
            max_frames=settings.CHAT_SEND_BACKLOG_FRAMES,
            max_bytes=settings.CHAT_SEND_BACKLOG_BYTES,
            code=protocol.CLOSE_TOO_SLOW,
        )

    async def connect(self):
        # chat.handshake put it there, and lets only known users this far.
        self.identity = self.scope["identity"]  # type: ignore[typeddict-item]
        self.room = self.scope["url_route"]["kwargs"]["room"]
        if not protocol.is_valid_room(self.room):
            await self.close()  # before accept(): the handshake is refused with HTTP 403
            return
        # Join first, decide second: a revocation or a removal that lands after the
        # decision reaches this socket through these groups (chat.groups).
        self.group = groups.room(self.room)
        self.inbox = groups.user(self.identity.user_id)
        try:
            for group in (self.group, self.inbox):
                await self.channel_layer.group_add(group, self.channel_name)
            verdict = await access.admission(
                self.identity.credential, self.identity.user_id, self.room
            )
            admitted = verdict is access.Verdict.ALLOWED and await socket_slots.claim(
                self.identity.user_id, self.channel_name
            )
        except (RedisError, OSError):
            verdict, admitted = access.Verdict.UNKNOWN, False
        if verdict is not access.Verdict.ALLOWED:
            # Logged out meanwhile, not a member of this private room, or no mirror to
            # tell: refused before accept() (HTTP 403).
            await self.leave_groups()
            await self.close()
            return
        if not admitted:
            # Accepted only to close with a code the client can see (a refused handshake
            # reaches browser code as a bare 1006).
            await self.leave_groups()
            await self.accept()
            await self.close(code=protocol.CLOSE_TOO_MANY_SOCKETS)
            return
        self.holds_slot = True
        socket_slots.keeper().add(self.identity.user_id, self.channel_name)
        try:
            first, here = await self.enter_room()
        except (RedisError, OSError):
            await self.leave_groups()
            await self.close()  # cannot tell who is here: refuse the handshake (HTTP 403)
            return
        await self.accept()
        self.outbox.start(self.base_send)
        self.connected = True
        metrics.SOCKETS_CONNECTED.inc()
        await self.send_frame(protocol.presence_frame(here))
        if first:
            with contextlib.suppress(RedisError, OSError, ChannelFull):
                await self.channel_layer.group_send(
                    self.group, {"type": "presence.join", "user": self.identity.username}
                )

    async def enter_room(self) -> tuple[bool, list[str]]:
        """Into the room's presence: whether this is the user's first socket there, and
        who is in the room now (the newcomer included)."""
        assert self.identity is not None
        self.presence_entry = presence.member(self.channel_name, self.identity.username)
        heartbeat().add(self.room, self.presence_entry)
        first = await presence.join(self.room, self.presence_entry)
        return first, await presence.users(self.room)

    async def leave_room(self):
        """Out of the room's presence; tell the room if this was the user's last socket."""
        if self.presence_entry is None:
            return
        assert self.identity is not None
        entry, self.presence_entry = self.presence_entry, None
        heartbeat().discard(self.room, entry)
        with contextlib.suppress(RedisError, OSError):  # else the entry runs out
            if await presence.leave(self.room, entry):
                await self.channel_layer.group_send(
                    groups.room(self.room),
                    {"type": "presence.leave", "user": self.identity.username},
                )

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
        send racing the server's close of a dead client): without this, the sockets gauge
        would stay up, the groups would keep the dead channel, and a slot kept until its
        claim runs out would count against the user for ``CHAT_SOCKET_SLOT_TTL``.
        ``disconnect`` is idempotent, so running it again after a clean close is harmless.
        Last, the channel layer forgets the socket's channel (``discard_channel``).
        """
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.outbox.stop()
            with contextlib.suppress(RedisError, OSError):  # else the memberships run out
                await self.disconnect(None)
            if channel := getattr(self, "channel_name", None):
                with contextlib.suppress(RedisError, OSError):
                    await groups.channel_layer().discard_channel(channel)

    async def disconnect(self, code):
        if self.connected:
            metrics.SOCKETS_CONNECTED.dec()
        self.connected = False
        await self.leave_room()
        await self.release_slot()
        await self.leave_groups()

    async def leave_groups(self):
        for group in (self.group, self.inbox):
            if group is not None:
                await self.channel_layer.group_discard(group, self.channel_name)
        self.group = self.inbox = None

    async def release_slot(self):
        if self.holds_slot and self.identity is not None:
            self.holds_slot = False
            socket_slots.keeper().discard(self.identity.user_id, self.channel_name)
            with contextlib.suppress(RedisError, OSError):  # else the claim runs out
                await socket_slots.release(self.identity.user_id, self.channel_name)

    @failsafe.answered
    async def receive(self, text_data=None, bytes_data=None):
        if not self.connected:
            return  # closed by the server (revoked, removed): nothing more is accepted
        metrics.FRAMES_RECEIVED.inc()
        command = await self.admit(text_data, bytes_data)
        if isinstance(command, protocol.Typing):
            await self.typing()
        elif command is not None:
            await self.post(command)

    async def typing(self):
        """Tell the others; at most one event per ``CHAT_TYPING_INTERVAL``, the rest dropped
        (they say nothing new). Never stored, never handed off."""
        assert self.identity is not None and self.group is not None
        now = time.monotonic()
        if now - self.typed_at < settings.CHAT_TYPING_INTERVAL:
            return
        self.typed_at = now
        with contextlib.suppress(RedisError, OSError, ChannelFull):  # ephemeral: no retry
            await self.channel_layer.group_send(
                self.group, {"type": "room.typing", "user": self.identity.username}
            )

    async def admit(self, text_data: str | None, bytes_data: bytes | None):
        """Rate, size and form: the frame as a command, or None once it has been answered."""
        if not self.rate.allow():
            if self.rate.abused:
                await self.close(code=protocol.CLOSE_RATE_LIMITED)
            else:
                await self.send_frame(
                    protocol.error_frame(protocol.RATE_LIMITED, "Too many frames; slow down.")
                )
            return None
        if text_data is None:
            await self.send_frame(
                protocol.error_frame(protocol.INVALID_FRAME, "Frames must be JSON text frames.")
            )
            return None
        # surrogatepass: a server never delivers a lone surrogate, an in-process caller may.
        if len(text_data.encode(errors="surrogatepass")) > settings.CHAT_MAX_FRAME_BYTES:
            await self.close(code=protocol.CLOSE_FRAME_TOO_LARGE)
            return None
        try:
            return protocol.parse_client_frame(text_data, max_body=settings.CHAT_MAX_BODY)
        except protocol.ProtocolError as error:
            await self.send_frame(error.frame())
            return None

    async def post(self, command: protocol.SendMessage):
        """Fan the message out to the room now; hand it to the persistence queue after."""
        if command.id in self.recent:
            # A resend of a recent id is never fanned out or handed off twice: it gets the
            # first send's answer, once its hand-off has resolved (chat.recent).
            self.in_background(self.answer_resend(command.id))
            return
        if await self.refused(command):
            return
        assert self.identity is not None  # connect() refused anonymous sockets
        message = {
            "id": command.id,
            "room": self.room,
            "author": self.identity.username,
            "body": command.body,
            "sent_at": cursors.timestamp(datetime.now(UTC)),
        }
        try:
            offset = await offsets.assign(message)
        except (RedisError, OSError, offsets.NotSeeded):
            await self.send_unavailable(command.id)
            return
        numbered = {**message, "offset": offset}
        try:
            await self.channel_layer.group_send(
                groups.room(self.room),
                # Serialised once here, sent as is to every member of the room.
                {
                    "type": "room.message",
                    "frame": protocol.encode(protocol.message_frame(numbered)),
                },
            )
        except (RedisError, OSError, ChannelFull):
            with contextlib.suppress(RedisError, OSError):  # else it is trimmed in time
                await offsets.withdraw(message)
            await self.send_unavailable(command.id)
            return
        # Hand off in the background, so this socket's next frames (and the room's
        # messages to it) are not held up by the batch window.
        self.in_background(self.hand_off(numbered, self.recent.begin(command.id)))

    async def refused(self, command: protocol.SendMessage) -> bool:
        """Refuse ``command`` before anything is numbered or fanned out, and say why: its
        user is over their budget across all their sockets (chat.user_budget), or its id is
        another user's message (chat.claims)."""
        assert self.identity is not None  # connect() refused anonymous sockets
        try:
            within_budget = await user_budget.spend(self.identity.user_id, command.body)
            mine = within_budget and await belongs_to(command.id, self.identity.user_id)
        except (RedisError, OSError):
            await self.send_unavailable(command.id)
            return True
        if not within_budget:
            metrics.USER_BUDGET_REFUSALS.inc()
            detail = "Too many messages from this user; slow down."
            await self.send_frame(protocol.error_frame(protocol.RATE_LIMITED, detail, command.id))
        elif not mine:  # never fanned out, never handed off
            metrics.ID_CONFLICTS.inc()
            await self.send_frame(protocol.id_conflict_frame(command.id))
        return not mine

    def in_background(self, coroutine):
        task = asyncio.create_task(coroutine)
        self.handing_off.add(task)
        task.add_done_callback(self.handing_off.discard)

    async def hand_off(self, message: dict, outcome: Outcome):
        assert self.identity is not None
        record = {
            **message,
            "author_id": self.identity.user_id,
            "reply_channel": self.channel_name,
        }
        receipt = None
        try:
            await get_handoff().submit(record)
            receipt = receipts.issue(message, self.identity.user_id)
        except Unavailable:
            pass
        finally:
            outcome.set_result(receipt)  # answers the resends waiting for it, if any
        if receipt is None:
            await self.send_unavailable(message["id"])
            return
        metrics.MESSAGES_ACCEPTED.inc()
        await self.send_frame(protocol.accepted_frame(message["id"], receipt))

    async def answer_resend(self, message_id: str):
        receipt = await self.recent.outcome(message_id)
        if receipt is None:
            await self.send_unavailable(message_id)
        else:
            await self.send_frame(protocol.accepted_frame(message_id, receipt))

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
            self.outbox.put(protocol.encode(frame))

    async def close(self, code=None, reason=None):
        """After the frame being written, before the rest of the outbox; never twice."""
        if await self.outbox.stop():
            await super().close(code, reason)

    # Channel-layer events ----------------------------------------------------------------

    async def room_message(self, event):
        if self.connected:
            self.outbox.put(event["frame"])  # serialised once, by the sender's consumer

    async def message_persisted(self, event):
        """A frame per stored message; one event names all of a batch's from this socket
        (a worker of an earlier version, still draining, sends one per message: ``id``)."""
        for message_id in event["ids"] if "ids" in event else [event["id"]]:
            await self.send_frame(protocol.persisted_frame(message_id))

    # Access, as the HTTP side changes it (chat.accounts, chat.rooms) --------------------

    async def identity_revoked(self, event):
        """Logout, password change, deactivation, deletion: close if this socket's
        credential is among those revoked (None: all of the user's)."""
        assert self.identity is not None
        revoked = event["credentials"]
        if revoked is None or self.identity.credential in revoked:
            await self.shut(protocol.CLOSE_UNAUTHORIZED)

    async def access_revoked(self, event):
        """The user was removed from a private room: close if this socket is in it."""
        if event["room"] == self.room:
            await self.shut(protocol.CLOSE_FORBIDDEN)

    async def access_changed(self, event):
        """The room's access changed (it became private): look at the mirror again."""
        assert self.identity is not None
        try:
            verdict = await access.check(self.room, self.identity.user_id)
        except (RedisError, OSError):
            verdict = access.Verdict.UNKNOWN
        if verdict is access.Verdict.NOT_A_MEMBER:
            await self.shut(protocol.CLOSE_FORBIDDEN)
        elif verdict is not access.Verdict.ALLOWED:
            await self.shut(protocol.CLOSE_SERVER_ERROR)  # cannot tell: reconnect and see

    async def shut(self, code: int):
        """Close from the server's side; from now on nothing is sent or accepted here."""
        if self.connected:
            metrics.SOCKETS_CONNECTED.dec()
            self.connected = False
            await self.close(code=code)

    async def presence_join(self, event):
        await self.send_frame(protocol.presence_join_frame(event["user"]))

    async def presence_leave(self, event):
        await self.send_frame(protocol.presence_leave_frame(event["user"]))

    async def room_typing(self, event):
        assert self.identity is not None
        if event["user"] != self.identity.username:  # the others, not the typist's own tabs
            await self.send_frame(protocol.typing_frame(event["user"]))
