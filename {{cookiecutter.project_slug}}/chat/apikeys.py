"""API keys: the credential of a program (a CLI, a service) that has no browser session.

An administrator makes one with ``manage.py apikey <username>``; the program sends it as
``Authorization: Token <key>`` to ``POST /api/ws-tickets`` (for a WebSocket ticket) and to
the history API. Deleting the key (the admin, ``manage.py apikey --revoke-all``) revokes
it, and closes the sockets opened with it (``chat.accounts``).
"""

import hashlib
import secrets

from chat.models import ApiKey


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(user) -> tuple[ApiKey, str]:
    """A new key for ``user``: the row, and the key itself (shown once, never stored)."""
    key = secrets.token_urlsafe(32)
    return ApiKey.objects.create(user=user, prefix=key[:8], digest=digest(key)), key


def from_request(request) -> ApiKey | None:
    """The key in ``Authorization: Token <key>``, if it is a key of an active user."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "token" or not 0 < len(key) <= 128:
        return None
    return (
        ApiKey.objects.select_related("user")
        .filter(digest=digest(key), user__is_active=True)
        .first()
    )
