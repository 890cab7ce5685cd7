"""Baking helpers shared by the template's tests.

Every bake goes through cookiecutter's own API, hooks included, into pytest's temporary
directory. Bakes used by several tests are made once per session and cached by their answers.
The slow tests install baked projects and run their make targets (``make``), each on a
database and Redis db of its own, cleaned before and after (``reset``).
"""

import itertools
import json
import os
import subprocess
import sys
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
}

POSTGRES_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"

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
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "PORT",
)


def combo_id(answers: dict) -> str:
    """A readable test id, e.g. daphne-redis-django_pool-docker_y."""
    return "-".join(
        f"docker_{value}" if name == "use_docker" else value for name, value in answers.items()
    )


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
    and empty its Redis db."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        for name in (dbname, f"test_{dbname}", f"{dbname}_bench"):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


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


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """baked(answers) -> project directory, baked once per session for each set of answers."""
    cache: dict[str, Path] = {}

    def get(answers: dict) -> Path:
        key = combo_id(answers)
        if key not in cache:
            cache[key] = bake(tmp_path_factory.mktemp(key), **answers)
        return cache[key]

    return get


@pytest.fixture(params=COMBINATIONS, ids=combo_id)
def combination(request) -> dict:
    """Each combination of the choice options, one test id each."""
    return request.param


def pytest_collection_modifyitems(items):
    """Fast tests first, so their verdict comes before the slow ones install whole projects."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)
