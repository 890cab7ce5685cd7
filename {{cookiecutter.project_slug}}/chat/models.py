from django.conf import settings
from django.db import models


class Message(models.Model):
    """A stored chat message.

    The primary key is the client's UUID: storing the same message twice is impossible by
    construction, whatever the broker redelivers or the client resends.
    """

    id = models.UUIDField(primary_key=True)
    room = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.TextField()
    sent_at = models.DateTimeField(help_text="Set by the ASGI process that accepted it.")
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["room", "sent_at", "id"], name="chat_message_room_order")]

    def __str__(self):
        return f"{self.room}/{self.id}"


class DeadLetter(models.Model):
    """A hand-off record the worker could not store, kept with the reason.

    One bad row must never block the queue: its batch stores the good rows and parks the
    bad one here for a human to look at.
    """

    message_id = models.UUIDField(null=True, unique=True)
    record = models.JSONField()
    reason = models.TextField()
    failed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.message_id}: {self.reason[:60]}"
