"""The template's own tooling: its Python is lint-clean, and the service check tells the truth."""

import socket
import subprocess
import sys

import redis
from bakery import (
    REDIS_CLAIM,
    REDIS_SERVER,
    TEMPLATE,
    explain,
    own_redis_db,
    project_env,
    run,
    tool,
)

CHECK = [sys.executable, str(TEMPLATE / "scripts" / "check_services.py")]


def test_own_files_are_lint_clean():
    paths = ["hooks", "tests", "scripts"]
    for cmd in ([tool("ruff"), "check", *paths], [tool("ruff"), "format", "--check", *paths]):
        result = run(cmd, cwd=TEMPLATE)
        assert result.returncode == 0, explain(result)


def test_ci_script_is_valid_bash():
    result = run(["bash", "-n", ".ci/run", "scripts/demo.sh", "scripts/lock.sh"], cwd=TEMPLATE)
    assert result.returncode == 0, explain(result)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_services_finds_the_running_services():
    result = subprocess.run(CHECK, capture_output=True, text=True, env=project_env(), timeout=30)
    assert result.returncode == 0, explain(result)
    assert "PostgreSQL is up at 127.0.0.1:5432" in result.stdout
    assert "Redis is up at 127.0.0.1:6379" in result.stdout


def test_check_services_names_the_missing_one_and_how_to_start_it():
    port = free_port()
    env = project_env(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    result = subprocess.run(CHECK, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 1
    assert "PostgreSQL is up" in result.stdout
    assert f"Redis is not reachable at 127.0.0.1:{port}" in result.stderr
    assert "redis-server --daemonize yes" in result.stderr


def test_check_services_is_not_fooled_by_another_server():
    """Redis on PostgreSQL's address does not pass for PostgreSQL."""
    env = project_env(DATABASE_URL="postgres://postgres@127.0.0.1:6379/x")
    result = subprocess.run(
        [*CHECK, "postgres"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.1:6379" in result.stderr
    assert "pg_ctlcluster" in result.stderr


def test_own_redis_db_takes_an_empty_database_once_and_gives_it_back():
    with own_redis_db("first") as first, own_redis_db("second") as second:
        assert first != second
        for number in (first, second):
            client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
            try:
                assert client.keys() == [REDIS_CLAIM.encode()], "it took a database in use"
            finally:
                client.close()
    client = redis.Redis.from_url(f"{REDIS_SERVER}/{first}")
    try:
        assert client.dbsize() == 0, "the claim was not released"
    finally:
        client.close()
