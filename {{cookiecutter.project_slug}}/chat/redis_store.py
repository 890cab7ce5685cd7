"""What this project keeps in Redis itself: the clients, the key names, the timeouts.

Sessions live in Django's cache, and the channel layer and the Celery broker bring clients
of their own (all configured in ``config/settings.py``). Everything else the project writes
to Redis -- the pending store (``chat.pending``), the first author of each message id
(``chat.claims``), the sockets each user holds
(``chat.socket_slots``), the identity records and tickets the WebSocket side authenticates
from (``chat.identity``, ``chat.tickets``), the mirror of who may join which room
(``chat.access``), the failed-login budgets (``chat.throttle``) -- goes through the clients
made here, under keys named here, so that one file answers "what does this project store in
Redis, and under which name?".

Every key is ``<project_slug>:<what>[:<whose>]``, so that several projects can share one
Redis and an operator can tell this project's keys at a glance.
"""

import redis
import redis.asyncio
from django.conf import settings

from chat.per_loop import PerLoop
from config import redis_connection
from config.connections import redis_client_name

# --- Key names ------------------------------------------------------------------------


def key(*parts: object) -> str:
    return ":".join([settings.PROJECT_SLUG, *map(str, parts)])


def database() -> str:
    """The PostgreSQL database this process serves. Keys that stand for its rows (the
    messages it owes, the rooms it mirrors) are named after it: the test suite's or the
    benchmark's database, sharing a Redis with a running project, never reads, overwrites
    or hands over that project's."""
    return settings.DATABASES["default"]["NAME"]


def pending_member(author_id: int, message_id: str) -> str:
    """How a message is named in the pending store: by its author and id, its identity."""
    return f"{author_id}:{message_id}"


def pending_message(member: str) -> str:
    """A string: one accepted message (``pending_member``), as JSON, until the worker has
    stored it. Named after the database it is owed to (``database``)."""
    return key("pending", database(), member)


def pending_index() -> str:
    """A sorted set: the members of the pending store (``pending_member``), scored by when
    their batch was published (or last handed over again). Named after the database they
    are owed to: a worker sweeps only what its own database is owed."""
    return key("pending", database())


def message_claim(message_id: str) -> str:
    """A string: the user id of the first author of a message id (``chat.claims``); expires
    after ``CHAT_ID_CLAIM_TTL``."""
    return key("claim", message_id)


def user_sockets(user_id: int) -> str:
    """A sorted set: the sockets a user holds, scored by when each one's claim runs out."""
    return key("sockets", user_id)


def identity_record(credential: str) -> str:
    """A string: who a credential (``session:<key>``, ``apikey:<id>``) vouches for, as JSON
    ``{"user_id", "username"}``; expires with the session (or shortly after a ticket)."""
    return key("identity", credential)


def user_credentials(user_id: int) -> str:
    """A sorted set: the credentials with an identity record for this user, scored by when
    each record expires: what to delete when the user is revoked. Expires with the last."""
    return key("credentials", user_id)


def ticket(digest: str) -> str:
    """A string: an unused WebSocket ticket (by the SHA-256 of the ticket), holding the
    credential it was issued on; deleted when used, expires after ``CHAT_TICKET_TTL``."""
    return key("ticket", digest)


def room_mirror() -> str:
    """A hash: the private rooms and their members, mirrored from PostgreSQL. Field
    ``ready`` says the mirror is complete; ``room:<name>`` holds one private room's members.
    Bounded by the rooms table; expires after ``CHAT_ROOM_MIRROR_TTL`` unless kept. Named
    after the database it mirrors (``database``)."""
    return key("rooms", database())


def room_mirror_draft(token: str) -> str:
    """A hash: a mirror being rebuilt, renamed over ``room_mirror()`` when complete; expires
    if the rebuild dies half-way."""
    return f"{room_mirror()}:draft:{token}"


def room_mirror_rebuild_requested() -> str:
    """A string: a rebuild of the mirror is queued; expires, so that a lost request is
    made again."""
    return f"{room_mirror()}:rebuild-requested"


def budget(what: str, whose: str) -> str:
    """A counter: how much of a budget (failed logins by user or address, tickets by user,
    messages and bytes per second by user) was spent in the current window; expires with
    the window."""
    return key("budget", what, whose)


def room_offsets() -> str:
    """A hash: each room's last offset. No expiry: an offset is never handed out twice,
    so a room's counter lives as long as its stored messages do (one field per room ever
    used). The field ``OFFSETS_SEEDED`` says it was seeded from PostgreSQL, and
    ``OFFSETS_BASE`` where a room without a counter starts (``chat.offsets``)."""
    return key("offsets")


OFFSETS_SEEDED = "~seeded"  # not room names: rooms are [A-Za-z0-9_-]
OFFSETS_BASE = "~base"


def recent_messages(room: str) -> str:
    """A sorted set: the room's latest messages as JSON, scored by offset, capped at
    ``CHAT_RECENT_WINDOW`` and gone ``CHAT_RECENT_SECONDS`` after the room's last message."""
    return key("recent", room)


def presence(room: str) -> str:
    """A sorted set: who is in the room, one member per socket (``<channel>|<username>``),
    scored by when its entry runs out unless its process renews it."""
    return key("presence", room)


def server_processes() -> str:
    """A sorted set: the live ASGI processes (by id), scored by when their report runs out."""
    return key("processes")


def server_process(process_id: str) -> str:
    """A string: one ASGI process's report (JSON: pid, host, sockets), renewed while it
    lives."""
    return key("process", process_id)


def persist_lags() -> str:
    """A list: the worker's latest persist lags (JSON), newest first, capped."""
    return key("persist-lags")


# --- Clients ---------------------------------------------------------------------------
# Made on first use and kept for the process's life, each on a pool of at most
# REDIS_POOL_SIZE connections, whatever the number of sockets: a command that finds them all
# busy waits up to REDIS_POOL_TIMEOUT for one, then fails (the sender hears "unavailable").
# They are looked up by URL, so a test that points REDIS_URL at a Redis of its own gets a
# client for that one. Everything kept here is text (JSON, ids): replies are decoded to str.

_clients: dict[str, redis.Redis] = {}
_async_clients: PerLoop[dict[str, redis.asyncio.Redis]] = PerLoop(dict)


def client_options(pool: str) -> dict:
    return {
        "client_name": redis_client_name(pool),
        "max_connections": settings.REDIS_POOL_SIZE,
        "timeout": settings.REDIS_POOL_TIMEOUT,
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "decode_responses": True,
    }


def client() -> redis.Redis:
    """The blocking client, for the HTTP side, the hand-off thread and the worker."""
    url = settings.REDIS_URL
    if url not in _clients:
        pool = redis.BlockingConnectionPool.from_url(url, **client_options("store"))
        _clients[url] = redis.Redis(connection_pool=pool)
    return _clients[url]


def async_client() -> redis.asyncio.Redis:
    """The client for the WebSocket side: one per event loop, since a redis.asyncio
    connection belongs to the loop that made it."""
    clients = _async_clients()
    url = settings.REDIS_URL
    if url not in clients:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            connection_class=redis_connection.connection_class(url),
            **client_options("store-async"),
        )
        clients[url] = redis.asyncio.Redis(connection_pool=pool)
    return clients[url]
