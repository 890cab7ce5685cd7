"""The documented production environment passes ``manage.py check --deploy`` cleanly; with
DEBUG off, a missing, short or published SECRET_KEY is an error everywhere, and the ASGI
server refuses to start with one."""

import os
import secrets
import subprocess
import sys

import pytest

from ops.checks import secret_key_is_real
from support.processes import PROJECT_DIR, Process

# docs/operations.md, "Production settings".
PRODUCTION = {
    "DEBUG": "false",
    "HTTPS": "true",
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
}


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env={**os.environ, "PROCESS_ROLE": "manage", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_production_environment_passes_check_deploy_without_a_warning():
    result = check_deploy({**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_https_or_with_the_development_key_check_deploy_fails():
    """The check above can fail: each missing piece is reported."""
    plain = check_deploy({**PRODUCTION, "HTTPS": "false", "SECRET_KEY": secrets.token_urlsafe(50)})
    assert plain.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in plain.stderr


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("insecure-dev-key-change-me-in-production", id="the-template-fallback"),
        pytest.param("change-me", id="the-env-example-placeholder"),
        pytest.param("django-insecure-" + secrets.token_urlsafe(40), id="a-startproject-key"),
        pytest.param(secrets.token_urlsafe(20), id="short"),
        pytest.param("ab" * 30, id="plain"),
    ],
)
def test_a_published_short_or_plain_key_is_an_error_with_debug_off(settings, key):
    settings.SECRET_KEY, settings.DEBUG = key, False
    [error] = secret_key_is_real()
    assert error.id == "ops.E002" and error.is_serious()
    settings.DEBUG = True
    assert secret_key_is_real() == []  # development is left alone
    settings.SECRET_KEY, settings.DEBUG = secrets.token_urlsafe(50), False
    assert secret_key_is_real() == []


def test_without_a_key_check_deploy_fails_with_an_error():
    """No SECRET_KEY at all: the development fallback stands in, and is refused. An error,
    not a warning: ``check --deploy`` fails whatever ``--fail-level``."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=PROJECT_DIR,
        env={**os.environ, "PROCESS_ROLE": "manage", **PRODUCTION, "SECRET_KEY": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout
    assert "ERRORS:" in result.stderr and "ops.E002" in result.stderr


def test_the_asgi_server_refuses_to_start_with_a_published_key(tmp_path):
    env = {**PRODUCTION, "SECRET_KEY": "change-me", "PORT": "0"}
    web = Process("web", env, tmp_path / "web.log")
    try:
        web.popen.wait(60)
    finally:
        web.stop()
    assert web.popen.returncode != 0
    assert "ops.E002" in web.output()
