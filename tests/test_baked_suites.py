"""Install baked projects and run their own test suites, as a user would: make install, make test.

Two bakes cover every option value; the second runs on Python 3.13 (Django 6.x). Each gets
its own project slug, PostgreSQL database and Redis database number so that runs never
collide, and its database and Redis data are cleaned before and after.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bake, combo_id, make, project_env, reset

PYTHON_313 = os.environ.get("PYTHON313", "/root/.pyenv/versions/3.13.0/bin/python3")
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")

SUITES = [
    pytest.param(
        {
            "asgi_server": "daphne",
            "channel_layer": "redis",
            "db_pooling": "django_pool",
            "use_docker": "y",
        },
        BASE_PYTHON,
        1,
        id=f"daphne-redis-django_pool-docker_y-py{sys.version_info[0]}{sys.version_info[1]}",
    ),
    pytest.param(
        {
            "asgi_server": "uvicorn",
            "channel_layer": "redis_pubsub",
            "db_pooling": "pgbouncer",
            "use_docker": "n",
        },
        PYTHON_313,
        2,
        id="uvicorn-redis_pubsub-pgbouncer-docker_n-py313",
    ),
]
INSTALL_TIMEOUT = 20 * 60
TEST_TIMEOUT = 40 * 60


@pytest.mark.slow
@pytest.mark.parametrize(("answers", "python", "redis_db"), SUITES)
def test_baked_project_suite(tmp_path_factory, capsys, answers, python, redis_db):
    if not Path(python).exists():
        pytest.skip(f"no interpreter at {python} (set PYTHON313 to another Python 3.13)")
    version = subprocess.run(
        [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tag = f"{combo_id(answers)}-py{version}"
    # A slug of its own names the database, and the cache and channel-layer prefixes: Redis
    # pub/sub ignores database numbers, so a shared slug would let two runs hear each other.
    slug = "tpl_" + tag.replace("-", "_")
    workdir = tmp_path_factory.mktemp(f"{tag}-")
    project = bake(workdir, project_slug=slug, **answers)
    temproot = workdir / "tmp"
    temproot.mkdir()
    dbname = slug
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    env = project_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{dbname}",
        REDIS_URL=redis_url,
        CI=os.environ.get("CI", "true"),
        # The project's own pytest prunes old pytest-of-<user>/ directories: give it its own
        # root, or it deletes this session's bakes while they are in use.
        PYTEST_DEBUG_TEMPROOT=str(temproot),
        # The browser tests' screenshots, next to the make logs.
        BROWSER_ARTIFACTS_DIR=str(workdir / "screenshots"),
    )
    reset(dbname, redis_url)
    try:
        with capsys.disabled():
            make("install", project, env, INSTALL_TIMEOUT, f"PYTHON={python}")
            make("test", project, env, TEST_TIMEOUT)
    finally:
        reset(dbname, redis_url)
