"""What the WebSocket side is told when an account changes.

Sockets hold no database connection, so they never see the user row change. Whatever
changes it -- a view, the admin, ``manage.py changepassword``, a shell -- goes through the
model's signals, and the handlers here turn the change into Redis writes and channel-layer
events, once the transaction has committed:

- login: nothing is revoked; the session remembers who logged in, for its identity
  record (``chat.sessions``);
- logout, or any other end of a session: that session and its record go, and its sockets
  close with 4401 (``chat.sessions``);
- password changed (or re-hashed by a hasher upgrade, which Django treats alike): every
  session of the user and their records go; their sockets close with 4401;
- deactivated or deleted: every session and every API key record of the user goes, and
  all of the user's sockets close with 4401;
- API key deleted: its record goes; the sockets opened with it close with 4401.

API keys survive a password change: they are credentials of their own, made by an
administrator (``manage.py apikey``), and revoked by deleting them. A changed password
signs every other browser out, as Django does, and more promptly: the sessions are deleted,
not merely found stale at their next request.
"""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver

from chat import groups, identity, sessions
from chat.models import ApiKey

# What a user row looked like when it was loaded, to tell what a save changed.
LOADED = "_chat_loaded_auth_state"


@receiver(user_logged_in)
def remember_identity(sender, request, user, **kwargs):
    """At login, the session keeps what its identity record will hold (``chat.sessions``)."""
    request.session[identity.SESSION_KEY] = {"user_id": user.pk, "username": user.get_username()}


def auth_state(user) -> tuple[str, bool]:
    return user.password, user.is_active


@receiver(post_init, sender=settings.AUTH_USER_MODEL)
def note_loaded_state(sender, instance, **kwargs):
    setattr(instance, LOADED, auth_state(instance))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def revoke_on_change(sender, instance, created, **kwargs):
    before, now = getattr(instance, LOADED, None), auth_state(instance)
    setattr(instance, LOADED, now)
    if created or before is None or before == now:
        return
    (password_before, active_before), (password_now, active_now) = before, now
    user_id = instance.pk
    if active_before and not active_now:
        transaction.on_commit(lambda: revoke_everything(user_id))
    elif password_before != password_now:
        transaction.on_commit(lambda: sessions.end_all(user_id))


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def revoke_on_delete(sender, instance, **kwargs):
    user_id = instance.pk
    transaction.on_commit(lambda: revoke_everything(user_id))


@receiver(post_delete, sender=ApiKey)
def revoke_api_key(sender, instance, **kwargs):
    credential = identity.api_key_credential(instance.pk)
    transaction.on_commit(lambda: sessions.close_sockets(identity.forget([credential])))


def revoke_everything(user_id: int) -> None:
    """Every session and record of the user goes, and all of the user's sockets close --
    also any whose record was already gone."""
    sessions.end_all(user_id)
    identity.forget(identity.credentials_of(user_id))
    groups.tell(groups.user(user_id), groups.identity_revoked(None))
