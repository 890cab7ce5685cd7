"""The tooling's requirements.txt keeps up with the generated project's dependencies.

`manage.py check` and `lint-imports` run every bake with the tooling's interpreter, so it
needs the union of the project's runtime dependencies over every option.
"""

import re
import tomllib

from bakery import OPTIONS, TEMPLATE, bake


def name_of(requirement: str) -> str:
    """The normalised distribution name of a requirement line ("celery[redis]>=5" -> celery)."""
    return re.split(r"[\[<>=!~;\s]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_requirements_cover_every_bake(tmp_path):
    lines = (TEMPLATE / "requirements.txt").read_text().splitlines()
    have = {name_of(line) for line in lines if line.strip() and not line.startswith("#")}
    needed = set()
    for server in OPTIONS["asgi_server"]:
        project = bake(tmp_path / server, asgi_server=server)
        metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        needed |= {name_of(r) for r in metadata["dependencies"]}
    assert {"daphne", "uvicorn"} <= needed, "the ASGI server choice no longer shows in deps"
    missing = needed - have
    assert not missing, f"add to requirements.txt: {sorted(missing)}"
