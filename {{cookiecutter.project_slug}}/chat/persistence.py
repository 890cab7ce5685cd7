"""Store a batch of hand-off records: one INSERT per batch, idempotent, bad rows parked.

``INSERT ... ON CONFLICT (id) DO NOTHING`` (``bulk_create(ignore_conflicts=True)``) makes a
redelivered or resent message a no-op. A row PostgreSQL refuses (an author that no longer
exists, say) would fail the whole statement, so the batch is then retried row by row under
savepoints, and each refused row goes to the dead-letter table with the reason. All of it
commits together: the worker acknowledges the batch only after that commit.

Django creates foreign keys ``DEFERRABLE INITIALLY DEFERRED``; they are made immediate
here, so a bad row fails its own statement instead of the whole batch's COMMIT.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DataError, IntegrityError, connection, transaction

from chat.models import DeadLetter, Message


@dataclass
class StoredBatch:
    stored: list[dict] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def to_message(record: dict) -> Message:
    """Build a Message from a record, or raise ValueError/KeyError/TypeError if malformed."""
    return Message(
        id=uuid.UUID(record["id"]),
        room=record["room"],
        author_id=int(record["author_id"]),
        body=record["body"],
        sent_at=datetime.fromisoformat(record["sent_at"]),
    )


def dead_letter(record, reason: str) -> DeadLetter:
    message_id = record.get("id") if isinstance(record, dict) else None
    try:
        message_id = uuid.UUID(message_id)
    except (TypeError, ValueError):
        message_id = None
    return DeadLetter(message_id=message_id, record=record, reason=reason)


def store_batch(records: list[dict]) -> StoredBatch:
    result = StoredBatch()
    rows: list[tuple[dict, Message]] = []
    for record in records:
        try:
            rows.append((record, to_message(record)))
        except (KeyError, TypeError, ValueError) as exc:
            result.dead.append(dead_letter(record, f"malformed record: {exc!r}"))

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        try:
            with transaction.atomic():
                Message.objects.bulk_create([m for _, m in rows], ignore_conflicts=True)
            result.stored = [record for record, _ in rows]
        except (DataError, IntegrityError):
            for record, message in rows:
                try:
                    with transaction.atomic():
                        Message.objects.bulk_create([message], ignore_conflicts=True)
                except (DataError, IntegrityError) as exc:
                    result.dead.append(dead_letter(record, f"refused by PostgreSQL: {exc}"))
                else:
                    result.stored.append(record)
        if result.dead:
            DeadLetter.objects.bulk_create(result.dead, ignore_conflicts=True)
    return result
