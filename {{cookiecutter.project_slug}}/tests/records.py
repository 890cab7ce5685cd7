"""Hand-off records as the ASGI process queues them (``chat.consumers``), for the worker's
tests to queue or store."""

import uuid
from datetime import UTC, datetime


def batch(author, size: int = 20, room: str = "worker-tests") -> list[dict]:
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    return [
        {
            "id": str(uuid.uuid4()),
            "room": room,
            "author": author.username,
            "author_id": author.pk,
            "body": f"message {n}",
            "sent_at": now,
            "reply_channel": "",
        }
        for n in range(size)
    ]
