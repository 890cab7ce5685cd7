"""The wire protocol of ``/ws/rooms/<room>/`` (docs/protocol.md), as pure functions.

Nothing here does I/O: the consumer feeds text in and sends the frames built here out, so
every rule of the protocol can be tested without a socket, a server or a database.
"""

import json
import re
import uuid
from dataclasses import dataclass

ROOM_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

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

# Close codes.
CLOSE_FRAME_TOO_LARGE = 1009
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_MANY_SOCKETS = 4409  # the user already has CHAT_MAX_SOCKETS_PER_USER open


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


def is_valid_room(room: str) -> bool:
    return ROOM_PATTERN.fullmatch(room) is not None


def parse_client_frame(text: str, *, max_body: int) -> SendMessage:
    """Validate one text frame from a client; raise ProtocolError with the contract's code."""
    try:
        frame = json.loads(text)
    except ValueError:
        raise ProtocolError(INVALID_JSON, "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise ProtocolError(INVALID_FRAME, "A frame must be a JSON object.")

    raw_id = frame.get("id")
    message_id = raw_id if isinstance(raw_id, str) else None
    frame_type = frame.get("type")
    if not isinstance(frame_type, str):
        raise ProtocolError(INVALID_FRAME, 'A frame needs a string "type".', message_id)
    if frame_type != "message.send":
        raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type {frame_type[:64]!r}.", message_id)

    if message_id is None:
        raise ProtocolError(INVALID_FRAME, '"message.send" needs a string "id".')
    try:
        canonical_id = str(uuid.UUID(message_id))
    except ValueError:
        raise ProtocolError(INVALID_ID, '"id" must be a UUID.', message_id) from None

    body = frame.get("body")
    if not isinstance(body, str):
        raise ProtocolError(INVALID_FRAME, '"message.send" needs a string "body".', message_id)
    if "\x00" in body:
        # PostgreSQL text cannot hold NUL: refuse it now rather than accept a message that
        # could never be stored.
        raise ProtocolError(INVALID_FRAME, '"body" must not contain NUL characters.', message_id)
    body = body.strip()
    if not body:
        raise ProtocolError(EMPTY_BODY, '"body" is empty.', message_id)
    if len(body) > max_body:
        raise ProtocolError(
            BODY_TOO_LONG, f'"body" is longer than {max_body} characters.', message_id
        )
    return SendMessage(id=canonical_id, body=body)


def message_frame(message: dict) -> dict:
    """The fan-out frame every member of the room gets, sender included."""
    return {
        "type": "message",
        "id": message["id"],
        "room": message["room"],
        "author": message["author"],
        "body": message["body"],
        "sent_at": message["sent_at"],
    }


def accepted_frame(message_id: str, receipt: str) -> dict:
    return {"type": "message.accepted", "id": message_id, "receipt": receipt}


def persisted_frame(message_id: str) -> dict:
    return {"type": "message.persisted", "id": message_id}


def error_frame(code: str, detail: str, message_id: str | None = None) -> dict:
    return {"type": "error", "code": code, "detail": detail, "id": message_id}
