"""``manage.py redisconnections``: clients on each Redis server, against the budget.

The Redis sibling of ``manage.py dbconnections``, for when Redis says "max number of
clients reached" (``ops.redis_usage``).
"""

import json

from django.core.management.base import BaseCommand

from ops.redis_usage import snapshot


class Command(BaseCommand):
    help = "Show each Redis server's clients now, against the Redis budget and maxclients."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, *args, **options):
        figures = snapshot()
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(
            f"{'server':<24} {'now':>5} {'ours':>5} {'budget':>7} {'maxclients':>10}  by role"
        )
        for server, entry in figures["servers"].items():
            now = "?" if entry["now"] is None else entry["now"]
            ours = "?" if entry["ours"] is None else sum(entry["ours"].values())
            maxclients = "?" if entry["maxclients"] is None else entry["maxclients"]
            roles = ", ".join(f"{role} {n}" for role, n in entry["budget"].items() if n)
            self.stdout.write(
                f"{server:<24} {now:>5} {ours:>5} {entry['budget_total']:>7} {maxclients:>10}"
                f"  {roles}"
            )
            if entry["ours"]:
                pools = ", ".join(f"{pool} {n}" for pool, n in sorted(entry["ours"].items()))
                self.stdout.write(f"{'':<24} ours by pool: {pools}")
        self.stdout.write(
            "\nnow: the whole server's clients (other projects' too, this one not counted); "
            "ours: this project's, by the pool each connection names (CLIENT LIST); "
            "budget: config/connections.py, incl. REDIS_RESERVED_CLIENTS."
        )
