"""The consumers this project is measured against. Same protocol, same fan-out frames.

(a), (b) and (f) store the message first and fan it out after, as most tutorials do, so
every frame waits for PostgreSQL, and all hold database connections in the ASGI process;
(g) and (h) are (b) with Django's pool and with pgbouncer (their settings and environment:
``bench.stack.DESIGNS``). (e) stores nothing: the fan-out of the Channels documentation,
the ceiling of the whole stack.
"""

import json

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from chat import cursors, groups, protocol
from chat.models import Message


def store(user, room: str, command: protocol.SendMessage) -> dict:
    """Insert the message with the ORM, and return it as the fan-out carries it."""
    message = Message.objects.create(
        id=command.id, room=room, author=user, body=command.body, sent_at=timezone.now()
    )
    return {
        "id": command.id,
        "room": room,
        "author": user.get_username(),
        "body": message.body,
        "sent_at": cursors.timestamp(message.sent_at),
        "offset": None,  # no offsets in these designs
    }


class SyncOrmConsumer(WebsocketConsumer):
    """(a) A synchronous consumer: Channels runs every handler (connect, each frame, each
    fan-out event of every socket) on one shared thread, one at a time, because the ORM
    needs it. The INSERT holds up everything else the process does."""

    def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        if not self.scope["user"].is_authenticated or not protocol.is_valid_room(self.room):
            self.close()
            return
        self.group = groups.room(self.room)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()

    def disconnect(self, code):
        if hasattr(self, "group"):
            async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        try:
            command = protocol.parse_client_frame(text_data or "", max_body=settings.CHAT_MAX_BODY)
        except protocol.ProtocolError as error:
            self.send(text_data=json.dumps(error.frame()))
            return
        message = store(self.scope["user"], self.room, command)
        async_to_sync(self.channel_layer.group_send)(
            self.group, {"type": "room.message", "message": message}
        )

    def room_message(self, event):
        self.send(text_data=json.dumps(protocol.message_frame(event["message"])))


class AsyncOrmConsumer(AsyncWebsocketConsumer):
    """(b) An async consumer that sends each INSERT to a thread pool
    (``thread_sensitive=False``), so writes run in parallel: each pool thread opens and
    keeps its own connection, and a message waits for a free thread before fan-out."""

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        if not self.scope["user"].is_authenticated or not protocol.is_valid_room(self.room):
            await self.close()
            return
        self.group = groups.room(self.room)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            command = protocol.parse_client_frame(text_data or "", max_body=settings.CHAT_MAX_BODY)
        except protocol.ProtocolError as error:
            await self.send(text_data=json.dumps(error.frame()))
            return
        message = await self.store(command)
        await self.channel_layer.group_send(
            self.group, {"type": "room.message", "message": message}
        )

    async def store(self, command: protocol.SendMessage) -> dict:
        return await database_sync_to_async(store, thread_sensitive=False)(
            self.scope["user"], self.room, command
        )

    async def room_message(self, event):
        await self.send(text_data=json.dumps(protocol.message_frame(event["message"])))


def store_and_close(user, room: str, command: protocol.SendMessage) -> dict:
    """The "manual cleanup" decorator's effect: a fresh connection for every ORM call,
    closed as soon as it is done, so none is left behind by a thread."""
    close_old_connections()
    try:
        return store(user, room, command)
    finally:
        connection.close()


class ManualCloseConsumer(AsyncOrmConsumer):
    """(f) (b) with the cleanup many articles recommend: ``close_old_connections()``
    before and ``connection.close()`` after each ORM call."""

    async def store(self, command: protocol.SendMessage) -> dict:
        return await database_sync_to_async(store_and_close, thread_sensitive=False)(
            self.scope["user"], self.room, command
        )


class BareConsumer(AsyncOrmConsumer):
    """(e) The "Channel Layer" snippet of Channels' tutorial: ``group_send`` and nothing
    else. Nothing is stored; the frame is the same as the others'."""

    async def store(self, command: protocol.SendMessage) -> dict:
        return {
            "id": command.id,
            "room": self.room,
            "author": self.scope["user"].get_username(),
            "body": command.body,
            "sent_at": cursors.timestamp(timezone.now()),
            "offset": None,
        }
