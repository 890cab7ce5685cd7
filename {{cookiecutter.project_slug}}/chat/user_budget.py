"""Per-user budgets for messages: how many, and how many bytes of body, per second, across
all of a user's sockets and every server process.

The per-connection token bucket (``chat.ratelimit``) bounds one socket; a user may hold up
to ``CHAT_MAX_SOCKETS_PER_USER`` of them, on several processes, so the user's budget is
counted in Redis: one-second fixed windows, two counters per user (``redis_store.budget``),
spent in one round trip and forgotten by Redis when their window ends. A message over
either budget is refused with ``rate_limited`` before fan-out, hand-off or offset; it is
counted all the same, so that a flood keeps its sender over budget.
"""

from django.conf import settings

from chat import redis_store

WINDOW_MS = 1000


async def spend(user_id: int, body: str) -> bool:
    """Spend one message of ``body`` from the user's budgets; False if over either."""
    size = len(body.encode("utf-8", "surrogatepass"))
    messages = redis_store.budget("user-messages", str(user_id))
    volume = redis_store.budget("user-bytes", str(user_id))
    async with redis_store.async_client().pipeline(transaction=True) as pipe:
        pipe.incr(messages)
        pipe.pexpire(messages, WINDOW_MS, nx=True)
        pipe.incrby(volume, size)
        pipe.pexpire(volume, WINDOW_MS, nx=True)
        count, _, spent, _ = await pipe.execute()
    return (
        int(count) <= settings.CHAT_USER_MESSAGES_PER_SECOND
        and int(spent) <= settings.CHAT_USER_BYTES_PER_SECOND
    )
