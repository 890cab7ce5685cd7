"""The baked projects' lock: uv.lock and its pip exports agree with pyproject.toml, fork Django
by Python version, and pin nothing below a known security fix.

The lock lives in the template ({{cookiecutter.project_slug}}/uv.lock, one Jinja expression
for the project's name) and is rewritten by `make lock` (scripts/lock.sh). Every option bakes
the same dependencies, so one bake stands for all of them here.
"""

import shutil
import tomllib

import pytest
from bakery import COMBINATIONS, explain, project_env, run, tool

DEFAULTS = COMBINATIONS[0]

# Fixed versions of known advisories, for packages the lock pins (directly or not). A lock
# that pins an older version fails; `make lock ARGS=--upgrade-package NAME` moves it.
ADVISORY_FLOORS = {
    # Django's security releases of 2026-11-03, one per supported series.
    ("django", "5.2"): "5.2.19",
    ("django", "6.0"): "6.0.10",
    ("django", "6.1"): "6.1.3",
    ("h11", None): "0.16.0",  # CVE-2025-43859, request smuggling (uvicorn)
    ("twisted", None): "24.7.0",  # CVE-2024-41671, CVE-2024-41810 (daphne)
    ("autobahn", None): "20.12.3",  # CVE-2020-35678 (daphne)
    ("sqlparse", None): "0.5.0",  # CVE-2024-4340 (Django)
    ("cryptography", None): "44.0.1",  # CVE-2024-12797
    ("idna", None): "3.7",  # CVE-2024-3651
    ("pillow", None): "11.3.0",  # CVE-2025-48379 (matplotlib)
    ("virtualenv", None): "20.26.6",  # CVE-2024-53899 (pre-commit)
}
# The minimums pyproject.toml declares must exclude the same Django releases.
DECLARED_DJANGO_FLOORS = {"python_version < '3.12'": "5.2.19", "python_version >= '3.12'": "6.0.10"}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


@pytest.fixture(scope="module")
def project(baked):
    return baked(DEFAULTS)


@pytest.fixture(scope="module")
def lock(project) -> dict:
    return tomllib.loads((project / "uv.lock").read_text())


def lock_check(project, offline=True):
    """The bake's own `make lock-check`: uv lock --check, and the exports compared. Offline
    where the lock's own pins are all uv needs; a new dependency must be looked up in the
    index (uv's cache on a fresh machine holds none of its versions)."""
    env = project_env(UV_OFFLINE="1") if offline else project_env()
    return run(["make", "lock-check", f"UV={tool('uv')}"], cwd=project, env=env)


def test_lock_and_exports_are_current(project):
    result = lock_check(project)
    assert result.returncode == 0, explain(result)


def test_lock_check_fails_on_a_new_dependency(tmp_path, baked):
    project = tmp_path / "stale"
    shutil.copytree(baked(DEFAULTS), project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"honcho>=2",', '"honcho>=2",\n    "six",'))
    result = lock_check(project, offline=False)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr, explain(result)


def test_lock_check_fails_on_a_stale_export(tmp_path, baked):
    project = tmp_path / "stale"
    shutil.copytree(baked(DEFAULTS), project)
    export = project / "requirements-dev.txt"
    export.write_text(export.read_text().replace("django==5.2.19", "django==5.2.18"))
    result = lock_check(project)
    assert result.returncode != 0
    assert "requirements-dev.txt is stale: run make lock" in result.stderr, explain(result)


def test_lock_forks_django_on_the_python_version(lock):
    """One Django 5.2 LTS for Python 3.11, one Django 6.x for 3.12 and later."""
    djangos = sorted(p["version"] for p in lock["package"] if p["name"] == "django")
    assert version_tuple(djangos[0])[:2] == (5, 2), djangos
    assert [version_tuple(v)[0] for v in djangos] == [5, 6], djangos
    (project,) = [p for p in lock["package"] if p.get("source", {}).get("editable") == "."]
    markers = {dep.get("marker") for dep in project["dependencies"] if dep["name"] == "django"}
    assert markers == {"python_full_version < '3.12'", "python_full_version >= '3.12'"}, markers


def test_lock_pins_nothing_below_a_known_fix(lock):
    too_old = []
    for package in lock["package"]:
        version = package["version"]
        series = ".".join(version.split(".")[:2])
        floor = ADVISORY_FLOORS.get((package["name"], series)) or ADVISORY_FLOORS.get(
            (package["name"], None)
        )
        if floor and version_tuple(version) < version_tuple(floor):
            too_old.append(f"{package['name']} {version} < {floor}")
    assert not too_old, too_old
    pinned = {p["name"] for p in lock["package"]}
    assert {"django", "h11", "twisted"} <= pinned, "the floors no longer meet the lock"


def test_declared_django_minimums_exclude_known_advisories(project):
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    declared = {}
    for requirement in dependencies:
        spec, _, marker = requirement.partition(";")
        if spec.startswith("django>="):
            declared[marker.strip()] = spec.removeprefix("django>=").split(",")[0]
    assert declared == DECLARED_DJANGO_FLOORS
