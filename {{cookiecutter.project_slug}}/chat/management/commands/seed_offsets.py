"""``manage.py seed_offsets``: set the rooms' offset counters in Redis from PostgreSQL.

``migrate`` does it, and the worker does it whenever Redis has lost them; this is for an
operator who restored Redis from an old snapshot. Its counters lag behind the offsets handed
out since, some of them perhaps still on their way to the worker: ``--after-loss`` seeds
them as lost ones, past a gap (``chat.offsets``). Without it, seeding only raises them to
PostgreSQL's highest offsets.
"""

from django.core.management.base import BaseCommand

from chat import mirrors


class Command(BaseCommand):
    help = "Raise every room's offset counter in Redis to its highest stored offset."

    def add_arguments(self, parser):
        parser.add_argument(
            "--after-loss",
            action="store_true",
            help="Redis lost offsets it had handed out (an old snapshot restored): start "
            "every room past a gap, as the worker does when the counters are gone.",
        )

    def handle(self, *args, **options):
        rooms = mirrors.seed_offsets(lost=True if options["after_loss"] else None)
        self.stdout.write(f"Offset counters seeded for {rooms} room(s).")
