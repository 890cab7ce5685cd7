"""Tickets: how a client without a browser's cookie jar opens a WebSocket.

``POST /api/ws-tickets`` (``chat.api``) issues one on a session or an API key; the client
opens ``/ws/rooms/<room>/?ticket=<ticket>`` within ``CHAT_TICKET_TTL`` seconds. A ticket
is 256 random bits. Redis keeps only its SHA-256, holding the credential it was issued on,
and the handshake deletes it as it reads it (GETDEL): one ticket opens one socket, even
with several handshakes racing for it.

The socket's identity then comes from that credential's record (``chat.identity``), not
from the ticket: a ticket issued on a session that has since logged out opens nothing.
"""

import hashlib
import secrets
from typing import cast

from django.conf import settings

from chat import redis_store

MAX_LENGTH = 128  # longer is not a ticket of ours, and is not hashed


def digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue(credential: str) -> str:
    """A new ticket for ``credential``, usable once within ``CHAT_TICKET_TTL`` seconds."""
    ticket = secrets.token_urlsafe(32)
    redis_store.client().set(
        redis_store.ticket(digest(ticket)), credential, ex=settings.CHAT_TICKET_TTL
    )
    return ticket


async def redeem(ticket: str) -> str | None:
    """The credential ``ticket`` was issued on, once; None if it is forged, used or expired."""
    if not 0 < len(ticket) <= MAX_LENGTH:
        return None
    credential = await redis_store.async_client().getdel(redis_store.ticket(digest(ticket)))
    return cast(str | None, credential)
