"""A room's history, oldest first, with the requesting user's own accepted messages in it.

Two ways to walk it: by cursor (``before=``/``after=``, by ``sent_at``, then id and author:
see ``chat.cursors``), and by offset (``after_offset=``: every message after the last one a
reconnecting client saw, including those the worker has not stored yet, from the room's
recent window in Redis: see ``chat.offsets``).

Storage is asynchronous, so a message can be accepted (the broker has it) and not stored
yet. Its sender's receipt brings it in from the pending store, marked ``persisted: false``;
once stored, it appears once, from PostgreSQL. The pending store is read before the
database: the worker commits, then clears the pending entry, so a message is always found
in one place or the other.

So a receipt whose message is in neither place names a message that vanished: accepted, then
lost with its pending copy before the worker stored it (a Redis that restarted without
persistence held both). The page names such ids (``unknown``), and the sender, who still has
the body, resends it under the same id. A message PostgreSQL refused (a dead letter) is not
unknown: resending it would be refused again.
"""

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q

from chat import cursors, offsets, pending, receipts
from chat.models import DeadLetter, Message

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
OFFSET = re.compile(r"[0-9]{1,18}")


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
    after_offset: int | None = None

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
        after_offset = None
        if "after_offset" in params:
            if not OFFSET.fullmatch(params["after_offset"]):
                raise BadParameter("after_offset", "after_offset must be an offset (0 or more).")
            if "before" in params or "after" in params:
                raise BadParameter(
                    "after_offset", "after_offset cannot be combined with before or after."
                )
            after_offset = int(params["after_offset"])
        return cls(limit, params.get("before"), params.get("after"), after_offset)


@dataclass(frozen=True)
class Page:
    messages: list[dict]
    next: str | None
    consistency: str  # "complete": every receipt's message is stored; "pending" otherwise
    unknown: list[str]  # ids of the receipts whose message is neither stored nor pending


def as_json(message: Message) -> dict:
    return {
        "id": str(message.id),
        "room": message.room,
        "author": message.author.get_username(),
        "body": message.body,
        "sent_at": cursors.timestamp(message.sent_at),
        "offset": message.offset,
        "persisted": True,
    }


def pending_as_json(record: dict) -> dict:
    return {key: record[key] for key in ("id", "room", "author", "body", "sent_at")} | {
        "offset": record.get("offset"),
        "persisted": False,
    }


def window(room: str, query: Query) -> tuple[list[Message], str | None]:
    """One page of stored messages, oldest first, and the cursor that continues it.

    With ``after=`` the page walks forward (catch-up) and ``next`` is the next ``after=``;
    otherwise it walks back from the newest (or from ``before=``) and ``next`` is the next
    ``before=``.
    """
    stored = Message.objects.filter(room=room).select_related("author")
    if query.after:
        stored = stored.filter(beyond(cursors.decode(query.after), "gt"))
    if query.before:
        stored = stored.filter(beyond(cursors.decode(query.before), "lt"))
    forward = query.after is not None
    order = ("sent_at", "id", author_name())
    ordered = stored.order_by(*(order if forward else [f"-{field}" for field in order]))
    rows = list(ordered[: query.limit + 1])
    more, rows = len(rows) > query.limit, rows[: query.limit]
    if not forward:
        rows.reverse()
    if not more:
        return rows, None
    edge = rows[-1] if forward else rows[0]
    return rows, cursors.encode(
        cursors.timestamp(edge.sent_at), str(edge.id), edge.author.get_username()
    )


def author_name() -> str:
    """The author's username, as a lookup from a message."""
    return f"author__{get_user_model().USERNAME_FIELD}"


def beyond(position: cursors.Position, direction: str) -> Q:
    """The messages after (``gt``) or before (``lt``) ``position`` in ``(sent_at, id,
    author)`` order; a position without an author is past every author's message there."""
    sent_at, message_id, author = position
    past = Q(**{f"sent_at__{direction}": sent_at}) | Q(
        sent_at=sent_at, **{f"id__{direction}": message_id}
    )
    if author is None:
        return past
    return past | Q(sent_at=sent_at, id=message_id, **{f"{author_name()}__{direction}": author})


def since(room: str, after_offset: int, limit: int) -> tuple[list[dict], str | None]:
    """Up to ``limit`` messages with an offset above ``after_offset``, stored or not, and
    the ``after_offset=`` that continues them.

    The stored ones come from PostgreSQL, the rest from the recent window; the lowest
    ``limit + 1`` stored offsets are enough, since whatever the window adds among them only
    pushes later ones out of the page.
    """
    stored = (
        Message.objects.filter(room=room, offset__gt=after_offset)
        .select_related("author")
        .order_by("offset")[: limit + 1]
    )
    found = {identity(item): item for item in map(as_json, stored)}
    for record in offsets.recent(room, after_offset):
        # A message resent after its hand-off failed may sit in the window twice: the
        # stored copy wins, else the later offset (the one it was accepted with).
        earlier = found.get(identity(record))
        if earlier is None or (not earlier["persisted"] and earlier["offset"] < record["offset"]):
            found[identity(record)] = pending_as_json(record)
    items = sorted(found.values(), key=lambda m: m["offset"])
    if len(items) <= limit and len(stored) <= limit:
        return items, None
    items = items[:limit]
    return items, str(items[-1]["offset"])


def identity(item: dict) -> tuple[str, str]:
    """What makes a message itself: its author and its id. Two items under one id by two
    authors are two messages (one of them refused in the end: ``chat.claims``), never one
    hiding the other."""
    return item["author"], item["id"]


def page(room: str, user_id: int, query: Query, receipts_header: str = "") -> Page:
    """One page of the room's history, with the user's own accepted messages that their
    receipts name: theirs only (by author and id), in this room only."""
    named = receipts.verified_ids(receipts_header, user_id, room)
    waiting = pending.lookup(user_id, room, named)
    if query.after_offset is None:
        rows, following = window(room, query)
        items = [as_json(m) for m in rows]
    else:
        items, following = since(room, query.after_offset, query.limit)
    found = {identity(item): item for item in items}
    named_stored = list(
        Message.objects.filter(room=room, author_id=user_id, id__in=named).select_related("author")
    )
    found.update({identity(item): item for item in map(as_json, named_stored)})
    for record in waiting:
        found.setdefault(identity(record), pending_as_json(record))
    stored_ids = {str(m.id) for m in named_stored}
    complete = all(message_id in stored_ids for message_id in named)
    missing = set(named) - stored_ids - {record["id"] for record in waiting}
    if missing:
        missing -= {
            str(i)
            for i in DeadLetter.objects.filter(
                author_id=user_id, message_id__in=missing
            ).values_list("message_id", flat=True)
        }
    if query.after_offset is None:
        messages = sorted(found.values(), key=lambda m: (m["sent_at"], m["id"], m["author"]))
    else:  # a receipt's message may precede the offset asked for; it comes first
        messages = sorted(found.values(), key=lambda m: m["offset"] or 0)
    unknown = [i for i in dict.fromkeys(named) if i in missing]
    return Page(messages, following, "complete" if complete else "pending", unknown)
