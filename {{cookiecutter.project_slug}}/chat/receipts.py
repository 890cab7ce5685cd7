"""Write receipts: proof, handed to a sender, that the server accepted their message.

A receipt carries the message itself, signed and compressed with Django's signing, bound
to the user and the room. Shown back to the history API (``X-Write-Receipts``), it lets a
user see their own message before the worker has stored it: read-your-writes without a
database round trip at send time.
"""

from django.core import signing

SALT = "chat.receipts"


def issue(message: dict, user_id: int) -> str:
    """A tamper-proof receipt for ``message`` (a hand-off record), valid for its sender."""
    payload = {
        "u": user_id,
        "r": message["room"],
        "i": message["id"],
        "a": message["author"],
        "b": message["body"],
        "t": message["sent_at"],
    }
    return signing.dumps(payload, salt=SALT, compress=True)
