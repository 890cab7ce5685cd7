"""Finish a freshly generated project: drop unchosen options' files, write .env, say what next.

Cookiecutter runs this from inside the generated project directory.
"""

import secrets
import shutil
import sys
from pathlib import Path

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
    """.env = the project's .env.example with a fresh SECRET_KEY; an existing .env is kept."""
    env_file = root / ".env"
    if env_file.exists():
        print(f"Kept the existing {env_file.name}.")
        return
    lines = (root / ".env.example").read_text(encoding="utf-8").splitlines()
    secret = f"SECRET_KEY={secrets.token_urlsafe(50)}"
    lines = [secret if line.startswith("SECRET_KEY=") else line for line in lines]
    header = "# Written when the project was generated, with a fresh SECRET_KEY: never commit it."
    env_file.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
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
