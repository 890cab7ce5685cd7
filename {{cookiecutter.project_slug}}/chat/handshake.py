"""The WebSocket handshake, before any consumer exists: where from, and who.

Refusing is the common case under attack (anonymous scanners, other sites' pages), so a
refusal must cost nothing beyond the checks themselves. ``HandshakeGate`` is the first ASGI
middleware of the WebSocket stack (``config/asgi.py``): it answers a handshake it refuses
itself, with HTTP 403 (a close before accept), so that no consumer, channel or channel-layer
subscription is ever made for it. (Channels' own ``OriginValidator`` refuses through a
consumer, which subscribes a channel first.) A handshake that passes reaches the router with
``scope["identity"]`` set.

The rules, in order:

1. **Origin.** Browsers always send one: it must match ``ALLOWED_HOSTS`` (Channels' rules,
   ``channels.security.websocket``). A handshake without an ``Origin`` is allowed only with
   a ticket: it comes from a program, not a page (a page cannot make a browser drop it).
2. **Who.** With ``?ticket=``, the ticket alone (used once, ``chat.tickets``); cookies are
   then ignored. Otherwise the session cookie, parsed as Django parses it for HTTP. Either
   way the identity is the credential's record in Redis (``chat.identity``): one or two
   reads on the project's async Redis client, no thread hop, no database, no pickle.

Redis unreachable means refused (the client retries with back-off), never let through.
"""

import contextlib
from urllib.parse import parse_qs, urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from redis.exceptions import RedisError

from chat import identity, tickets
from chat.identity import Identity


def allowed_origins() -> list[str]:
    """What Channels' ``AllowedHostsOriginValidator`` allows: ``ALLOWED_HOSTS``."""
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return ["localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def origin_allowed(origin: str) -> bool:
    try:
        # Channels' own rules, without the application it would wrap.
        validator = OriginValidator(None, allowed_origins())  # type: ignore[arg-type]
        return validator.valid_origin(urlparse(origin))
    except ValueError:  # not a URL: a broken IPv6 literal, a port out of range
        return False


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def query_parameter(scope, name: str) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query, keep_blank_values=True).get(name)
    return values[0] if values else None


async def authenticate(scope) -> Identity | None:
    """The identity of a handshake these rules admit, or None."""
    ticket = query_parameter(scope, "ticket")
    origin = header(scope, b"origin")
    if origin is None:
        if ticket is None:
            return None
    elif not origin_allowed(origin):
        return None
    if ticket is not None:
        credential = await tickets.redeem(ticket)
    else:
        session_key = identity.session_key_from_scope(scope)
        credential = identity.session_credential(session_key) if session_key else None
    if credential is None:
        return None
    return await identity.resolve(credential)


async def refuse(receive, send) -> None:
    """Answer the handshake with HTTP 403: the ASGI server sends that for a close before
    accept."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})


class HandshakeGate:
    """ASGI middleware: ``scope["identity"]`` for a handshake it admits; HTTP 403 for the
    rest, answered here."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        who = None
        with contextlib.suppress(RedisError, OSError):
            who = await authenticate(scope)
        if who is None:
            return await refuse(receive, send)
        return await self.inner({**scope, "identity": who}, receive, send)
