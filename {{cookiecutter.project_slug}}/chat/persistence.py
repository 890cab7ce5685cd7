"""Store a batch of hand-off records: one INSERT per batch, idempotent, bad rows parked.

``INSERT ... ON CONFLICT DO NOTHING`` (``bulk_create(ignore_conflicts=True)``) makes a
redelivered or resent message a no-op: the only unique key a new row can collide with is
(author, id) (``Message``), so each accepted (author, id) is stored exactly once. Another
author's record under an already stored id (sent once the id's claim in Redis had run out,
see ``chat.claims``) is a message of its own, stored as its own row: the first author's row
is never touched, and each sender hears ``persisted`` about its own message only.

A row PostgreSQL refuses (a value it cannot take, say) would fail the whole statement, so
the batch is then retried row by row under savepoints, and each refused row goes to the
dead-letter table with the reason. All of it commits together: the worker acknowledges the
batch only after that commit.

Django creates foreign keys ``DEFERRABLE INITIALLY DEFERRED``; they are made immediate
here, so a bad row fails its own statement instead of the whole batch's COMMIT.

A deleted user's messages go with them (``Message.author`` cascades): those still on their
way when the account was deleted are discarded here, not dead-lettered. The authors' rows
are locked (``FOR KEY SHARE``) for the batch's transaction, so a deletion either happened
before (its messages are discarded) or waits for the commit (and cascades to them).
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, connection, transaction

from chat.models import DeadLetter, Message


@dataclass
class StoredBatch:
    stored: list[dict] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    discarded: list[dict] = field(default_factory=list)  # their authors were deleted


def of_existing_authors(rows: list[tuple[dict, Message]]) -> tuple[list, list[dict]]:
    """The rows whose authors exist, with those authors locked against deletion until the
    transaction ends (``FOR KEY SHARE``: other updates of the row, a login, do not wait);
    and the records of the rest."""
    author_ids = sorted({message.author_id for _, message in rows})
    existing: set[int] = set()
    if author_ids:
        user = get_user_model()._meta
        table, pk = (
            connection.ops.quote_name(user.db_table),
            connection.ops.quote_name(str(user.pk.column)),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk} FROM {table} WHERE {pk} = ANY(%s) FOR KEY SHARE", [author_ids]
            )
            existing = {row[0] for row in cursor.fetchall()}
    kept = [(record, message) for record, message in rows if message.author_id in existing]
    gone = [record for record, message in rows if message.author_id not in existing]
    return kept, gone


def to_message(record: dict) -> Message:
    """Build a Message from a record, or raise ValueError/KeyError/TypeError if malformed."""
    return Message(
        id=uuid.UUID(record["id"]),
        room=record["room"],
        author_id=int(record["author_id"]),
        body=record["body"],
        sent_at=datetime.fromisoformat(record["sent_at"]),
        offset=record.get("offset"),  # none in records queued before offsets existed
    )


def dead_letter(record, reason: str) -> DeadLetter:
    """A dead letter keyed, like a message, by the record's (author, id), where it has them."""
    fields = record if isinstance(record, dict) else {}
    try:
        message_id = uuid.UUID(fields.get("id"))
    except (TypeError, ValueError, AttributeError):
        message_id = None
    author_id = fields.get("author_id")
    if not (isinstance(author_id, int) and -(2**63) <= author_id < 2**63):  # not a bigint
        author_id = None
    return DeadLetter(message_id=message_id, author_id=author_id, record=record, reason=reason)


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
        rows, result.discarded = of_existing_authors(rows)
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
