"""A room's history, oldest first, with the requesting user's own accepted messages in it.

Storage is asynchronous, so a message can be accepted (the broker has it) and not stored
yet. Its sender's receipt brings it in from the pending store, marked ``persisted: false``;
once stored, it appears once, from PostgreSQL. The pending store is read before the
database: the worker commits, then clears the pending entry, so a message is always found
in one place or the other.
"""

from dataclasses import dataclass

from django.db.models import Q

from chat import cursors, receipts
from chat.models import Message

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class BadParameter(ValueError):
    def __init__(self, parameter: str, detail: str):
        super().__init__(detail)
        self.parameter = parameter
        self.detail = detail


@dataclass(frozen=True)
class Query:
    limit: int = DEFAULT_LIMIT
    before: str | None = None
    after: str | None = None

    @classmethod
    def from_params(cls, params) -> "Query":
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
        for name in ("before", "after"):
            if name in params:
                try:
                    cursors.decode(params[name])
                except ValueError:
                    raise BadParameter(name, f"{name} is not a valid cursor.") from None
        return cls(limit, params.get("before"), params.get("after"))


@dataclass(frozen=True)
class Page:
    messages: list[dict]
    next: str | None
    consistency: str  # "complete": every receipt's message is stored; "pending" otherwise


def as_json(message: Message) -> dict:
    return {
        "id": str(message.id),
        "room": message.room,
        "author": message.author.get_username(),
        "body": message.body,
        "sent_at": cursors.timestamp(message.sent_at),
        "persisted": True,
    }


def pending_as_json(record: dict) -> dict:
    return {key: record[key] for key in ("id", "room", "author", "body", "sent_at")} | {
        "persisted": False
    }


def window(room: str, query: Query) -> tuple[list[Message], str | None]:
    """One page of stored messages, oldest first, and the cursor that continues it.

    With ``after=`` the page walks forward (catch-up) and ``next`` is the next ``after=``;
    otherwise it walks back from the newest (or from ``before=``) and ``next`` is the next
    ``before=``.
    """
    stored = Message.objects.filter(room=room).select_related("author")
    if query.after:
        sent_at, message_id = cursors.decode(query.after)
        stored = stored.filter(Q(sent_at__gt=sent_at) | Q(sent_at=sent_at, id__gt=message_id))
    if query.before:
        sent_at, message_id = cursors.decode(query.before)
        stored = stored.filter(Q(sent_at__lt=sent_at) | Q(sent_at=sent_at, id__lt=message_id))
    forward = query.after is not None
    ordered = stored.order_by(*(("sent_at", "id") if forward else ("-sent_at", "-id")))
    rows = list(ordered[: query.limit + 1])
    more, rows = len(rows) > query.limit, rows[: query.limit]
    if not forward:
        rows.reverse()
    if not more:
        return rows, None
    edge = rows[-1] if forward else rows[0]
    return rows, cursors.encode(cursors.timestamp(edge.sent_at), str(edge.id))


def page(room: str, user_id: int, query: Query, receipts_header: str = "") -> Page:
    named = receipts.verified_ids(receipts_header, user_id, room)
    waiting = {record["id"]: record for record in receipts.pending(named)}
    rows, following = window(room, query)
    by_id = {str(m.id): as_json(m) for m in rows}
    named_stored = Message.objects.filter(room=room, id__in=named).select_related("author")
    by_id.update({str(m.id): as_json(m) for m in named_stored})
    for message_id, record in waiting.items():
        by_id.setdefault(message_id, pending_as_json(record))
    stored_ids = {m["id"] for m in by_id.values() if m["persisted"]}
    complete = all(message_id in stored_ids for message_id in named)
    messages = sorted(by_id.values(), key=lambda m: (m["sent_at"], m["id"]))
    return Page(messages, following, "complete" if complete else "pending")
