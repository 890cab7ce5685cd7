"""A project baked at an earlier commit of this template takes the template's later changes
with `cruft update`, as the generated docs/upgrading.md tells its owners to.

The project is made with `cruft create` at the earlier commit, committed to a git repository
of its own with a change of its owner's, then updated to this checkout's HEAD. The update must
apply cleanly (no rejected hunk, no conflict), leave the owner's change alone, give exactly
what a fresh bake at HEAD gives, and pass the project's own checks.

cruft clones this repository, so it sees commits only: locally, uncommitted changes are not
part of the test. The earlier commit is UPGRADE_FROM if set, else where this branch left main
(their merge-base), else, on main itself, the commit before the newest change of the template.
"""

import filecmp
import json
import os
import subprocess
import sys
import tomllib

import pytest
from bakery import COMBINATIONS, TEMPLATE, combo_id, explain, project_env, run, tool

TEMPLATE_PATHS = ["{{cookiecutter.project_slug}}", "hooks", "cookiecutter.json"]
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}
ANSWERS = [COMBINATIONS[0], COMBINATIONS[-1]]
# Not part of a bake's comparison: cruft's state, the random secret, git's and Python's files.
LOCAL_ONLY = {".cruft.json", ".env", ".git", "__pycache__", "OWNERS_NOTES.md"}


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(TEMPLATE), *args], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr}")
    return result.stdout.strip()


def earlier_commit() -> str:
    if os.environ.get("UPGRADE_FROM"):
        return git("rev-parse", os.environ["UPGRADE_FROM"])
    head = git("rev-parse", "HEAD")
    for main in ("origin/main", "main"):
        try:
            base = git("merge-base", "HEAD", main)
        except RuntimeError:
            continue
        if base != head:
            return base
    newest_change = git("log", "--first-parent", "-1", "--format=%H", "HEAD", "--", *TEMPLATE_PATHS)
    return git("rev-parse", f"{newest_change}^1")


def cruft(*args: str, cwd) -> subprocess.CompletedProcess:
    return run([tool("cruft"), *args], cwd=cwd, env=project_env(**GIT_IDENTITY), timeout=300)


def committed(project) -> None:
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "work"]):
        result = run(cmd, cwd=project, env=project_env(**GIT_IDENTITY))
        assert result.returncode == 0, explain(result)


def tree_differences(left, right) -> list[str]:
    """Files that differ, or exist on one side only, between two project directories."""
    found = []

    def walk(comparison, prefix=""):
        for name in comparison.left_only + comparison.right_only + comparison.diff_files:
            found.append(prefix + name)
        for name in comparison.common_funny + comparison.funny_files:
            found.append(prefix + name)
        for name, sub in comparison.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=sorted(LOCAL_ONLY)))
    return found


@pytest.mark.parametrize("answers", ANSWERS, ids=combo_id)
def test_cruft_update_from_an_earlier_commit(tmp_path, answers):
    base, head = earlier_commit(), git("rev-parse", "HEAD")
    assert base != head
    context = json.dumps({"project_slug": "tpl_upgrade", **answers})
    created = cruft(
        "create", str(TEMPLATE), "--checkout", base, "--no-input", "--extra-context", context,
        "--output-dir", str(tmp_path / "old"),
        # Projects baked before pyproject.toml told cruft to skip .env need it said once
        # (docs/upgrading.md); later ones need nothing.
        *([] if "[tool.cruft]" in git("show", f"{base}:{TEMPLATE_PATHS[0]}/pyproject.toml")
          else ["--skip", ".env"]),
        cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, f"the earlier commit {base} does not bake:\n{explain(created)}"
    project = tmp_path / "old" / "tpl_upgrade"
    result = run(["git", "init", "-q"], cwd=project)
    assert result.returncode == 0, explain(result)
    committed(project)
    (project / "OWNERS_NOTES.md").write_text("The owner's own file, unknown to the template.\n")
    committed(project)

    updated = cruft("update", "--checkout", head, "--skip-apply-ask", cwd=project)
    assert updated.returncode == 0, explain(updated)
    status = run(["git", "status", "--porcelain"], cwd=project).stdout
    rejected = sorted(str(p.relative_to(project)) for p in project.rglob("*.rej"))
    assert not rejected, f"hunks rejected: {rejected}\n{explain(updated)}"
    assert not [line for line in status.splitlines() if line[:2] in ("UU", "AA", "DU", "UD")]
    assert json.loads((project / ".cruft.json").read_text())["commit"] == head
    assert (project / "OWNERS_NOTES.md").exists()

    # An option added since the earlier commit keeps its default in an updated project (cruft
    # updates with the answers it recorded), so the fresh bake leaves it at the default too.
    known = json.loads(git("show", f"{base}:cookiecutter.json"))
    context = json.dumps({k: v for k, v in json.loads(context).items() if k in known})
    fresh = cruft(
        "create", str(TEMPLATE), "--checkout", head, "--no-input", "--extra-context", context,
        "--output-dir", str(tmp_path / "fresh"), cwd=tmp_path,
    )  # fmt: skip
    assert fresh.returncode == 0, explain(fresh)
    assert tree_differences(project, tmp_path / "fresh" / "tpl_upgrade") == []

    for cmd in (
        [tool("ruff"), "check", "."],
        [tool("ruff"), "format", "--check", "."],
        [tool("lint-imports"), "--no-cache"],
        [sys.executable, "manage.py", "check"],
    ):
        result = run(cmd, cwd=project)
        assert result.returncode == 0, explain(result)


def test_the_project_documents_the_upgrade_loop(baked):
    project = baked(COMBINATIONS[0])
    assert "(docs/upgrading.md)" in (project / "README.md").read_text()
    guide = (project / "docs" / "upgrading.md").read_text()
    for step in ("cruft create", "cruft link", "cruft update", "make lock", '"skip": [".env"]'):
        assert step in guide, step
    skip = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["cruft"]["skip"]
    assert ".env" in skip, "cruft would try to patch the random SECRET_KEY of .env"
