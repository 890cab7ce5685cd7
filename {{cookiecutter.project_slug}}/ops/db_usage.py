"""Who holds PostgreSQL connections now, by process role, against what is allowed.

Every connection of this project names its role in ``application_name``
(``<project_slug>:web``, ``:worker``, ``:manage``; ``config/roles.py``). ``snapshot`` reads
``pg_stat_activity`` on the server, groups the connections by those roles (everything else
on the server is "other"), and sets them beside each role's budget
(``config/connections.py``) and the server's ``max_connections``. ``manage.py
dbconnections`` prints it; the staff panel (``ops.live``) shows it live.
"""

from django.conf import settings
from django.db import connection

from config.roles import Role, role_of

QUERY = """
    SELECT application_name, state, count(*)
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    GROUP BY application_name, state
"""
OTHER = "other"  # connections that are not this project's


def snapshot() -> dict:
    """Connections by role and state, the budget, and max_connections, as one dict."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
        cursor.execute(QUERY)
        rows = cursor.fetchall()
    budget = settings.CONNECTION_BUDGET
    roles: dict[str, dict] = {role: {"budget": budget.allowed(role)} for role in Role}
    roles[OTHER] = {"budget": None}
    for entry in roles.values():
        entry.update(total=0, states={})
    for application_name, state, count in rows:
        entry = roles[role_of(application_name or "") or OTHER]
        entry["total"] += count
        state = state or "unknown"
        entry["states"][state] = entry["states"].get(state, 0) + count
    return {
        "roles": roles,
        "project_total": sum(roles[role]["total"] for role in Role),
        "server_total": sum(entry["total"] for entry in roles.values()),
        "budget_total": budget.total,
        "max_connections": max_connections,
    }
