"""``manage.py rooms_mirror``: rebuild the WebSocket side's room mirror from the database.

``migrate`` does this after every run, and the worker when it finds the mirror gone; run
it by hand after restoring Redis or the database from a backup, or after changing rooms
with SQL (which no signal sees).
"""

from django.core.management.base import BaseCommand

from chat import rooms


class Command(BaseCommand):
    help = "Rebuild the room mirror in Redis from PostgreSQL."

    def handle(self, *args, **options):
        count = rooms.rebuild_mirror()
        self.stdout.write(f"Room mirror rebuilt: {count} private room(s).")
