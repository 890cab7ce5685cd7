"""The README's two commands set up a fresh machine themselves, and CI runs nothing more.

make test and make demo run scripts/setup.py first: it installs the Debian packages they use
when it may (root, or sudo without a password) and otherwise stops with the command to run.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import pytest
from bakery import TEMPLATE, explain, project_env, run

SETUP = TEMPLATE / "scripts" / "setup.py"


def test_a_ready_machine_needs_nothing():
    """This machine has everything (CI's make test has just run this very script)."""
    result = run([sys.executable, str(SETUP), "test"], cwd=TEMPLATE)
    assert result.returncode == 0, explain(result)
    assert "Missing" not in result.stderr and "apt-get" not in result.stdout


# A package that is really absent: removing a real one from this shared machine to watch the
# script put it back is not an option, so the test adds a need that nothing here satisfies.
WITHOUT_RIGHTS = """
import setup
from functools import partial
absent = setup.Need("tooling-absent-package", "a test's need",
                    partial(setup.on_path, "tooling-absent-command"))
raise SystemExit(setup.ensure_packages([absent], setup.rights()))
"""


def as_unprivileged_user(code: str) -> subprocess.CompletedProcess:
    """Run Python code with scripts/ importable, as `nobody` when this runs as root."""
    scripts = tempfile.mkdtemp(prefix="setup-")
    try:
        os.chmod(scripts, 0o755)
        for name in ("setup.py", "check_services.py"):
            shutil.copy(TEMPLATE / "scripts" / name, scripts)
        command = ["/usr/bin/env", f"PYTHONPATH={scripts}", sys.executable]
        if os.geteuid() == 0:
            # nobody cannot run an interpreter under /root (pyenv's): the system's python3.
            system_python = shutil.which("python3", path="/usr/bin:/bin")
            if not (shutil.which("setpriv") and system_python):
                pytest.skip("needs setpriv (util-linux) and /usr/bin/python3 to drop root's rights")
            command = [
                "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                "/usr/bin/env", f"PYTHONPATH={scripts}", system_python,
            ]  # fmt: skip
        return subprocess.run(
            [*command, "-c", code],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            env=project_env(),
        )
    finally:
        shutil.rmtree(scripts)


def test_without_rights_it_stops_with_the_command_to_run():
    result = as_unprivileged_user(WITHOUT_RIGHTS)
    assert result.returncode == 1, explain(result)
    assert "Missing tooling-absent-package: a test's need." in result.stderr
    assert "sudo apt-get install -y tooling-absent-package" in result.stderr
    assert "+ " not in result.stdout, "it tried to install without the rights to"


def test_an_unprivileged_user_has_no_rights():
    result = as_unprivileged_user("import setup; print(setup.rights())")
    assert result.stdout.strip() == "None", explain(result)


def test_the_readme_commands_run_the_setup_first():
    for target in ("test", "demo"):
        result = run(["make", "--dry-run", "--always-make", target], cwd=TEMPLATE)
        assert result.returncode == 0, explain(result)
        lines = result.stdout.splitlines()
        assert f"scripts/setup.py {target}" in lines[0], lines[:3]
    test_lines = run(["make", "--dry-run", "--always-make", "test"], cwd=TEMPLATE).stdout
    assert "npm ci" in test_lines and "pytest" in test_lines.splitlines()[-1]


# The only statements .ci/run may contain besides `make test`: shell options, going to the
# repository, environment variables, and closing stdin.
ENVIRONMENT_ONLY = [
    r"set -[euxo]+ pipefail",
    r'cd "\$\(dirname "\$0"\)/\.\."',
    r"export( [A-Z_]+=\S+)+",
    r"exec </dev/null",
]


def test_ci_adds_nothing_to_the_readme_commands():
    lines = [
        line.strip()
        for line in (TEMPLATE / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[-1] in ("make test", "exec make test"), lines[-1]
    extra = [
        line
        for line in lines[:-1]
        if not any(re.fullmatch(pattern, line) for pattern in ENVIRONMENT_ONLY)
    ]
    assert not extra, f".ci/run does more than make test: {extra}"
    exported = [word for line in lines if line.startswith("export") for word in line.split()[1:]]
    assert all("PATH" not in shlex.split(word)[0] for word in exported), exported
    # ...and the README gives that command.
    assert "`make test`" in (TEMPLATE / "README.md").read_text()
