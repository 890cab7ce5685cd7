"""``manage.py dbconnections``: who holds PostgreSQL connections, against what is allowed.

Every connection of this project names its role in ``application_name``
(``<project_slug>:web``, ``:worker``, ``:manage``; config/settings.py). This reads
``pg_stat_activity`` on the server, groups the connections by those roles (everything else
on the server is "other"), and sets them beside each role's budget (config/pool.py) and the
server's ``max_connections``: the first thing to look at when PostgreSQL says "too many
clients".
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

QUERY = """
    SELECT application_name, state, count(*)
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    GROUP BY application_name, state
"""


def role_of(application_name: str) -> str:
    prefix = f"{settings.PROJECT_SLUG}:"
    if application_name.startswith(prefix):
        role = application_name[len(prefix) :]
        if role in ("web", "worker", "manage"):
            return role
    return "other"


def snapshot() -> dict:
    """Connections by role and state, the budget, and max_connections, as one dict."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
        cursor.execute(QUERY)
        rows = cursor.fetchall()
    budget = settings.CONNECTION_BUDGET
    roles = {
        "web": {"budget": budget.web},
        "worker": {"budget": budget.worker},
        # Migrations, shells and psql sessions come out of the reserve.
        "manage": {"budget": budget.reserve},
        "other": {"budget": None},
    }
    for entry in roles.values():
        entry.update(total=0, states={})
    for application_name, state, count in rows:
        entry = roles[role_of(application_name or "")]
        entry["total"] += count
        state = state or "unknown"
        entry["states"][state] = entry["states"].get(state, 0) + count
    return {
        "roles": roles,
        "project_total": sum(roles[r]["total"] for r in ("web", "worker", "manage")),
        "server_total": sum(entry["total"] for entry in roles.values()),
        "budget_total": budget.total,
        "max_connections": max_connections,
    }


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
            f"{figures['budget_total']} (config/pool.py, incl. reserve).\n"
            f"Whole server: {figures['server_total']} client connection(s) "
            f"(this one not counted) of max_connections = {figures['max_connections']}."
        )
