"""``manage.py apikey <username>``: make an API key for a non-browser client, show it once.

The client sends it as ``Authorization: Token <key>`` to ``POST /api/ws-tickets`` (and to
the history API); ``python -m chat.client`` reads it from ``CHAT_API_KEY``. Only the key's
hash is stored. ``--revoke-all`` deletes the user's keys instead, which closes the sockets
opened with them.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chat import apikeys
from chat.models import ApiKey


class Command(BaseCommand):
    help = "Make an API key for a user (printed once), or revoke all of the user's keys."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--revoke-all", action="store_true", help="Delete every key of the user instead."
        )

    def handle(self, *args, username, revoke_all, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if revoke_all:
            # Each deletion sends post_delete, which closes the key's sockets (chat.accounts).
            count, _ = ApiKey.objects.filter(user=user).delete()
            self.stderr.write(f"Revoked {count} key(s) of {username}.")
            return
        if not user.is_active:
            raise CommandError(f"{username} is not active.")
        _, key = apikeys.create(user)
        self.stderr.write(f"API key for {username} (shown once; store it as a secret):")
        self.stdout.write(key)
