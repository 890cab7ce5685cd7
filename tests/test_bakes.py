"""Every combination of options bakes into a clean, lint-free project that Django accepts."""

import re
import sys
from fnmatch import fnmatch

from bakery import CONTEXT, ONLY_FOR, explain, run, tool

# Jinja left in the output: an opening "{{" or "{%", or a closing "%}" or "}}" after a space
# or "-" as Jinja writes them. A bare "}}" or "%}" is legitimate code: nested dict literals
# end with "}}", and an f-string's format spec can end with "%}" as in f"{ratio:.0%}".
JINJA_LEFTOVER = re.compile(r"\{\{|\{%|[\s-]%\}|[\s-]\}\}")
# Django templates are meant to contain {% %} and {{ }}; only template-time leftovers count.
COOKIECUTTER_LEFTOVER = re.compile(r"\{[{%][^}]*cookiecutter|\{%-?\s*(end)?raw\s*-?%\}")


def text_files(project):
    for path in sorted(project.rglob("*")):
        if not path.is_file() or ".venv" in path.parts:
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary


def is_django_template(project, path) -> bool:
    return "templates" in path.relative_to(project).parts and path.suffix in {".html", ".txt"}


def test_no_template_leftovers(baked, combination):
    project = baked(combination)
    copied_verbatim = CONTEXT.get("_copy_without_render", [])
    leftovers = []
    for path, text in text_files(project):
        relative = path.relative_to(project)
        if any(fnmatch(str(relative), pattern) for pattern in copied_verbatim):
            continue
        pattern = COOKIECUTTER_LEFTOVER if is_django_template(project, path) else JINJA_LEFTOVER
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                leftovers.append(f"{relative}:{number}: {line.strip()}")
    assert not leftovers, "template syntax left in the baked project:\n" + "\n".join(leftovers)


def test_option_files(baked, combination):
    """Files of an unchosen answer are gone; files of the chosen one are there."""
    project = baked(combination)
    for (option, value), paths in ONLY_FOR.items():
        chosen = combination[option] == value
        for relative in paths:
            exists = (project / relative).exists()
            assert exists == chosen, (
                f"{relative} should {'exist' if chosen else 'be removed'} "
                f"when {option}={combination[option]}"
            )
    if combination["db_pooling"] != "pgbouncer":
        assert not (project / "pgbouncer").exists(), "the empty pgbouncer/ directory remains"


def test_ruff(baked, combination):
    project = baked(combination)
    for cmd in ([tool("ruff"), "check", "."], [tool("ruff"), "format", "--check", "--diff", "."]):
        result = run(cmd, cwd=project)
        assert result.returncode == 0, explain(result)


def test_import_contract(baked, combination):
    """The architecture contract (the WebSocket path never imports the ORM) holds."""
    project = baked(combination)
    result = run([tool("lint-imports"), "--no-cache"], cwd=project)
    assert result.returncode == 0, explain(result)


def test_mypy(baked, combination, tmp_path_factory):
    """The application packages type-check (django-stubs). One cache serves every bake:
    the combinations share most of their code, and mypy rechecks what differs."""
    project = baked(combination)
    cache = tmp_path_factory.getbasetemp() / "mypy-cache"
    result = run([tool("mypy"), "--cache-dir", str(cache)], cwd=project)
    assert result.returncode == 0, explain(result)


def test_manage_check(baked, combination):
    project = baked(combination)
    result = run([sys.executable, "manage.py", "check"], cwd=project)
    assert result.returncode == 0, explain(result)
