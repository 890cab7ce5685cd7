"""Finish a freshly generated project: drop unchosen options' files, write .env, say what next.

Cookiecutter runs this from inside the generated project directory, after rendering it with
the answers. The functions are plain (the template's tests import them); the answers are
rendered only in the __main__ block.

Re-running it must not churn: `cruft update` renders the template twice (the old and the new
commit), hooks included, and applies the difference. Only .env carries a random value, and
the generated pyproject.toml tells cruft to skip it ([tool.cruft] skip); everything else this
hook does depends on the answers alone.
"""

import secrets
import shutil
import sys
from pathlib import Path

# Paths that belong to one answer of an option only: every project that chose another answer
# loses them. Paths are relative to the project root; a directory goes with its contents.
ONLY_FOR = {
    ("db_pooling", "pgbouncer"): ["pgbouncer", "tests/pgbouncer.py"],
    ("use_docker", "y"): ["Dockerfile", "docker-compose.yml", ".dockerignore"],
    ("asgi_server", "uvicorn"): ["config/uvicorn_protocol.py"],
}


def unchosen(answers: dict[str, str]) -> list[str]:
    """The paths, relative to the project root, that these answers do not want."""
    return [
        relative
        for (option, value), paths in ONLY_FOR.items()
        if answers[option] != value
        for relative in paths
    ]


def remove_unchosen(root: Path, answers: dict[str, str]) -> None:
    for relative in unchosen(answers):
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


# Lines of .env.example whose value is replaced by a fresh random secret in .env.
FRESH_SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD")


def write_env(root: Path) -> bool:
    """.env = the project's .env.example with fresh secrets; an existing .env is kept.

    Returns whether it wrote one."""
    env_file = root / ".env"
    if env_file.exists():
        return False
    lines = (root / ".env.example").read_text(encoding="utf-8").splitlines()
    for name in FRESH_SECRETS:
        fresh = f"{name}={secrets.token_urlsafe(50 if name == 'SECRET_KEY' else 24)}"
        lines = [fresh if line.startswith(f"{name}=") else line for line in lines]
    header = "# Written when the project was generated, with fresh secrets: never commit it."
    env_file.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    env_file.chmod(0o600)
    return True


def services(answers: dict[str, str]) -> list[str]:
    """The servers a development machine runs for a project baked with these answers."""
    found = ["PostgreSQL on 127.0.0.1:5432", "Redis on 127.0.0.1:6379"]
    if answers.get("broker") == "rabbitmq":
        found.append("RabbitMQ on 127.0.0.1:5672")
    return found


def next_steps(root: Path, answers: dict[str, str] | None = None) -> str:
    *others, last = services(answers or {})
    return (
        f"\nCreated {root}\n"
        f"Next steps ({', '.join(others)} and {last} must be running):\n"
        f"  cd {root}\n"
        "  make install   # .venv/ from the lock file (uv.lock) with the project and its tools\n"
        "  make migrate   # checks PostgreSQL and Redis, creates the database, migrates\n"
        "  make run       # web and worker; open http://127.0.0.1:8000/\n"
        "  make test\n"
        "To take the template's later fixes: docs/upgrading.md (cruft).\n"
    )


def main(root: Path, answers: dict[str, str]) -> int:
    remove_unchosen(root, answers)
    if not write_env(root):
        print("Kept the existing .env.")
    print(next_steps(root, answers))
    return 0


if __name__ == "__main__":
    ANSWERS = {
        "asgi_server": "{{ cookiecutter.asgi_server }}",
        "channel_layer": "{{ cookiecutter.channel_layer }}",
        "db_pooling": "{{ cookiecutter.db_pooling }}",
        "broker": "{{ cookiecutter.broker }}",
        "use_docker": "{{ cookiecutter.use_docker }}",
    }
    sys.exit(main(Path.cwd(), ANSWERS))
