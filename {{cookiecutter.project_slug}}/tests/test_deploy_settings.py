"""The documented production environment passes ``manage.py check --deploy`` cleanly."""

import os
import secrets
import subprocess
import sys

from tests.processes import PROJECT_DIR

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
    dev_key = "insecure-dev-key-change-me-in-production"
    weak_key = check_deploy({**PRODUCTION, "SECRET_KEY": dev_key})
    assert weak_key.returncode != 0 and "security.W009" in weak_key.stderr
