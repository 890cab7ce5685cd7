"""Baking helpers shared by the template's tests (a plain module: conftest.py holds only
fixtures and hooks, and pytest advises against importing it).

Every bake goes through cookiecutter's own API, hooks included, into pytest's temporary
directory. The slow tests install baked projects and run their make targets (``make``), each
on a database and Redis db of its own, cleaned before and after (``reset``).
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from cookiecutter.main import cookiecutter
from psycopg import sql

TEMPLATE = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))

# The choice options and their values, in cookiecutter.json's order (first = default).
OPTIONS = {
    name: values
    for name, values in CONTEXT.items()
    if isinstance(values, list) and not name.startswith("_")
}
COMBINATIONS = [
    dict(zip(OPTIONS, values, strict=True)) for values in itertools.product(*OPTIONS.values())
]

# Files that exist only for one answer of an option: the tests' own statement of what the
# post-generation hook must remove, kept apart from the hook's copy on purpose.
ONLY_FOR = {
    ("db_pooling", "pgbouncer"): ["pgbouncer/pgbouncer.ini", "tests/pgbouncer.py"],
    ("use_docker", "y"): ["Dockerfile", "docker-compose.yml", ".dockerignore"],
    ("asgi_server", "uvicorn"): ["config/uvicorn_protocol.py"],
}

POSTGRES_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
# The RabbitMQ of broker=rabbitmq bakes (CI and development machines run one).
RABBITMQ_URL = os.environ.get("TEMPLATE_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_SERVER = "redis://127.0.0.1:6379"
# Marks a Redis database as taken by a run of these tests (its value says which run).
REDIS_CLAIM = "template-tests:claimed-by"

# Variables of the calling shell that must not leak into a baked project's commands.
LEAKY_ENV = (
    "VIRTUAL_ENV",
    "PYTHONHOME",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "DJANGO_SETTINGS_MODULE",
    "PROCESS_ROLE",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "PORT",
)


def combo_id(answers: dict) -> str:
    """A readable test id, e.g. daphne-redis-django_pool-broker_redis-docker_y."""
    prefixes = {"use_docker": "docker_", "broker": "broker_"}
    return "-".join(f"{prefixes.get(name, '')}{value}" for name, value in answers.items())


def bake(output_dir: Path, **answers) -> Path:
    """Generate a project with these answers (the rest default) and return its directory."""
    project = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
        default_config=True,
    )
    return Path(project)


def project_env(**extra: str) -> dict:
    """The environment for a command run inside a baked project: nothing inherited that
    would steer it (the tooling's virtualenv, make's flags, project settings), plus extra.
    The tooling virtualenv's bin/ is dropped from PATH so `python` is never it by accident."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV and not k.startswith("PYTEST")}
    venv_bin = str(Path(sys.prefix) / "bin")
    if sys.prefix != sys.base_prefix:
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin
        )
    env.update(extra)
    return env


def tool(name: str) -> str:
    """A command installed in the tooling virtualenv (ruff, lint-imports...)."""
    return str(Path(sys.executable).parent / name)


def run(cmd: list[str], cwd: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kwargs.pop("env", None) or project_env(),
        **kwargs,
    )


def explain(result: subprocess.CompletedProcess) -> str:
    return (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    )


def reset(dbname: str, redis_url: str) -> None:
    """Drop a bake's databases (its own, pytest-django's test_ copy, the benchmark's _bench)
    and empty its Redis db (one of own_redis_db(), whose claim survives)."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        for name in (dbname, f"test_{dbname}", f"{dbname}_bench"):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    client = redis.Redis.from_url(redis_url)
    try:
        claim = client.get(REDIS_CLAIM)
        client.flushdb()
        if claim:
            client.set(REDIS_CLAIM, claim, ex=6 * 3600)
    finally:
        client.close()


@contextmanager
def own_redis_db(label: str) -> Iterator[int]:
    """The number of a Redis database that nothing else uses, for one baked project's run.

    Fixed numbers collided on machines shared by several people or runs, and emptying the
    database before and after a run destroyed whatever else was there. The highest-numbered
    empty database is claimed with a key (SET NX, so two runs never take the same one) and
    released at the end; the caller empties it with reset() as before."""
    admin = redis.Redis.from_url(REDIS_SERVER)
    try:
        count = int(admin.config_get("databases").get("databases", 16))
    finally:
        admin.close()
    for number in range(count - 1, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
        try:
            claimed = client.set(REDIS_CLAIM, f"{label} pid {os.getpid()}", nx=True, ex=6 * 3600)
            if claimed and client.dbsize() == 1:
                try:
                    yield number
                finally:
                    client.delete(REDIS_CLAIM)
                return
            if claimed:  # something else's data is there: leave it alone
                client.delete(REDIS_CLAIM)
        finally:
            client.close()
    pytest.fail(f"no empty Redis database left on {REDIS_SERVER}", pytrace=False)


def make(target: str, project: Path, env: dict, timeout: float, *args: str) -> Path:
    """Run a make target of the baked project, logging everything to a file; fail with its tail.

    Returns the log's path."""
    label = project.parent.name
    log = project.parent / f"make-{target}.log"
    print(f"\n    [{label}] make {target} ... (log: {log})", flush=True)
    with log.open("w") as out:
        try:
            code = subprocess.run(
                ["make", target, *args],
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            code = f"killed after {timeout}s"
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(f"make {target} in {label}: exit {code}\n{tail}", pytrace=False)
    return log


def python_version(executable: str) -> str | None:
    """'3.13' for a working Python 3.13 interpreter, None when it does not run (a pyenv shim
    of a version that is not selected exits non-zero)."""
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            env=project_env(),
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_python(version: str) -> str | None:
    """An interpreter of this version: `python3.13` on the PATH, else one that pyenv installed
    (its shims on the PATH answer only for the selected versions), else None."""
    name = f"python{version}"
    found = shutil.which(name, path=project_env()["PATH"])
    if found and python_version(found) == version:
        return found
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        for candidate in sorted(Path(root).glob(f"versions/{version}*/bin/{name}"), reverse=True):
            if python_version(str(candidate)) == version:
                return str(candidate)
    return None
