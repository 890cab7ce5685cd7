"""The wire protocol of ``/ws/rooms/<room>/`` (docs/protocol.md), as pure functions.

Nothing here does I/O: the consumer feeds text in and sends the frames built here out, so
every rule of the protocol can be tested without a socket, a server or a database.
"""

import itertools
import json
import re
import uuid
from dataclasses import dataclass

ROOM_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

# How deep a frame may nest. No frame of the protocol nests more than one level, but unknown
# fields are ignored, whatever they hold: so the limit is as high as it can be while staying
# well below the depth at which the JSON parser runs out of stack (about 900 on Python 3.11).
MAX_NESTING = 500
# JSON strings (whose brackets are text), runs of anything but brackets and quotes, and an
# unpaired quote: what is left after removing them is the frame's structure.
NOT_STRUCTURE = re.compile(r'"(?:[^"\\]++|\\.)*+"|[^"\[\]{}]++|"')

# Error codes of the contract. The frame they come with says what went wrong and which
# message (by id) it was about.
INVALID_JSON = "invalid_json"
INVALID_FRAME = "invalid_frame"
UNKNOWN_TYPE = "unknown_type"
INVALID_ID = "invalid_id"
EMPTY_BODY = "empty_body"
BODY_TOO_LONG = "body_too_long"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
ID_CONFLICT = "id_conflict"  # the id is another user's message (chat.claims)

# Close codes.
CLOSE_FRAME_TOO_LARGE = 1009
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_MANY_SOCKETS = 4409  # the user already has CHAT_MAX_SOCKETS_PER_USER open
CLOSE_SERVER_ERROR = 1011  # the server cannot serve this socket now: reconnect later
CLOSE_UNAUTHORIZED = 4401  # the credential was revoked (logout, password, deactivation)
CLOSE_FORBIDDEN = 4403  # no longer a member of this private room
CLOSE_TOO_SLOW = 4408  # the socket's outgoing backlog is over its bound (chat.outbox)


class ProtocolError(Exception):
    """A client frame the server refuses; becomes an ``error`` frame, the socket stays open."""

    def __init__(self, code: str, detail: str, message_id: str | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.message_id = message_id

    def frame(self) -> dict:
        return error_frame(self.code, self.detail, self.message_id)


@dataclass(frozen=True)
class SendMessage:
    """A valid ``message.send``: ``id`` is the canonical form of the client's UUID."""

    id: str
    body: str


@dataclass(frozen=True)
class Typing:
    """A ``typing`` frame: the sender is typing. Ephemeral: never stored, never handed off."""


def is_valid_room(room: str) -> bool:
    return ROOM_PATTERN.fullmatch(room) is not None


def is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text that can leave the process.

    JSON can spell a lone UTF-16 surrogate (``"\\ud83d"``), and ``json.loads`` turns it into
    a Python string that no UTF-8 encoder takes: not msgpack (the channel layer), not
    PostgreSQL, not a WebSocket text frame.
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def nests_too_deeply(text: str) -> bool:
    """Whether ``text`` opens more than MAX_NESTING arrays or objects inside one another.

    Checked before parsing because the parser's own limit is the interpreter's stack: a
    ``[[[[...`` a few hundred deep fails or not depending on how deep the caller already is,
    so the same frame could get a different answer in the consumer than in a test.
    """
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return False
    structure = NOT_STRUCTURE.sub("", text)
    depths = itertools.accumulate(1 if bracket in "[{" else -1 for bracket in structure)
    return max(depths, default=0) > MAX_NESTING


def parse_client_frame(text: str, *, max_body: int) -> SendMessage | Typing:
    """Validate one text frame from a client; raise ProtocolError with the contract's code.

    Whatever ``text`` holds, the only exception raised is ProtocolError: the consumer
    answers it with an ``error`` frame and the socket stays open.
    """
    if nests_too_deeply(text):
        raise ProtocolError(INVALID_JSON, "The frame nests too deeply.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise ProtocolError(INVALID_JSON, "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise ProtocolError(INVALID_FRAME, "A frame must be a JSON object.")

    raw_id = frame.get("id")
    # The id is echoed in error frames, so only one that can be sent back is kept.
    message_id = raw_id if isinstance(raw_id, str) and is_text(raw_id) else None
    frame_type = frame.get("type")
    if not isinstance(frame_type, str):
        raise ProtocolError(INVALID_FRAME, 'A frame needs a string "type".', message_id)
    if frame_type == "typing":
        return Typing()
    if frame_type != "message.send":
        raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type {frame_type[:64]!r}.", message_id)
    return send_message(frame, raw_id, message_id, max_body)


def send_message(frame: dict, raw_id, message_id: str | None, max_body: int) -> SendMessage:
    """The fields of a ``message.send`` frame, checked and made canonical.

    ``message_id`` is ``raw_id`` as error frames may echo it (None if they cannot).
    """
    if not isinstance(raw_id, str):
        raise ProtocolError(INVALID_FRAME, '"message.send" needs a string "id".')
    try:
        canonical_id = str(uuid.UUID(raw_id))
    except ValueError:
        raise ProtocolError(INVALID_ID, '"id" must be a UUID.', message_id) from None

    body = frame.get("body")
    if not isinstance(body, str):
        raise ProtocolError(INVALID_FRAME, '"message.send" needs a string "body".', message_id)
    if "\x00" in body:
        # PostgreSQL text cannot hold NUL: refuse it now rather than accept a message that
        # could never be stored.
        raise ProtocolError(INVALID_FRAME, '"body" must not contain NUL characters.', message_id)
    if not is_text(body):
        raise ProtocolError(
            INVALID_FRAME, '"body" must not contain lone UTF-16 surrogates.', message_id
        )
    body = body.strip()
    if not body:
        raise ProtocolError(EMPTY_BODY, '"body" is empty.', message_id)
    if len(body) > max_body:
        raise ProtocolError(
            BODY_TOO_LONG, f'"body" is longer than {max_body} characters.', message_id
        )
    return SendMessage(id=canonical_id, body=body)


def encode(frame: dict) -> str:
    """A server frame as sent: JSON, non-ASCII as itself (an emoji is 4 bytes on the wire,
    not a 12-byte escape pair). Text that cannot be UTF-8 (a lone surrogate a client put in
    an id) is escaped instead, so that every frame can be sent."""
    text = json.dumps(frame, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return json.dumps(frame)
    return text


def message_frame(message: dict) -> dict:
    """The fan-out frame every member of the room gets, sender included."""
    return {
        "type": "message",
        "id": message["id"],
        "room": message["room"],
        "author": message["author"],
        "body": message["body"],
        "sent_at": message["sent_at"],
        "offset": message["offset"],
    }


def presence_frame(users: list[str]) -> dict:
    """To a socket that just joined: who is in the room now, on every server process."""
    return {"type": "presence", "users": users}


def presence_join_frame(user: str) -> dict:
    return {"type": "presence.join", "user": user}


def presence_leave_frame(user: str) -> dict:
    return {"type": "presence.leave", "user": user}


def typing_frame(user: str) -> dict:
    return {"type": "typing", "user": user}


def accepted_frame(message_id: str, receipt: str) -> dict:
    return {"type": "message.accepted", "id": message_id, "receipt": receipt}


def persisted_frame(message_id: str) -> dict:
    return {"type": "message.persisted", "id": message_id}


def id_conflict_frame(message_id: str) -> dict:
    return error_frame(
        ID_CONFLICT,
        "This id belongs to another user's message; send yours with a new id.",
        message_id,
    )


def error_frame(code: str, detail: str, message_id: str | None = None) -> dict:
    return {"type": "error", "code": code, "detail": detail, "id": message_id}
