"""Who is on the other end of a WebSocket, known from the session alone.

Channels' ``AuthMiddlewareStack`` loads the user from the database at every handshake,
which is what makes WebSocket processes hold PostgreSQL connections. Here the login puts
the little the consumers need (user id and username) into the session, and sessions live
in Redis (``SESSION_ENGINE`` is the cache backend): a handshake costs one Redis read.

The trade-off: a WebSocket trusts the session until it is flushed (logout, expiry), without
re-checking the user row. Deactivating a user should therefore also delete their sessions.
"""

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import import_module

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

SESSION_KEY = "chat_identity"


@dataclass(frozen=True)
class Identity:
    user_id: int
    username: str


@receiver(user_logged_in)
def remember_identity(sender, request, user, **kwargs):
    """At login, put into the session what the WebSocket side needs to know."""
    request.session[SESSION_KEY] = {"user_id": user.pk, "username": user.get_username()}


async def identity_from_session(session_key: str | None) -> Identity | None:
    """The identity stored by ``remember_identity``, or None for an anonymous session."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = await store.aget(SESSION_KEY)
    if not data:
        return None
    return Identity(user_id=data["user_id"], username=data["username"])


def session_key_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except CookieError:
                return None
            morsel = cookie.get(settings.SESSION_COOKIE_NAME)
            return morsel.value if morsel else None
    return None


class SessionIdentityMiddleware:
    """ASGI middleware that sets ``scope["identity"]`` (an Identity, or None if anonymous)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        identity = await identity_from_session(session_key_from_scope(scope))
        return await self.inner({**scope, "identity": identity}, receive, send)
