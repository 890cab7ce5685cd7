from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Coalesce

from chat import protocol


class Message(models.Model):
    """A stored chat message.

    A message is known by its author and the client's UUID (docs/protocol.md): the pair is
    unique, so storing the same message twice is impossible by construction, whatever the
    broker redelivers or the client resends; and another user's message under the same id
    (sent once the id's claim had run out, ``chat.claims``) is a row of its own, never
    stored over the first. The UUID alone is not unique, so it is not the primary key.
    """

    key = models.BigAutoField(
        primary_key=True, help_text="The row's own key; the message's is (author, id)."
    )
    id = models.UUIDField(help_text="The client's UUID, unique per author.")
    room = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.TextField()
    sent_at = models.DateTimeField(help_text="Set by the ASGI process that accepted it.")
    offset = models.BigIntegerField(
        null=True,
        help_text="Its place in the room, from Redis at fan-out (chat/offsets.py); none for "
        "messages accepted before offsets existed.",
    )
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # id first: the index also serves lookups by id alone.
            models.UniqueConstraint(fields=["id", "author"], name="chat_message_author_id_once")
        ]
        indexes = [
            models.Index(fields=["room", "sent_at", "id"], name="chat_message_room_order"),
            models.Index(fields=["room", "offset"], name="chat_message_room_offset"),
        ]

    def __str__(self):
        return f"{self.room}/{self.author_id}/{self.id}"


class DeadLetter(models.Model):
    """A hand-off record the worker could not store, kept with the reason.

    One bad row must never block the queue: its batch stores the good rows and parks the
    bad one here for a human to look at. A message is known by (author, id), and so is its
    dead letter: parked once however often it is redelivered, and one author's never
    hides another's under the same id.
    """

    message_id = models.UUIDField(null=True)
    author_id = models.BigIntegerField(
        null=True, help_text="The record's author, if it names one (the user may be gone)."
    )
    record = models.JSONField()
    reason = models.TextField()
    failed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A record without an author is parked once per id, as (id, 0).
            models.UniqueConstraint(
                Coalesce("author_id", 0), "message_id", name="chat_deadletter_once"
            )
        ]

    def __str__(self):
        return f"{self.message_id}: {self.reason[:60]}"


room_name = RegexValidator(
    rf"^{protocol.ROOM_PATTERN.pattern}\Z", "Letters, digits, - and _ only, at most 64 characters."
)


class Room(models.Model):
    """A room with an owner. A private room admits its members only (docs/protocol.md).

    A room without a row here is public: any logged-in user may join it. The WebSocket side
    never reads this table: it reads the mirror in Redis (``chat.access``), rewritten from
    here whenever a room or its members change (``chat.rooms``).
    """

    name = models.CharField(max_length=64, unique=True, validators=[room_name])
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_rooms",
        help_text="Empty once the owner's account is deleted; the room stays private.",
    )
    private = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A user admitted to a private room (the owner is one too)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_memberships"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_membership_once")
        ]

    def __str__(self):
        return f"{self.room_id}/{self.user_id}"


class ApiKey(models.Model):
    """A key a non-browser client trades for WebSocket tickets (``POST /api/ws-tickets`` with
    ``Authorization: Token <key>``).

    Only the key's SHA-256 is stored: ``manage.py apikey`` shows the key once. Keys are
    random 256-bit strings, so a plain hash is enough (nothing to brute-force).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    prefix = models.CharField(max_length=8, help_text="The key's first characters.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.prefix}… ({self.user_id})"
