"""Store a batch of hand-off records: one INSERT per batch, idempotent, bad rows parked.

``INSERT ... ON CONFLICT DO NOTHING`` (``bulk_create(ignore_conflicts=True)``) makes a
redelivered or resent message a no-op: the only unique key a new row can collide with is
(author, id) (``Message``), so each accepted (author, id) is stored exactly once. Another
author's record under an already stored id (sent once the id's claim in Redis had run out,
see ``chat.claims``) is a message of its own, stored as its own row: the first author's row
is never touched, and each sender hears ``persisted`` about its own message only.

A row PostgreSQL refuses (a value it cannot take, say) fails the whole statement, and so
the whole transaction: the batch is then stored again, in a new transaction, row by row
under savepoints, and each refused row goes to the dead-letter table with the reason. Either
way all of it commits together: the worker acknowledges the batch only after that commit.
The usual batch, where nothing is refused, pays for no savepoint: four statements (``BEGIN``,
the lock below, the ``INSERT``, ``COMMIT``), where a savepoint around the ``INSERT`` and
``SET CONSTRAINTS`` cost three round trips more.

Django creates foreign keys ``DEFERRABLE INITIALLY DEFERRED``. On the row-by-row path they
are made immediate, so a bad row fails its own statement instead of the whole batch's
COMMIT; on the usual path a refusal at COMMIT sends the batch down the row-by-row path too.

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
    rows: list[tuple[dict, Message]] = []
    malformed: list[DeadLetter] = []
    for record in records:
        try:
            rows.append((record, to_message(record)))
        except (KeyError, TypeError, ValueError) as exc:
            malformed.append(dead_letter(record, f"malformed record: {exc!r}"))
    try:
        return in_one_statement(rows, malformed)
    except (DataError, IntegrityError):
        # A row was refused: its transaction is rolled back, nothing of the batch is stored.
        return row_by_row(rows, malformed)


def in_one_statement(rows: list[tuple[dict, Message]], malformed: list[DeadLetter]) -> StoredBatch:
    """The usual path: the whole batch in one INSERT, or nothing if PostgreSQL refuses a row."""
    with transaction.atomic():
        rows, discarded = of_existing_authors(rows)
        Message.objects.bulk_create([m for _, m in rows], ignore_conflicts=True)
        park(malformed)
    return StoredBatch(stored=[record for record, _ in rows], dead=malformed, discarded=discarded)


def row_by_row(rows: list[tuple[dict, Message]], malformed: list[DeadLetter]) -> StoredBatch:
    """After a refusal: each row under its own savepoint, the refused ones dead-lettered."""
    result = StoredBatch(dead=list(malformed))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        rows, result.discarded = of_existing_authors(rows)
        for record, message in rows:
            try:
                with transaction.atomic():
                    Message.objects.bulk_create([message], ignore_conflicts=True)
            except (DataError, IntegrityError) as exc:
                result.dead.append(dead_letter(record, f"refused by PostgreSQL: {exc}"))
            else:
                result.stored.append(record)
        park(result.dead)
    return result


def park(dead: list[DeadLetter]) -> None:
    if dead:
        DeadLetter.objects.bulk_create(dead, ignore_conflicts=True)
