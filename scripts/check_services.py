#!/usr/bin/env python3
"""Tell whether PostgreSQL and Redis answer, and how to start the one that does not.

Usage: check_services.py [--wait SECONDS] [--quiet] [postgres] [redis]

Addresses come from DATABASE_URL and REDIS_URL when set, else the template's defaults
(127.0.0.1:5432 and 127.0.0.1:6379). Each service must answer in its own protocol, not just
accept a TCP connection. Standard library only, so it runs before any virtualenv exists.
Exit status 0 when every named service answered, 1 otherwise.
"""

import argparse
import os
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

START_HINTS = {
    "postgres": (
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        "   (or: sudo systemctl start postgresql)"
    ),
    "redis": "redis-server --daemonize yes   (or: sudo systemctl start redis-server)",
}
NAMES = {"postgres": "PostgreSQL", "redis": "Redis"}


def address(service: str) -> tuple[str, int]:
    if service == "postgres":
        url, default_port = os.environ.get("DATABASE_URL", ""), 5432
    else:
        url, default_port = os.environ.get("REDIS_URL", ""), 6379
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def answers(service: str, host: str, port: int) -> str | None:
    """None when the service answered, else why not."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            if service == "postgres":
                # SSLRequest: every PostgreSQL server replies with one byte, S or N.
                sock.sendall(struct.pack("!ii", 8, 80877103))
                reply = sock.recv(1)
                ok = reply in (b"S", b"N")
            else:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                ok = reply.startswith((b"+PONG", b"-NOAUTH"))
            return None if ok else f"something else answered: {reply!r}"
    except OSError as exc:
        return exc.strerror or str(exc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="{postgres,redis}")
    parser.add_argument("--wait", type=float, default=0, help="keep trying this many seconds")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args()
    services = args.services or list(NAMES)
    unknown = set(services) - set(NAMES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")

    deadline = time.monotonic() + args.wait
    while True:
        failures = {}
        for service in services:
            host, port = address(service)
            why = answers(service, host, port)
            if why:
                failures[service] = (host, port, why)
        if not failures or time.monotonic() >= deadline:
            break
        time.sleep(0.5)  # poll again until the deadline

    if not args.quiet:
        for service in services:
            host, port = address(service)
            if service in failures:
                why = failures[service][2]
                print(
                    f"{NAMES[service]} is not reachable at {host}:{port} ({why}).\n"
                    f"  Start it with: {START_HINTS[service]}",
                    file=sys.stderr,
                )
            else:
                print(f"{NAMES[service]} is up at {host}:{port}.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
