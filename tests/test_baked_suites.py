"""Install baked projects and run their own test suites, as a user would: make install, make test.

Two bakes cover every option value (the second on RabbitMQ, TEMPLATE_RABBITMQ_URL, by
default the local one as guest); the second runs on Python 3.13 (Django 6.x), found as
`python3.13` on the PATH (or among pyenv's versions). The first installs with uv (uv sync
--locked), the second without uv, with pip and the hashed pins exported from the same lock:
`make install` has both paths. Each gets its own Redis database (an empty one, claimed for
the run: bakery.own_redis_db), whose number is part of its project slug, and so of its
PostgreSQL database's name, so that runs never collide; its database and Redis data are
cleaned before and after.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bakery import (
    RABBITMQ_URL,
    bake,
    combo_id,
    find_python,
    make,
    own_redis_db,
    project_env,
    reset,
    tool,
)

PYTHON_313 = os.environ.get("PYTHON313") or find_python("3.13")
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
PY_VERSION = f"{sys.version_info[0]}{sys.version_info[1]}"

SUITES = [
    pytest.param(
        {
            "asgi_server": "daphne",
            "channel_layer": "redis",
            "db_pooling": "django_pool",
            "broker": "redis",
            "use_docker": "y",
        },
        BASE_PYTHON,
        tool("uv"),
        60,  # make soak, that many seconds (15 minutes by default; the figures need that)
        id=f"daphne-redis-django_pool-broker_redis-docker_y-py{PY_VERSION}-uv",
    ),
    pytest.param(
        {
            "asgi_server": "uvicorn",
            "channel_layer": "redis_pubsub",
            "db_pooling": "pgbouncer",
            "broker": "rabbitmq",
            "use_docker": "n",
        },
        PYTHON_313,
        "",  # no uv: pip
        0,  # no soak: one is enough for the CI's time
        id="uvicorn-redis_pubsub-pgbouncer-broker_rabbitmq-docker_n-py313-pip",
    ),
]
INSTALL_TIMEOUT = 20 * 60
TEST_TIMEOUT = 40 * 60


@pytest.mark.slow
@pytest.mark.parametrize(("answers", "python", "uv", "soak_seconds"), SUITES)
def test_baked_project_suite(tmp_path_factory, capsys, answers, python, uv, soak_seconds):
    if python is None or not Path(python).exists():
        why = f"no Python 3.13 here ({python or 'python3.13 is not on the PATH'}): set PYTHON313"
        if os.environ.get("CI") == "true":
            pytest.fail(why)  # CI must cover Django 6.x
        pytest.skip(why)
    version = subprocess.run(
        [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tag = f"{combo_id(answers)}-py{version}"
    with own_redis_db(tag) as redis_db:
        # A slug of its own names the database, and the cache and channel-layer prefixes:
        # Redis pub/sub ignores database numbers, so a shared slug would let two runs hear
        # each other.
        # PostgreSQL cuts names at 63 bytes and this one also gets test_ and _bench added:
        # the tag (all the options) is too long for that, a digest of it is not.
        digest = hashlib.sha256(tag.encode()).hexdigest()[:10]
        slug = f"tpl_{digest}_r{redis_db}"
        suite = (answers, python, uv, soak_seconds)
        run_suite(tmp_path_factory, capsys, suite, tag, slug, redis_db)


def run_suite(tmp_path_factory, capsys, suite, tag, slug, redis_db):
    answers, python, uv, soak_seconds = suite
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
    if answers["broker"] == "rabbitmq":
        env["CELERY_BROKER_URL"] = RABBITMQ_URL
    reset(dbname, redis_url)
    try:
        with capsys.disabled():
            make("install", project, env, INSTALL_TIMEOUT, f"PYTHON={python}", f"UV={uv}")
            make("test", project, env, TEST_TIMEOUT)
            if soak_seconds:
                log = make("soak", project, env, TEST_TIMEOUT, f"SOAK_SECONDS={soak_seconds}")
                print(soak_figures(log.read_text()), flush=True)
    finally:
        reset(dbname, redis_url)


def soak_figures(log: str) -> str:
    """The soak's table, from its "Soak:" line to the one naming its chart."""
    table = log[log.index("Soak:") :]
    return table[: table.index("\n", table.index("Samples and chart:"))]
