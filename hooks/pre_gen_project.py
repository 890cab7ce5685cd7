"""Refuse answers that would produce a broken project, before any file is written.

Cookiecutter renders this file with the answers, then runs it; exiting 1 makes it stop and
delete the half-made project directory. Choice options are validated by cookiecutter itself.
The answers are rendered as JSON inside raw strings so that any text, quotes and backslashes
included, arrives intact (and this file stays valid Python before rendering, for ruff).
"""

import json
import keyword
import re
import sys

# Jinja's tojson escapes ' as \u0027, so the raw single-quoted strings cannot be cut short.
# fmt: off
PROJECT_NAME = json.loads(r'{{ cookiecutter.project_name | tojson }}')
PROJECT_SLUG = json.loads(r'{{ cookiecutter.project_slug | tojson }}')
EMAIL = json.loads(r'{{ cookiecutter.email | tojson }}')
FREE_TEXT = {
    "project_name": PROJECT_NAME,
    "author_name": json.loads(r'{{ cookiecutter.author_name | tojson }}'),
    "description": json.loads(r'{{ cookiecutter.description | tojson }}'),
}
# fmt: on

# Top-level names the generated project imports, or ships itself: a project directory or
# distribution of the same name would shadow them on sys.path. The standard library's own
# module names are added below.
RESERVED = {
    "asgiref",
    "autobahn",
    "billiard",
    "celery",
    "channels",
    "channels_redis",
    "chat",
    "config",
    "daphne",
    "django",
    "environ",
    "honcho",
    "importlinter",
    "kombu",
    "ops",
    "psycopg",
    "psycopg_pool",
    "pytest",
    "pytest_django",
    "redis",
    "site",
    "test",
    "tests",
    "twisted",
    "uvicorn",
    "vine",
    "websockets",
}
RESERVED |= set(sys.stdlib_module_names)

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+")


def problems() -> list[str]:
    """Every reason the answers cannot be used, each as one sentence or two."""
    found = []
    if not PROJECT_NAME.strip():
        found.append("project_name is empty: give the project a human-readable name.")
    for option, text in FREE_TEXT.items():
        if any(char in text for char in '"\\\n'):
            found.append(
                f"{option} {text!r} contains a double quote, backslash or line break, which "
                "would break the generated Python and TOML files: leave them out."
            )
    slug = PROJECT_SLUG
    if not slug.isidentifier() or not SLUG_PATTERN.fullmatch(slug):
        found.append(
            f"project_slug {slug!r} is not a valid Python identifier of lowercase letters, "
            "digits and underscores starting with a letter (for example 'my_chat')."
        )
    elif keyword.iskeyword(slug):
        found.append(f"project_slug {slug!r} is a Python keyword: choose another name.")
    elif slug in RESERVED:
        found.append(
            f"project_slug {slug!r} is a reserved name: it would shadow the {slug!r} module "
            "that the project or Python imports. Choose another name, for example "
            f"'my_{slug}'."
        )
    if not EMAIL_PATTERN.fullmatch(EMAIL):
        found.append(f"email {EMAIL!r} is not an e-mail address (expected name@domain).")
    return found


def main() -> int:
    found = problems()
    if found:
        print(
            "ERROR: cannot generate the project: " + " ".join(found) + " Nothing was generated.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
