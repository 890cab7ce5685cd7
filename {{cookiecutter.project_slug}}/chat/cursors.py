"""History cursors: a position in a room's ``(sent_at, id)`` order, as one opaque string.

A cursor is ``base64url("<sent_at>|<id>")`` without padding, with ``sent_at`` and ``id``
exactly as a ``message`` frame carries them, so a client can make the cursor of the last
message it saw and ask for what came ``after=`` it (docs/protocol.md).
"""

import base64
import binascii
import uuid
from datetime import UTC, datetime


def encode(sent_at: str, message_id: str) -> str:
    raw = f"{sent_at}|{message_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor names; ValueError if it is not a cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        sent_at, message_id = raw.split("|")
        position = datetime.fromisoformat(sent_at), uuid.UUID(message_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a cursor: {cursor[:80]!r}") from exc
    if position[0].tzinfo is None:
        raise ValueError("a cursor's time must carry its UTC offset")
    return position


def timestamp(moment: datetime) -> str:
    """``sent_at`` as frames and cursors write it: ISO-8601 UTC with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
