"""The generation hooks: bad answers are refused with a clear message; a good bake gets a .env."""

import subprocess
import sys

import pytest
from conftest import TEMPLATE, bake

BAD_ANSWERS = [
    ({"project_slug": "my-chat"}, "project_slug 'my-chat' is not a valid Python identifier"),
    ({"project_slug": "2chat"}, "project_slug '2chat' is not a valid Python identifier"),
    ({"project_slug": "MyChat"}, "project_slug 'MyChat' is not a valid Python identifier"),
    ({"project_slug": "class"}, "project_slug 'class' is a Python keyword"),
    ({"project_slug": "django"}, "project_slug 'django' is a reserved name"),
    ({"project_slug": "chat"}, "project_slug 'chat' is a reserved name"),
    ({"project_slug": "celery"}, "project_slug 'celery' is a reserved name"),
    ({"project_slug": "json"}, "project_slug 'json' is a reserved name"),
    ({"email": "nobody"}, "email 'nobody' is not an e-mail address"),
    ({"email": "a@b@c"}, "email 'a@b@c' is not an e-mail address"),
    ({"project_name": " ", "project_slug": "fine"}, "project_name is empty"),
    ({"author_name": 'Ann "The Dev"'}, "author_name 'Ann \"The Dev\"' contains a double quote"),
]


def cookiecutter_cli(output_dir, answers: dict) -> subprocess.CompletedProcess:
    """Run cookiecutter as a user would, so that the hook's stderr is what a user sees."""
    args = [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(TEMPLATE),
            "--no-input",
            "-o",
            output_dir,
            *args,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_bad_answer_is_refused(tmp_path, answers, message):
    result = cookiecutter_cli(tmp_path, answers)
    assert result.returncode != 0, "cookiecutter accepted a bad answer"
    assert "ERROR: cannot generate the project:" in result.stderr
    assert message in result.stderr, result.stderr
    assert "Nothing was generated." in result.stderr
    assert list(tmp_path.iterdir()) == [], "a half-made project was left behind"


def test_unusual_but_valid_answers_bake(tmp_path):
    result = cookiecutter_cli(
        tmp_path,
        {
            "project_name": "Ann's Chat & Co",
            "project_slug": "anns_chat2",
            "email": "ann+chat@example.org",
        },
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "anns_chat2" / "manage.py").exists()


def test_default_slug_follows_project_name(tmp_path):
    assert bake(tmp_path, project_name="Team Chat-Room").name == "team_chat_room"


def read_env(path) -> dict:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("pooling", ["django_pool", "pgbouncer"])
def test_env_file(tmp_path, pooling):
    first = bake(tmp_path / "a", project_slug="envcheck", db_pooling=pooling)
    second = bake(tmp_path / "b", project_slug="envcheck", db_pooling=pooling)
    env = read_env(first / ".env")
    assert len(env["SECRET_KEY"]) >= 50
    assert env["SECRET_KEY"] != read_env(second / ".env")["SECRET_KEY"], "SECRET_KEY not fresh"
    assert env["DATABASE_URL"] == "postgres://postgres@127.0.0.1:5432/envcheck"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert env["DEBUG"] == "true"
    assert env["ALLOWED_HOSTS"] == "localhost,127.0.0.1"
    if pooling == "pgbouncer":
        assert env["PGBOUNCER_URL"] == "postgres://postgres@127.0.0.1:6432/envcheck"
    else:
        assert "PGBOUNCER_URL" not in env
    # Everything else is the project's own .env.example.
    example = read_env(first / ".env.example")
    assert {k: v for k, v in env.items() if k != "SECRET_KEY"} == {
        k: v for k, v in example.items() if k != "SECRET_KEY"
    }
    assert ((first / ".env").stat().st_mode & 0o077) == 0, ".env is readable by others"


def test_rebake_keeps_existing_env(tmp_path):
    """make demo re-bakes over its last project: the .env someone edited must survive."""
    project = bake(tmp_path, project_slug="rebake")
    (project / ".env").write_text("SECRET_KEY=kept\n")
    from cookiecutter.main import cookiecutter

    cookiecutter(
        str(TEMPLATE),
        no_input=True,
        extra_context={"project_slug": "rebake"},
        output_dir=str(tmp_path),
        overwrite_if_exists=True,
        default_config=True,
    )
    assert (project / ".env").read_text() == "SECRET_KEY=kept\n"


def test_next_steps_are_printed(tmp_path):
    result = cookiecutter_cli(tmp_path, {"project_slug": "steps"})
    assert result.returncode == 0, result.stderr
    for step in ("cd ", "make install", "make migrate", "make run", "make test"):
        assert step in result.stdout, result.stdout
