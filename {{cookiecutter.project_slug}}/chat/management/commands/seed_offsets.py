"""``manage.py seed_offsets``: set the rooms' offset counters in Redis from PostgreSQL.

``migrate`` does it, and the worker does it whenever Redis has lost them; this is for an
operator who restored Redis from an old snapshot (its counters may lag behind PostgreSQL:
seeding only ever raises them).
"""

from django.core.management.base import BaseCommand

from chat import mirrors


class Command(BaseCommand):
    help = "Raise every room's offset counter in Redis to its highest stored offset."

    def handle(self, *args, **options):
        rooms = mirrors.seed_offsets()
        self.stdout.write(f"Offset counters seeded for {rooms} room(s).")
