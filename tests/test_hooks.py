"""The generation hooks: bad answers are refused with a clear message; a good bake gets a .env.

The hooks are tested twice: through cookiecutter, as a user meets them, and as plain functions.
"""

import ast
import subprocess
import sys

import post_gen_project
import pre_gen_project
import pytest
from bakery import TEMPLATE, bake

BAD_ANSWERS = [
    ({"project_slug": "my-chat"}, "project_slug 'my-chat' is not a valid Python identifier"),
    ({"project_slug": "2chat"}, "project_slug '2chat' is not a valid Python identifier"),
    ({"project_slug": "MyChat"}, "project_slug 'MyChat' is not a valid Python identifier"),
    ({"project_slug": "chat_"}, "project_slug 'chat_' is not a valid Python identifier"),
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
            "project_slug": "anns__chat2",
            "email": "ann+chat@example.org",
        },
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "anns__chat2"
    assert (project / "manage.py").exists()
    # The lock names the project as uv normalises it (runs of "_" become one "-").
    assert 'name = "anns-chat2"' in (project / "uv.lock").read_text().splitlines()


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
    # The docker bake's passwords are fresh too, and URL-safe (they go into REDIS_URL).
    example = read_env(first / ".env.example")
    fresh = {"SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD"}
    for name in fresh & set(example):
        assert env[name] != example[name] == "change-me"
        assert env[name] != read_env(second / ".env")[name]
        assert env[name].replace("-", "").replace("_", "").isalnum()
    # Everything else is the project's own .env.example.
    assert {k: v for k, v in env.items() if k not in fresh} == {
        k: v for k, v in example.items() if k not in fresh
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


# The hooks as plain functions, without cookiecutter (the Jinja is only in their __main__).

GOOD_ANSWERS = {
    "project_name": "Realtime Chat",
    "project_slug": "realtime_chat",
    "email": "you@example.com",
    "author_name": "Your Name",
    "description": "A real-time Django project.",
}
ALL_UNCHOSEN = {"db_pooling": "django_pool", "use_docker": "n", "asgi_server": "daphne"}
ALL_CHOSEN = {"db_pooling": "pgbouncer", "use_docker": "y", "asgi_server": "uvicorn"}


def test_problems_accepts_good_answers():
    assert pre_gen_project.problems(GOOD_ANSWERS) == []


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_problems_names_the_bad_answer(answers, message):
    found = pre_gen_project.problems({**GOOD_ANSWERS, **answers})
    assert len(found) == 1, found
    assert message in found[0]


def test_problems_lists_every_bad_answer_at_once():
    found = pre_gen_project.problems({**GOOD_ANSWERS, "project_slug": "chat", "email": "x"})
    assert len(found) == 2, found


def option_tree(root):
    """Every option-specific path of the template, plus one file that always stays."""
    for paths in post_gen_project.ONLY_FOR.values():
        for relative in paths:
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if "." in path.name:
                path.write_text("x")
            else:
                path.mkdir()
                (path / "inside.ini").write_text("x")
    (root / "manage.py").write_text("x")


def test_remove_unchosen_removes_files_and_directories(tmp_path):
    option_tree(tmp_path)
    post_gen_project.remove_unchosen(tmp_path, ALL_UNCHOSEN)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["manage.py"]
    assert not (tmp_path / "pgbouncer").exists()
    # Re-running it (as cruft update does, over the same answers) changes nothing more.
    post_gen_project.remove_unchosen(tmp_path, ALL_UNCHOSEN)
    assert (tmp_path / "manage.py").exists()


def test_remove_unchosen_keeps_the_chosen_ones(tmp_path):
    option_tree(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    post_gen_project.remove_unchosen(tmp_path, ALL_CHOSEN)
    assert sorted(tmp_path.rglob("*")) == before


def test_write_env_keeps_an_existing_file(tmp_path):
    (tmp_path / ".env.example").write_text("SECRET_KEY=change-me\nDEBUG=true\n")
    assert post_gen_project.write_env(tmp_path) is True
    written = (tmp_path / ".env").read_text()
    assert "SECRET_KEY=change-me" not in written and "DEBUG=true" in written
    (tmp_path / ".env").write_text("SECRET_KEY=mine\n")
    assert post_gen_project.write_env(tmp_path) is False
    assert (tmp_path / ".env").read_text() == "SECRET_KEY=mine\n"


def test_next_steps_name_the_broker_to_run(tmp_path):
    """RabbitMQ joins the servers to start only for a project that chose it."""
    assert "RabbitMQ" not in post_gen_project.next_steps(tmp_path, {"broker": "redis"})
    steps = post_gen_project.next_steps(tmp_path, {"broker": "rabbitmq"})
    assert "Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672 must be running" in steps


def test_env_example_names_the_chosen_broker(tmp_path):
    redis_env = read_env(bake(tmp_path / "r", project_slug="brokers", broker="redis") / ".env")
    rabbit_env = read_env(bake(tmp_path / "q", project_slug="brokers", broker="rabbitmq") / ".env")
    assert "CELERY_BROKER_URL" not in redis_env, "Redis is the broker by default: REDIS_URL"
    assert rabbit_env["CELERY_BROKER_URL"].startswith("amqp://")


def test_next_steps_point_to_the_upgrade_docs(tmp_path):
    assert "docs/upgrading.md" in post_gen_project.next_steps(tmp_path)


def jinja_strings(tree) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{{" in node.value
    ]


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_hooks_render_answers_only_in_main(hook):
    """Importable as they are: the only Jinja is in the `if __name__ == "__main__":` block."""
    module = ast.parse((TEMPLATE / "hooks" / hook).read_text())
    main_blocks = [
        node
        for node in module.body
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
    ]
    assert len(main_blocks) == 1
    outside = [node for node in module.body if node is not main_blocks[0]]
    assert not [s for node in outside for s in jinja_strings(node)]
    assert jinja_strings(main_blocks[0]), "the __main__ block renders no answer"
