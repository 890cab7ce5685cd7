"""PostgreSQL's own ceiling: the worker's rows written straight from psycopg, no worker.

The persistence worker is measured against what the database itself takes on the same
machine in the same run: the same rows into the same table (its unique key and indexes
included), from as many connections as the worker's budget allows, each connection writing
its share in one transaction. Two ways, and the faster is the ceiling:

- ``insert``: multi-row ``INSERT ... ON CONFLICT DO NOTHING`` (the worker's own statement),
  ``BATCH`` rows a statement, the rows passed as one array per column (``unnest``) so that
  the client builds one parameter per column, not one per value;
- ``copy``: ``COPY ... FROM STDIN`` (binary), which cannot skip a conflicting row: an upper
  bound for a worker that must stay idempotent.

The rows are deleted afterwards: the worker then stores the very same rows. No Python is
timed but psycopg's own (its C extension builds the COPY stream), so the ratio says how
much of the database's rate the worker's Python leaves on the table.
"""

import threading
import time
import uuid
from datetime import datetime

import psycopg

from chat.models import Message

BATCH = 1000  # rows per INSERT statement
COLUMNS = ("id", "room", "author_id", "body", "sent_at", "offset", "stored_at")


def rows_of(records: list[dict]) -> list[tuple]:
    """The table's rows for hand-off records, as the worker would store them."""
    now = datetime.now().astimezone()
    return [
        (
            uuid.UUID(r["id"]),
            r["room"],
            int(r["author_id"]),
            r["body"],
            datetime.fromisoformat(r["sent_at"]),
            r.get("offset"),
            now,
        )
        for r in records
    ]


def column_types(cursor: psycopg.Cursor) -> list[str]:
    """The PostgreSQL type of each of ``COLUMNS`` (``author_id`` follows the user model's
    key: ``integer`` for Django's own)."""
    cursor.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = %s::regclass",
        [Message._meta.db_table],
    )
    types = dict(cursor.fetchall())
    return [types[column] for column in COLUMNS]


def insert(cursor: psycopg.Cursor, rows: list[tuple], types: list[str]) -> None:
    table = Message._meta.db_table
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    statement = (
        f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"
    )
    for first in range(0, len(rows), BATCH):
        batch = rows[first : first + BATCH]
        cursor.execute(statement, [list(column) for column in zip(*batch, strict=True)])


def copy(cursor: psycopg.Cursor, rows: list[tuple], types: list[str]) -> None:
    table = Message._meta.db_table
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as stream:
        stream.set_types(types)
        for row in rows:
            stream.write_row(row)


WAYS = {"insert": insert, "copy": copy}


def timed(conninfo: str, way: str, rows: list[tuple], connections: int) -> float:
    """Seconds for ``connections`` connections, opened beforehand, to write ``rows`` split
    between them, each its share in one transaction."""
    shares = [rows[n::connections] for n in range(connections)]
    opened = [psycopg.connect(conninfo) for _ in shares]
    with opened[0].cursor() as cursor:
        types = column_types(cursor)
    opened[0].commit()  # so that each share is a transaction of its own, committed
    errors: list[BaseException] = []
    start = threading.Barrier(len(shares) + 1)

    def write(conn: psycopg.Connection, share: list[tuple]) -> None:
        try:
            start.wait()
            with conn.transaction(), conn.cursor() as cursor:
                WAYS[way](cursor, share, types)
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=pair) for pair in zip(opened, shares, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    finally:
        for conn in opened:
            conn.close()
    if errors:
        raise errors[0]
    return elapsed


def delete(conninfo: str, rows: list[tuple]) -> None:
    """Remove the rows written (by the message's id: the benchmark's ids are fresh uuids)."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            f"DELETE FROM {Message._meta.db_table} WHERE id = ANY(%s)", [[r[0] for r in rows]]
        )


def measure(conninfo: str, records: list[dict], connections: int) -> dict:
    """Rows a second for each way, and the ceiling (the faster); the table is left as it
    was: the records must not be stored yet."""
    rows = rows_of(records)
    rates = {}
    for way in WAYS:
        rates[way] = round(len(rows) / timed(conninfo, way, rows, connections), 1)
        delete(conninfo, rows)
    best = max(rates, key=lambda way: rates[way])
    return {
        "connections": connections,
        "rows": len(rows),
        "insert_per_s": rates["insert"],
        "copy_per_s": rates["copy"],
        "ceiling_way": best,
        "ceiling_per_s": rates[best],
    }
