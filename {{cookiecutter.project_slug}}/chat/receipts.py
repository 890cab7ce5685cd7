"""Write receipts: proof, handed to a sender, that the server accepted their message.

A receipt is small and signed (Django's signing, with a timestamp for expiry): it names the
user, the room and the message id, nothing more, so twenty of them fit in one request
header. The message itself waits in the pending store (``chat.pending``) until the worker
has stored it. Shown back to the history API (``X-Write-Receipts``), a receipt lets its user
see their own message before then.
"""

from django.conf import settings
from django.core import signing

SALT = "chat.receipts"
# What is read of one X-Write-Receipts header; the rest is ignored, never an error. The
# demo client keeps its header under 8 KB (nginx's default header buffer), and a receipt is
# about 150 characters, so these leave room for any honest client and bound the work a
# forged header can cause.
MAX_PER_REQUEST = 100
MAX_HEADER_CHARS = 32 * 1024


def issue(message: dict, user_id: int) -> str:
    """The receipt for ``message``, valid for its sender in its room only."""
    return signing.dumps({"u": user_id, "r": message["room"], "i": message["id"]}, salt=SALT)


def verified_ids(header: str, user_id: int, room: str) -> list[str]:
    """Message ids named by the valid receipts in ``header`` for this user and room.

    Receipts issued to someone else, for another room, forged, truncated or expired are
    ignored, never an error; so is whatever lies beyond the caps above.
    """
    ids = []
    for receipt in header[:MAX_HEADER_CHARS].split(",", MAX_PER_REQUEST)[:MAX_PER_REQUEST]:
        try:
            claim = signing.loads(receipt.strip(), salt=SALT, max_age=settings.CHAT_RECEIPT_MAX_AGE)
        except signing.BadSignature:  # includes SignatureExpired
            continue
        if isinstance(claim, dict) and claim.get("u") == user_id and claim.get("r") == room:
            ids.append(claim["i"])
    return list(dict.fromkeys(ids))  # a receipt named twice counts once
