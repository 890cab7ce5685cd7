"""The Docker files of use_docker=y bakes: the stack they describe, and compose's own check."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from bakery import COMBINATIONS, combo_id, explain, project_env, run

DOCKER_BAKES = [c for c in COMBINATIONS if c["use_docker"] == "y"]


def compose(project):
    return yaml.safe_load((project / "docker-compose.yml").read_text())


def procfile_names(project) -> set[str]:
    lines = (project / "Procfile").read_text().splitlines()
    return {line.split(":", 1)[0].strip() for line in lines if ":" in line}


@pytest.mark.parametrize("answers", DOCKER_BAKES, ids=combo_id)
def test_compose_stack(baked, answers):
    project = baked(answers)
    services = compose(project)["services"]
    pgbouncer = answers["db_pooling"] == "pgbouncer"
    rabbitmq = answers["broker"] == "rabbitmq"
    expected = {"postgres", "redis", "redis-channels", "migrate", "web", "worker"} | (
        {"pgbouncer"} if pgbouncer else set()
    )
    assert set(services) == expected | ({"rabbitmq"} if rabbitmq else {"redis-broker"})

    # PostgreSQL asks for a password; every image is a pinned release.
    assert "trust" not in json.dumps(services["postgres"]).lower()
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")
    for name, service in services.items():
        if "image" in service:
            image, _, tag = service["image"].partition(":")
            assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned ({tag!r})"

    if rabbitmq:
        # Its own user and password, never RabbitMQ's guest; migrate waits until it answers.
        rabbit_env = services["rabbitmq"]["environment"]
        assert rabbit_env["RABBITMQ_DEFAULT_USER"] != "guest"
        assert rabbit_env["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD")
        assert services["migrate"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    for name in ("migrate", "web", "worker"):
        env = services[name]["environment"]
        assert "@postgres:5432/" in env["DATABASE_URL"]
        if rabbitmq:
            assert env["CELERY_BROKER_URL"].startswith("amqp://chat:${RABBITMQ_PASSWORD")
            assert "@rabbitmq:5672/" in env["CELERY_BROKER_URL"]
        else:
            assert "@redis-broker:6379/" in env["CELERY_BROKER_URL"]
        # settings.py sends only the web and worker roles through PGBOUNCER_URL.
        if pgbouncer:
            assert "@pgbouncer:6432/" in env["PGBOUNCER_URL"]
        else:
            assert "PGBOUNCER_URL" not in env
    for name in ("web", "worker"):
        # The processes run the Procfile's own lines.
        command = services[name]["command"]
        command = command if isinstance(command, list) else command.split()
        assert command[:2] == ["honcho", "start"] and command[-1] == name
        assert name in procfile_names(project)
    # Probes: the web process's liveness endpoint, the worker's metrics endpoint.
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["worker"]["environment"]["WORKER_METRICS_PORT"] == "9100"
    assert ":9100/metrics" in " ".join(services["worker"]["healthcheck"]["test"])
    if pgbouncer:
        mounts = [v.split(":")[0] for v in services["pgbouncer"]["volumes"]]
        assert "./pgbouncer" in mounts
        # The service rewrites these two lines of the project's ini for the compose network.
        ini = (project / "pgbouncer" / "pgbouncer.ini").read_text()
        assert re.search(r"^listen_addr *=", ini, re.MULTILINE), "no listen_addr line to rewrite"
        assert re.search(r"^\* *=", ini, re.MULTILINE), "no '*' database line to rewrite"
        for setting in ("auth_type", "auth_file"):
            assert re.search(rf"^{setting} *=", ini, re.MULTILINE), f"no {setting} to rewrite"
        command = " ".join(services["pgbouncer"]["command"])
        assert "auth_type = scram-sha-256" in command and "POSTGRES_PASSWORD" in command


@pytest.mark.parametrize("answers", DOCKER_BAKES, ids=combo_id)
def test_compose_gives_each_redis_role_its_own_server(baked, answers):
    """The store's and the broker's data survive a restart (append-only file); the channel
    layer's is not worth keeping (docs/scaling.md). Nothing answers without a password."""
    services = compose(baked(answers))["services"]
    persisted = {"REDIS_URL": "redis"}
    if answers["broker"] == "redis":
        persisted["CELERY_BROKER_URL"] = "redis-broker"
    roles = {**persisted, "CHANNEL_LAYER_URLS": "redis-channels"}
    for variable, name in roles.items():
        command = " ".join(services[name]["command"])
        assert "--requirepass" in command
        if name in persisted.values():
            assert "--appendonly yes" in command and "--appendfsync everysec" in command
        else:
            assert '--save ""' in command and "--appendonly no" in command
        assert services["migrate"]["depends_on"][name]["condition"] == "service_healthy"
        for process in ("migrate", "web", "worker"):
            assert f"@{name}:6379/" in services[process]["environment"][variable]


@pytest.mark.parametrize("answers", DOCKER_BAKES[:1], ids=combo_id)
def test_dockerfile(baked, answers):
    text = (baked(answers) / "Dockerfile").read_text()
    lines = [
        line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert ["FROM", "python:3.12.8-slim-bookworm"] in lines  # a pinned release
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must not run as root"
    assert ".env" in (baked(answers) / ".dockerignore").read_text().split()


def compose_cli() -> list[str] | None:
    """The docker compose command, if this machine has one (no engine is needed)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.parametrize("answers", DOCKER_BAKES, ids=combo_id)
def test_docker_compose_config(baked, answers):
    command = compose_cli()
    if command is None:
        pytest.skip(
            "no docker compose here (neither the docker CLI's compose plugin nor docker-compose)"
        )
    project = baked(answers)
    result = run([*command, "config", "--quiet"], cwd=project, env=project_env())
    assert result.returncode == 0, explain(result)
