"""``manage.py dbconnections``: who holds PostgreSQL connections, against what is allowed.

The first thing to look at when PostgreSQL says "too many clients": the server's
connections by this project's process roles, beside each role's budget and
``max_connections`` (``ops.db_usage``).
"""

import json

from django.core.management.base import BaseCommand

from ops.db_usage import snapshot


class Command(BaseCommand):
    help = "Show PostgreSQL connections by process role, against the budget and max_connections."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, *args, **options):
        figures = snapshot()
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(f"{'role':<8} {'now':>5} {'budget':>7}  states")
        for role, entry in figures["roles"].items():
            budget = "-" if entry["budget"] is None else entry["budget"]
            states = ", ".join(f"{n} {s}" for s, n in sorted(entry["states"].items())) or "-"
            over = entry["budget"] is not None and entry["total"] > entry["budget"]
            warn = "  <-- over budget" if over else ""
            self.stdout.write(f"{role:<8} {entry['total']:>5} {budget:>7}  {states}{warn}")
        self.stdout.write(
            f"\nThis project: {figures['project_total']} connection(s) now; budget "
            f"{figures['budget_total']} (config/connections.py, incl. reserve).\n"
            f"Whole server: {figures['server_total']} client connection(s) "
            f"(this one not counted) of max_connections = {figures['max_connections']}."
        )
