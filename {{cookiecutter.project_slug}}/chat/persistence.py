"""Store a batch of hand-off records: one statement per batch, idempotent, bad rows parked.

``INSERT ... ON CONFLICT DO NOTHING`` makes a redelivered or resent message a no-op: the
only unique key a new row can collide with is (author, id) (``Message``), so each accepted
(author, id) is stored exactly once. Another author's record under an already stored id
(sent once the id's claim in Redis had run out, see ``chat.claims``) is a message of its
own, stored as its own row: the first author's row is never touched, and each sender hears
``persisted`` about its own message only.

The usual batch is one round trip: one statement (``insert_statement``), which is its own
transaction, so there is no ``BEGIN`` or ``COMMIT`` to send. Its rows go as one array per
column (``unnest``), sent apart from the statement in psycopg's binary format
(``server_binding_cursor``): Django's own cursors write every value into the SQL text in
Python, which took about a third of the CPU the worker spent storing a batch of 100.
A malformed record (no id, a date that does not parse) never reaches PostgreSQL: it is
parked in the dead-letter table, in a statement of its own. The worker acknowledges the
batch only after both: redelivered, each is a no-op.

A row PostgreSQL refuses (a value it cannot take, say) fails the whole statement: the batch
is then stored again, in one transaction, row by row under savepoints, and each refused
row goes to the dead-letter table with the reason. Django creates foreign keys
``DEFERRABLE INITIALLY DEFERRED``; on that path they are made immediate, so that a bad row
fails its own statement, not the transaction's ``COMMIT``.

A deleted user's messages go with them (``Message.author`` cascades): those still on their
way when the account was deleted are discarded here, not dead-lettered. The statement locks
the authors' rows (``FOR KEY SHARE``) and inserts only the rows of those it found, so a
deletion either happened before (its messages are discarded) or waits for the commit (and
cascades to them).
"""

import contextlib
import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, connection, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import Field
from django.utils import timezone

from chat.models import DeadLetter, Message


class Row(NamedTuple):
    """A message as the statement takes it: ``Message``'s columns (by attribute name)."""

    id: uuid.UUID
    room: str
    author_id: int
    body: str
    sent_at: datetime
    offset: int | None


@dataclass
class StoredBatch:
    stored: list[dict] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    discarded: list[dict] = field(default_factory=list)  # their authors were deleted


def to_row(record: dict) -> Row:
    """Build a Row from a record, or raise ValueError/KeyError/TypeError if malformed."""
    return Row(
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
    rows: list[tuple[dict, Row]] = []
    malformed: list[DeadLetter] = []
    for record in records:
        try:
            rows.append((record, to_row(record)))
        except (KeyError, TypeError, ValueError) as exc:
            malformed.append(dead_letter(record, f"malformed record: {exc!r}"))
    try:
        result = in_one_statement(rows)
    except (DataError, IntegrityError):
        # A row was refused: the statement is rolled back, nothing of the batch is stored.
        return row_by_row(rows, malformed)
    park(malformed)
    result.dead = malformed
    return result


def in_one_statement(rows: list[tuple[dict, Row]]) -> StoredBatch:
    """The usual path: the whole batch in one statement, or nothing if PostgreSQL refuses
    a row."""
    if not rows:
        return StoredBatch()
    # In autocommit, as in the worker, the statement is its own transaction; inside a
    # caller's transaction (a test's, say) it takes a savepoint, so that a refusal rolls
    # back the batch alone.
    scope = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with scope, server_binding_cursor() as cursor:
        cursor.execute(insert_statement(), parameters([row for _, row in rows]))
        existing = {author_id for (author_id,) in cursor.fetchall()}
    result = StoredBatch()
    for record, row in rows:
        (result.stored if row.author_id in existing else result.discarded).append(record)
    return result


def row_by_row(rows: list[tuple[dict, Row]], malformed: list[DeadLetter]) -> StoredBatch:
    """After a refusal: each row under its own savepoint, the refused ones dead-lettered."""
    result = StoredBatch(dead=list(malformed))
    with transaction.atomic(), server_binding_cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for record, row in rows:
            try:
                with transaction.atomic():
                    cursor.execute(insert_statement(), parameters([row]))
                    author_exists = bool(cursor.fetchall())
            except (DataError, IntegrityError) as exc:
                result.dead.append(dead_letter(record, f"refused by PostgreSQL: {exc}"))
            else:
                (result.stored if author_exists else result.discarded).append(record)
        park(result.dead)
    return result


def park(dead: list[DeadLetter]) -> None:
    if dead:
        DeadLetter.objects.bulk_create(dead, ignore_conflicts=True)


def server_binding_cursor():
    """A cursor of the default database that sends parameters apart from the SQL, wrapped
    as Django wraps its own (database errors as ``django.db``'s, DEBUG's query log).
    Statements are never prepared (Django's ``prepare_threshold`` is unset), so this works
    behind PgBouncer's transaction pooling too."""
    connection.ensure_connection()
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    # django-stubs know neither the cursor's arguments nor that Django wraps such cursors.
    return wrap(ServerBindingCursor(connection.connection))  # type: ignore[call-arg, arg-type]


@functools.cache
def insert_statement() -> str:
    """``INSERT ... ON CONFLICT DO NOTHING`` of the rows whose authors exist, locking those
    authors (``FOR KEY SHARE``) until it commits; it returns the authors it found.

    Its parameters (``parameters``), in binary (``%b``): the authors' keys, the time
    stored, then one array per column of ``Row``.
    """
    qn = connection.ops.quote_name
    user = get_user_model()._meta
    users, user_key = qn(user.db_table), qn(str(user.pk.column))
    by_attname = {f.attname: f for f in Message._meta.concrete_fields}
    fields = [by_attname[name] for name in Row._fields]
    columns = ", ".join(qn(str(f.column)) for f in fields)
    arrays = ", ".join(f"%b::{array_type(f)}" for f in fields)
    stored_at = by_attname["stored_at"]
    table, stored_at_column = qn(Message._meta.db_table), qn(str(stored_at.column))
    return (
        f"WITH authors AS (SELECT {user_key} AS key FROM {users}"
        f" WHERE {user_key} = ANY(%b) FOR KEY SHARE)"
        f", stored AS (INSERT INTO {table} ({columns}, {stored_at_column})"
        f" SELECT *, %b::{stored_at.db_type(connection)} FROM unnest({arrays}) AS batch ({columns})"
        f" WHERE batch.{qn('author_id')} IN (SELECT key FROM authors) ON CONFLICT DO NOTHING)"
        f" SELECT key FROM authors"
    )


def array_type(column: Field) -> str:
    """An array of ``column``'s type, without its length: a cast to ``varchar(64)`` would cut
    a longer value short, where the INSERT refuses it."""
    return f"{column.db_type(connection)}".split("(")[0] + "[]"


def parameters(rows: list[Row]) -> list:
    """``insert_statement``'s parameters for ``rows``."""
    authors = sorted({row.author_id for row in rows})
    return [authors, timezone.now(), *map(list, zip(*rows, strict=True))]
