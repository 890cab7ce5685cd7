"""Refuse answers that would produce a broken project, before any file is written.

Cookiecutter renders this file with the answers, then runs it; exiting 1 makes it stop and
delete the half-made project directory. Choice options are validated by cookiecutter itself.
problems(answers) is a plain function (the template's tests import it); the answers are
rendered only in the __main__ block, as JSON inside raw strings so that any text, quotes and
backslashes included, arrives intact (and this file stays valid Python before rendering).
"""

import json
import keyword
import re
import sys

# Top-level names the generated project imports, or ships itself: a project directory or
# distribution of the same name would shadow them on sys.path. The standard library's own
# module names are added below.
RESERVED = {
    "amqp",
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

# A distribution name too (PEP 508): it may not end with an underscore.
SLUG_PATTERN = re.compile(r"[a-z]([a-z0-9_]*[a-z0-9])?")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+")


FREE_TEXT = ("project_name", "author_name", "description")


def problems(answers: dict[str, str]) -> list[str]:
    """Every reason the answers cannot be used, each as one sentence or two."""
    found = []
    if not answers["project_name"].strip():
        found.append("project_name is empty: give the project a human-readable name.")
    for option in FREE_TEXT:
        text = answers[option]
        if any(char in text for char in '"\\\n'):
            found.append(
                f"{option} {text!r} contains a double quote, backslash or line break, which "
                "would break the generated Python and TOML files: leave them out."
            )
    found.extend(slug_problems(answers["project_slug"]))
    email = answers["email"]
    if not EMAIL_PATTERN.fullmatch(email):
        found.append(f"email {email!r} is not an e-mail address (expected name@domain).")
    return found


def slug_problems(slug: str) -> list[str]:
    found = []
    if not slug.isidentifier() or not SLUG_PATTERN.fullmatch(slug):
        found.append(
            f"project_slug {slug!r} is not a valid Python identifier of lowercase letters, "
            "digits and underscores, starting with a letter and not ending with an underscore "
            "(for example 'my_chat')."
        )
    elif keyword.iskeyword(slug):
        found.append(f"project_slug {slug!r} is a Python keyword: choose another name.")
    elif slug in RESERVED:
        found.append(
            f"project_slug {slug!r} is a reserved name: it would shadow the {slug!r} module "
            "that the project or Python imports. Choose another name, for example "
            f"'my_{slug}'."
        )
    return found


def main(answers: dict[str, str]) -> int:
    found = problems(answers)
    if found:
        print(
            "ERROR: cannot generate the project: " + " ".join(found) + " Nothing was generated.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    # Jinja's tojson escapes ' as \u0027, so the raw single-quoted strings cannot be cut short.
    # fmt: off
    ANSWERS = {
        "project_name": json.loads(r'{{ cookiecutter.project_name | tojson }}'),
        "project_slug": json.loads(r'{{ cookiecutter.project_slug | tojson }}'),
        "email": json.loads(r'{{ cookiecutter.email | tojson }}'),
        "author_name": json.loads(r'{{ cookiecutter.author_name | tojson }}'),
        "description": json.loads(r'{{ cookiecutter.description | tojson }}'),
    }
    # fmt: on
    sys.exit(main(ANSWERS))
