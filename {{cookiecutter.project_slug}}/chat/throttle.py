"""Budgets kept in Redis: how often something may happen per window, across processes.

A fixed window per key: the first spend starts the window (INCR, and EXPIRE NX), Redis
forgets the key when it ends. Every process shares the count, and nothing accumulates.
Used for failed logins, per username and per client address (``chat.forms``), and for
tickets per user (``chat.api``).
"""

import hashlib

from chat import redis_store


def whose(value: str) -> str:
    """A fixed-length name for an attacker-chosen value (a username) inside a key name."""
    return hashlib.sha256(value.casefold().encode()).hexdigest()[:32]


def spent(what: str, who: str) -> int:
    return int(redis_store.client().get(redis_store.budget(what, who)) or 0)


def spend(what: str, who: str, window: int) -> int:
    """Spend one; how much of the budget is spent in this window, this one included."""
    key = redis_store.budget(what, who)
    with redis_store.client().pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        count, _ = pipe.execute()
    return int(count)


def reset(what: str, who: str) -> None:
    redis_store.client().delete(redis_store.budget(what, who))
