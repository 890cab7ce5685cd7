"""Finish a freshly generated project: drop unchosen options' files, write .env, say what next.

Cookiecutter runs this from inside the generated project directory.
"""

import secrets
import shutil
import sys
from pathlib import Path

PROJECT_SLUG = "{{ cookiecutter.project_slug }}"
ANSWERS = {
    "asgi_server": "{{ cookiecutter.asgi_server }}",
    "channel_layer": "{{ cookiecutter.channel_layer }}",
    "db_pooling": "{{ cookiecutter.db_pooling }}",
    "use_docker": "{{ cookiecutter.use_docker }}",
}

# Paths that belong to one answer of an option only: every project that chose another answer
# loses them. Paths are relative to the project root; a directory goes with its contents.
ONLY_FOR = {
    ("db_pooling", "pgbouncer"): ["pgbouncer", "tests/pgbouncer.py"],
    ("use_docker", "y"): ["Dockerfile", "docker-compose.yml", ".dockerignore"],
}

# The application reaches PostgreSQL through pgbouncer when it was chosen.
DATABASE_PORT = {"django_pool": 5432, "pgbouncer": 6432}


def remove_unchosen(root: Path) -> None:
    for (option, value), paths in ONLY_FOR.items():
        if ANSWERS[option] == value:
            continue
        for relative in paths:
            path = root / relative
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def write_env(root: Path) -> None:
    """A .env for local development with a fresh SECRET_KEY; an existing one is kept."""
    env_file = root / ".env"
    if env_file.exists():
        print(f"Kept the existing {env_file.name}.")
        return
    port = DATABASE_PORT[ANSWERS["db_pooling"]]
    env_file.write_text(
        "# Local development settings, read by config/settings.py; real environment\n"
        "# variables win. Generated for this checkout: never commit it.\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        "DEBUG=true\n"
        "ALLOWED_HOSTS=localhost,127.0.0.1\n"
        f"DATABASE_URL=postgres://postgres@127.0.0.1:{port}/{PROJECT_SLUG}\n"
        "REDIS_URL=redis://127.0.0.1:6379/0\n",
        encoding="utf-8",
    )
    env_file.chmod(0o600)


def print_next_steps(root: Path) -> None:
    print(
        f"\nCreated {root}\n"
        "Next steps (PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 must be running):\n"
        f"  cd {root}\n"
        "  make install   # .venv/ with the project and its tools (PYTHON=/path/to/python)\n"
        "  make migrate   # checks PostgreSQL and Redis, creates the database, migrates\n"
        "  make run       # web and worker; open http://127.0.0.1:8000/\n"
        "  make test\n"
    )


def main() -> int:
    root = Path.cwd()
    remove_unchosen(root)
    write_env(root)
    print_next_steps(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
