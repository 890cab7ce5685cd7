"""Who is on the other end of a WebSocket, known from Redis alone.

The WebSocket side reads neither the user table nor Django's session (a pickle in Django's
cache, behind a client made per async context and never closed on a WebSocket). The HTTP
side, which has both, writes what the WebSocket side needs into an *identity record*: a
small JSON string, ``{"user_id", "username"}``, stored under the *credential* that vouches
for the socket, with that credential's own lifetime:

- ``session:<session key>``: written whenever a logged-in user's session is saved, deleted
  with the session (``chat.sessions``, the project's session engine), so that it is born,
  cycled, expires and ends exactly as the session does;
- ``apikey:<id>``: written when a ticket is issued on an API key (``chat.api``).

A per-user index of those credentials lets the HTTP side revoke them all at once
(``chat.accounts``: password change, deactivation, deletion). The handshake
(``chat.handshake``) reads a record with one GET on the project's async Redis client.
"""

import json
import re
import time
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.http.cookie import parse_cookie

from chat import redis_store

# The session's own copy of what the record holds, put there at login (chat.accounts) so
# that every later save of the session can write the record (chat.sessions).
SESSION_KEY = "chat_identity"

SESSION = "session:"
API_KEY = "apikey:"

# Django's session keys are 32 characters of [a-z0-9]; anything else in the cookie is not a
# session this project made, and never becomes part of a Redis key name.
SESSION_KEY_PATTERN = re.compile(r"[a-z0-9]{8,64}")


@dataclass(frozen=True)
class Identity:
    user_id: int
    username: str
    credential: str = ""  # what vouched for the socket: revoking it closes the socket


def session_credential(session_key: str) -> str:
    return SESSION + session_key


def api_key_credential(key_id: int) -> str:
    return f"{API_KEY}{key_id}"


# --- The HTTP side: write and delete records (blocking client) ----------------------------


def remember(credential: str, user_id: int, username: str, ttl: int) -> None:
    """Write the record of ``credential`` for ``ttl`` seconds, and index it under its user."""
    now = time.time()
    index = redis_store.user_credentials(user_id)
    record = json.dumps({"user_id": user_id, "username": username})
    with redis_store.client().pipeline(transaction=True) as pipe:
        pipe.set(redis_store.identity_record(credential), record, ex=ttl)
        pipe.zremrangebyscore(index, "-inf", now)  # records that have expired
        pipe.zadd(index, {credential: now + ttl})
        # The index lives as long as its longest-lived record.
        pipe.expire(index, ttl, nx=True)
        pipe.expire(index, ttl, gt=True)
        pipe.execute()


def forget(credentials: list[str]) -> list[Identity]:
    """Delete the records of ``credentials``; the identities they held (credentials that had
    no record, or a malformed one, are skipped)."""
    if not credentials:
        return []
    client = redis_store.client()
    with client.pipeline(transaction=False) as pipe:
        for credential in credentials:
            pipe.getdel(redis_store.identity_record(credential))
        raws = pipe.execute()
    gone = [
        identity
        for credential, raw in zip(credentials, raws, strict=True)
        if (identity := parse(credential, raw)) is not None
    ]
    with client.pipeline(transaction=False) as pipe:
        for identity in gone:
            pipe.zrem(redis_store.user_credentials(identity.user_id), identity.credential)
        pipe.execute()
    return gone


def credentials_of(user_id: int, kind: str = "") -> list[str]:
    """The user's credentials that still have a record, optionally of one kind
    (``SESSION``, ``API_KEY``)."""
    index = redis_store.user_credentials(user_id)
    live = cast(list[str], redis_store.client().zrangebyscore(index, time.time(), "+inf"))
    return [credential for credential in live if credential.startswith(kind)]


# --- The WebSocket side: read records (async client) ---------------------------------------


async def resolve(credential: str) -> Identity | None:
    """The identity ``credential`` vouches for, or None if it has no record (never had one,
    expired, revoked)."""
    raw = await redis_store.async_client().get(redis_store.identity_record(credential))
    return parse(credential, cast(str | None, raw))


def parse(credential: str, raw: str | None) -> Identity | None:
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        return Identity(int(record["user_id"]), str(record["username"]), credential)
    except (ValueError, TypeError, KeyError):
        return None


def session_key_from_scope(scope) -> str | None:
    """The session key of the handshake's cookies, parsed as Django parses them for HTTP.

    ``parse_cookie`` reads every ``name=value`` pair it can and skips the rest, as browsers
    do; Python's ``SimpleCookie`` gives up on the whole header at the first cookie it
    cannot parse (a consent banner's JSON, say), losing the session with it. HTTP/2 may
    split cookies over several headers: they are joined first.
    """
    header = "; ".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"cookie"
    )
    key = parse_cookie(header).get(settings.SESSION_COOKIE_NAME, "")
    return key if SESSION_KEY_PATTERN.fullmatch(key) else None
