"""History cursors: a position in a room's ``(sent_at, id, author)`` order, as one opaque
string.

A cursor is ``base64url("<sent_at>|<id>|<author>")`` without padding, with ``sent_at``,
``id`` and ``author`` exactly as a ``message`` frame carries them, so a client can make the
cursor of the last message it saw and ask for what came ``after=`` it (docs/protocol.md).
A message is known by its author and id, so the three name one message: two authors'
messages under one id and one ``sent_at`` still have positions of their own. The author may
be left out (``"<sent_at>|<id>"``, the cursors of earlier versions): the position is then
after (or, for ``before=``, before) every author's message under that ``sent_at`` and id.
"""

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import NamedTuple


class Position(NamedTuple):
    sent_at: datetime
    id: uuid.UUID
    author: str | None = None


def encode(sent_at: str, message_id: str, author: str | None = None) -> str:
    parts = [sent_at, message_id] if author is None else [sent_at, message_id, author]
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode(cursor: str) -> Position:
    """The position a cursor names; ValueError if it is not a cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        sent_at, message_id, *author = raw.split("|", 2)
        position = Position(
            datetime.fromisoformat(sent_at), uuid.UUID(message_id), author[0] if author else None
        )
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a cursor: {cursor[:80]!r}") from exc
    if position.sent_at.tzinfo is None:
        raise ValueError("a cursor's time must carry its UTC offset")
    if position.author == "":
        raise ValueError("a cursor's author, if given, is a username")
    return position


def timestamp(moment: datetime) -> str:
    """``sent_at`` as frames and cursors write it: ISO-8601 UTC with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
