"""The connection budget: its arithmetic, and the system check against the real server."""

import dataclasses
import os
import subprocess
import sys

import pytest
from django.db import connection

from config.connections import ConnectionBudget
from config.roles import Role
from ops.checks import connection_budget_fits_server
from support.processes import PROJECT_DIR

BUDGET = ConnectionBudget(
    web_processes=2,
    web_pool_size=4,
    worker_processes=3,
    worker_pool_size=1,
    manage_pool_size=2,
    reserve=3,
)


def test_the_budget_is_processes_times_pool_size_per_role_plus_reserve():
    assert (BUDGET.web, BUDGET.worker, BUDGET.total) == (8, 3, 14)
    assert [BUDGET.pool_size(role) for role in (Role.WEB, Role.WORKER, Role.MANAGE)] == [4, 1, 2]


def server_max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def budget_of_total(total: int) -> ConnectionBudget:
    return dataclasses.replace(BUDGET, web_processes=1, web_pool_size=total - 3 - 3)


@pytest.mark.django_db
def test_the_default_budget_fits_this_server():
    assert connection_budget_fits_server(databases=["default"]) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("share", "expected"), [(0.5, []), (0.85, ["ops.W001"]), (1.1, ["ops.E001"])]
)
def test_the_check_warns_above_80_percent_and_errors_above_the_server(settings, share, expected):
    settings.CONNECTION_BUDGET = budget_of_total(int(server_max_connections() * share))
    found = connection_budget_fits_server(databases=["default"])
    assert [message.id for message in found] == expected
    if found:
        assert "max_connections" in found[0].msg and found[0].hint


def test_the_check_only_runs_when_asked_for_the_database():
    assert connection_budget_fits_server(databases=None) == []


@pytest.mark.django_db
def test_manage_py_check_fails_on_a_budget_the_server_cannot_hold():
    env = {**os.environ, "WEB_CONCURRENCY": "50", "WEB_POOL_MAX_SIZE": "50"}
    env.pop("PROCESS_ROLE", None)  # manage.py declares its own
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ops.E001" in result.stderr and "50 web process(es) x 50" in result.stderr
