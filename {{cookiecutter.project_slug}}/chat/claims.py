"""An id belongs to its first author: the claims that say so before anything is fanned out.

The client chooses a message's id, so another user who sees it could send their own text
under it. The consumer claims each id for its sender before fanning the message out
(``belongs_to``): one ``SET NX`` in Redis, id -> user id. The first author's claim holds; a
resend by that author (another tab, after a reconnect) finds its own claim and goes on as
before; anyone else is answered ``id_conflict`` and their frame goes nowhere.

A claim lasts ``CHAT_ID_CLAIM_TTL`` (as long as the pending store keeps a message, by
default), longer than a message can take to be stored. Once it has run out, another user
may use the id again; storage keys messages by (author, id), so theirs is stored as a
message of its own and the first author's row is never touched (``chat.persistence``).
"""

from django.conf import settings

from chat import redis_store

# One round trip: the id's owner, claimed for this user if it had none.
CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner then
    return owner
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""


async def belongs_to(message_id: str, user_id: int) -> bool:
    """Whether ``message_id`` is this user's: claimed now, or by them before."""
    owner = await redis_store.async_client().eval(
        CLAIM, 1, redis_store.message_claim(message_id), user_id, settings.CHAT_ID_CLAIM_TTL
    )
    return str(owner) == str(user_id)
