"""The session engine: Django's cache sessions, each with its identity record in step.

``SESSION_ENGINE = "chat.sessions"``. Sessions still live in Redis through Django's cache,
and the HTTP side uses them as usual. What this adds is the WebSocket side's view of them
(``chat.identity``):

- whenever a logged-in user's session is saved (at login, when its key is cycled, when it
  changes), its identity record is written with the same lifetime;
- whenever a session is deleted (logout, a key cycled away, ``end``), its record goes too,
  and the sockets opened with it are closed with 4401 on every server process.

So the record is born, renewed, expires and dies with its session, and nothing else has to
remember to keep them in step. The per-user index of records is also the per-user index of
sessions that the cache alone does not have: ``end_all`` logs a user out everywhere.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.cache import KEY_PREFIX
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.core.cache import caches

from chat import groups, identity


class SessionStore(CacheSessionStore):
    def save(self, must_create=False):
        super().save(must_create)
        who, ttl = self.get(identity.SESSION_KEY), self.get_expiry_age()
        if not who or self.session_key is None or ttl <= 0:
            return
        credential = identity.session_credential(self.session_key)
        identity.remember(credential, who["user_id"], who["username"], ttl)
        # Deleted between our save and our record (a logout in another tab): delete what we
        # wrote, or it would outlive its session -- and close any socket it let in meanwhile.
        if not self.exists(self.session_key):
            close_sockets(identity.forget([credential]))

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        super().delete(session_key)
        if session_key:
            close_sockets(identity.forget([identity.session_credential(session_key)]))

    # Django's async session API (alogin, alogout) gets the same behaviour. This project's
    # views are synchronous; an async caller pays a thread hop on the HTTP side.
    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)


def end(session_keys: list[str]) -> None:
    """Delete these sessions and their records; close the sockets opened with them."""
    if not session_keys:
        return
    caches[settings.SESSION_CACHE_ALIAS].delete_many([KEY_PREFIX + key for key in session_keys])
    close_sockets(identity.forget([identity.session_credential(key) for key in session_keys]))


def end_all(user_id: int) -> None:
    """Log the user out of every session (password changed: the old ones are revoked)."""
    credentials = identity.credentials_of(user_id, identity.SESSION)
    end([credential.removeprefix(identity.SESSION) for credential in credentials])


def close_sockets(revoked: list[identity.Identity]) -> None:
    by_user: dict[int, list[str]] = {}
    for who in revoked:
        by_user.setdefault(who.user_id, []).append(who.credential)
    for user_id, credentials in by_user.items():
        groups.tell(groups.user(user_id), groups.identity_revoked(credentials))
