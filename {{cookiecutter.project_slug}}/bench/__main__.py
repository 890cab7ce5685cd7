"""``python -m bench [--quick] [--only comparison,scale,persistence,matrix,knee,table,...]``.

Runs against the PostgreSQL and Redis of the project's settings (``DATABASE_URL``,
``REDIS_URL``), in a database of its own. Stop ``make run`` first: its worker would take
the benchmark's batches.
"""

import argparse
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

SCENARIOS = (
    "comparison",
    "scale",
    "persistence",
    "matrix",
    "knee",
    "table",
    "wall",
    "cluster",
    "sockets",
)
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, about 3 minutes")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated, from {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["PROCESS_ROLE"] = "manage"
    import django

    django.setup()

    from django.conf import settings

    from bench import report, scenarios, stack, wall

    began = time.monotonic()

    def progress(text: str, head: bool = False):
        stamp = f"[{time.monotonic() - began:6.1f}s]"
        print(f"\n{stamp} == {text}" if head else f"{stamp}    {text}", flush=True)

    sizes = scenarios.QUICK if args.quick else scenarios.FULL
    sizes, chosen, skipped = scenarios.available(sizes, chosen)
    for what, why in skipped.items():
        progress(f"skipping {what}: {why}")
    stack.use_bench_database()
    stack.empty_queue()
    most = max(sizes.sockets, *sizes.scale, sizes.table_sockets, sizes.wall_sockets)
    # The sockets scenario's crowd: 10 sockets per user, within CHAT_MAX_SOCKETS_PER_USER.
    users = max(20, most // 5, max(sizes.crowd) // 10)
    progress(f"logging in {users} users", head=True)
    cookies = stack.log_in_users(users)
    bench_stage = stack.Stage(args.out / "logs")
    results = {
        "meta": {
            "command": "make bench" + (" ARGS=--quick" if args.quick else ""),
            "mode": "quick" if args.quick else "full",
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}",
            "server": stack.default_server(),
            "layer": settings.CHANNEL_LAYER,
            "budget": scenarios.budget(),
            # Other work on the machine shows up in every figure: say how busy it was.
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "sizes": asdict(sizes),
            "skipped": skipped,
        }
    }
    for name in chosen:
        progress(f"scenario: {name}", head=True)
        if name == "wall":
            results[name] = wall.wall(bench_stage, sizes, cookies, progress)
        else:
            results[name] = getattr(scenarios, name)(bench_stage, sizes, cookies, progress)
    stack.empty_queue()
    results["meta"]["seconds"] = round(time.monotonic() - began, 1)
    results["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = report.write(results, args.out)
    print("\n" + text)
    print(f"Written to {args.out}/results.md, results.json and results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
