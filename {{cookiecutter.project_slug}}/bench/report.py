"""The results: markdown tables, the targets met or missed, a JSON file and a PNG chart.

Each scenario has its section (a markdown table), its targets and its panel of the chart,
side by side below, in the order the report prints them.
"""

import json
from pathlib import Path

from bench.load import KNEE_P99_MS, knees, unbroken
from bench.stack import DESIGN_NAMES

VERDICTS = {True: "met", False: "**missed**", None: "inconclusive"}


def cell(value, unit: str = "") -> str:
    return (
        "n/a" if value is None else f"{value:g}{unit}" if isinstance(value, float) else str(value)
    )


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(numerator, denominator) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def lost(row: dict) -> str:
    return f"{row['missing_frames']} / {cell(row['unstored'])}"


def connections(row: dict) -> str:
    return f"{row['web_peak']} + {row['worker_peak']}"


def of_design(rows: list[dict], design: str) -> list[dict]:
    return [row for row in rows if row["design"] == design]


# 1. Comparison


def comparison_section(rows: list[dict], results: dict) -> list[str]:
    c = of_design(rows, "c")
    return [
        "### 1. Comparison (same offered load)",
        table(
            [
                "design",
                "sockets",
                "offered msgs/s",
                "delivered frames/s",
                "fan-out p50 ms",
                "fan-out p99 ms",
                "PG conns ASGI (peak)",
                "PG conns worker (peak)",
                "stored",
                "duplicates",
                "lost (frames / unstored)",
                "CPU s (ASGI / worker)",
            ],
            [
                [
                    DESIGN_NAMES[r["design"]],
                    r["sockets"],
                    r["offered_per_s"],
                    r["delivered_per_s"],
                    r["latency_p50_ms"],
                    r["latency_p99_ms"],
                    r["web_peak"],
                    r["worker_peak"],
                    r["stored"],
                    r["duplicate_frames"],
                    lost(r),
                    f"{r['web_cpu_s']:g} / {r['worker_cpu_s']:g}",
                ]
                for r in rows
            ],
        ),
        *(
            f"Design (c): persist lag (send to `message.persisted`) p99 "
            f"{cell(r['persist_lag_p99_ms'])} ms."
            for r in c
        ),
    ]


def comparison_targets(rows: list[dict], results: dict) -> list[tuple]:
    by = {row["design"]: row for row in rows}
    if not {"b", "c", "d"} <= by.keys():
        return []
    c, b, d = (by[k]["latency_p99_ms"] for k in "cbd")
    vs_b, vs_d = ratio(b, c), ratio(c, d)
    lag = by["c"]["persist_lag_p99_ms"]
    return [
        ("(c) fan-out p99 at least 10x lower than (b)", bool(vs_b and vs_b >= 10), f"{vs_b}x"),
        ("(c) fan-out p99 within 1.3x of (d)", bool(vs_d and vs_d <= 1.3), f"{vs_d}x"),
        ("persist lag p99 under 1 s", lag is not None and lag < 1000, f"{cell(lag)} ms"),
    ]


def comparison_panel(ax, rows: list[dict], results: dict) -> None:
    labels = [r["design"] for r in rows]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [r["latency_p50_ms"] or 0 for r in rows], 0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r["latency_p99_ms"] or 0 for r in rows], 0.4, label="p99")
    ax.set_xticks(list(x), labels)
    ax.set_yscale("log")
    ax.set_title("1. Fan-out latency (ms, log) by design")
    ax.legend()


# 2. Scale


def scale_section(rows: list[dict], results: dict) -> list[str]:
    return [
        "### 2. Scale of sockets (this project's design)",
        table(
            [
                "sockets",
                "PG conns ASGI (peak)",
                "PG conns worker (peak)",
                "ASGI RSS MiB",
                "ASGI peak RSS MiB",
                "Redis conns ASGI",
                "offered msgs/s",
                "delivered frames/s",
                "fan-out p50 ms",
                "fan-out p99 ms",
                "lost (frames / unstored)",
            ],
            [
                [
                    r["sockets"],
                    r["web_peak"],
                    r["worker_peak"],
                    r["rss_mb"],
                    r["peak_rss_mb"],
                    r.get("redis_connections"),
                    r["offered_per_s"],
                    r["delivered_per_s"],
                    r["latency_p50_ms"],
                    r["latency_p99_ms"],
                    lost(r),
                ]
                for r in rows
            ],
        ),
    ]


def scale_panel(ax, rows: list[dict], results: dict) -> None:
    sockets = [r["sockets"] for r in rows]
    ax.plot(sockets, [r["rss_mb"] for r in rows], "o-", label="ASGI RSS MiB")
    ax.plot(sockets, [r["web_peak"] for r in rows], "s-", label="PG conns ASGI")
    ax.plot(sockets, [r["worker_peak"] for r in rows], "^-", label="PG conns worker")
    ax.plot(sockets, [r.get("redis_connections", 0) for r in rows], "d-", label="Redis conns ASGI")
    ax.set_xlabel("sockets")
    ax.set_title("2. Scale of sockets")
    ax.legend()


# 3. Persistence


CEILING_SHARE = 0.4  # of PostgreSQL's own rate for the same rows (bench.pgceiling)


def against_ceiling(row: dict) -> float | None:
    """The worker's rate as a share of PostgreSQL's own for the same rows, if measured."""
    limit = row.get("ceiling")
    return round(row["stored_per_s"] / limit["ceiling_per_s"], 4) if limit else None


def persistence_section(rows: list[dict], results: dict) -> list[str]:
    measured = [r for r in rows if r.get("ceiling")]
    return [
        "### 3. Persistence throughput (preloaded queue or a backlog of real traffic, "
        "worker started after)",
        table(
            [
                "worker",
                "messages",
                "tasks",
                "stored msgs/s",
                "PG conns worker (peak)",
                "PostgreSQL's ceiling rows/s",
                "worker / ceiling",
            ],
            [
                [
                    r["worker"],
                    r["messages"],
                    r["tasks"],
                    r["stored_per_s"],
                    r["worker_peak"],
                    r["ceiling"]["ceiling_per_s"] if r.get("ceiling") else None,
                    against_ceiling(r),
                ]
                for r in rows
            ],
        ),
        *(
            [
                "PostgreSQL's ceiling: the same rows into the same table straight from psycopg, "
                "as many connections as the worker's budget, the faster of a multi-row "
                "`INSERT ... ON CONFLICT DO NOTHING` and `COPY`: "
                + "; ".join(
                    f"{r['worker']}: {r['ceiling']['insert_per_s']:g} rows/s by INSERT, "
                    f"{r['ceiling']['copy_per_s']:g} by COPY "
                    f"({r['ceiling']['connections']} connections)"
                    for r in measured
                )
                + "."
            ]
            if measured
            else []
        ),
    ]


def persistence_targets(rows: list[dict], results: dict) -> list[tuple]:
    budget = results["meta"]["budget"]["worker"]
    batched, naive = rows[0], rows[-1]
    speedup = ratio(batched["stored_per_s"], naive["stored_per_s"])
    peak = max(row["worker_peak"] for row in rows)
    return [
        (
            "persistence: at least 20x the one-task-per-message worker",
            speedup is not None and speedup >= 20,
            f"{speedup}x ({batched['stored_per_s']:g} vs {naive['stored_per_s']:g} msgs/s)",
        ),
        (f"persistence within the budget ({budget})", peak <= budget, f"peak {peak}"),
        *(
            (
                f"persistence at least {CEILING_SHARE:.0%} of PostgreSQL's ceiling ({r['worker']})",
                share >= CEILING_SHARE,
                f"{share:.1%} ({r['stored_per_s']:g} vs {r['ceiling']['ceiling_per_s']:g} "
                f"rows/s by {r['ceiling']['ceiling_way']})",
            )
            for r in rows
            if (share := against_ceiling(r)) is not None
        ),
    ]


def persistence_panel(ax, rows: list[dict], results: dict) -> None:
    ax.barh([r["worker"] for r in rows], [r["stored_per_s"] for r in rows])
    ax.set_xlabel("stored msgs/s")
    ax.set_title("3. Persistence throughput")


# 4. Matrix


def matrix_section(rows: list[dict], results: dict) -> list[str]:
    return [
        "### 4. Server and layer matrix (this project's design)",
        table(
            [
                "server",
                "layer",
                "offered msgs/s",
                "delivered frames/s",
                "fan-out p50 ms",
                "fan-out p99 ms",
                "persist lag p99 ms",
                "lost (frames / unstored)",
                "ASGI peak RSS MiB",
            ],
            [
                [
                    r["server"],
                    r["layer"],
                    r["offered_per_s"],
                    r["delivered_per_s"],
                    r["latency_p50_ms"],
                    r["latency_p99_ms"],
                    r["persist_lag_p99_ms"],
                    lost(r),
                    r["peak_rss_mb"],
                ]
                for r in rows
            ],
        ),
    ]


def matrix_panel(ax, rows: list[dict], results: dict) -> None:
    ax.bar([f"{r['server']}\n{r['layer']}" for r in rows], [r["latency_p99_ms"] or 0 for r in rows])
    ax.set_ylabel("fan-out p99 ms")
    ax.set_title("4. Server and layer (this project's design)")


# 5. Knee


def at_knee(rows: list[dict], design: str) -> dict | None:
    """The design's last step that held (the sweep's rows rise in load)."""
    held = [row for row in of_design(rows, design) if row["held"]]
    return held[-1] if held else None


def knee_section(rows: list[dict], results: dict) -> list[str]:
    found, beyond = knees(rows), unbroken(rows)
    return [
        f"### 5. The knee (fan-out p99 under {KNEE_P99_MS} ms, nothing lost)",
        table(
            [
                "design",
                "knee: offered frames/s",
                "each step: offered frames/s: p99 ms",
                "client CPU (cores, peak)",
                "ASGI CPU µs per delivered frame, at the knee",
                "persist lag p99 ms, at the knee",
            ],
            [
                [
                    DESIGN_NAMES[design],
                    f"{'at least ' if design in beyond else ''}{found[design]:g}",
                    " / ".join(
                        f"{r['offered_frames_per_s']:g}: {cell(r['latency_p99_ms'])}"
                        + ("" if r["held"] else f" ({r['missing_frames']} lost)")
                        + (
                            f" (second try; first {cell(r['first_try_p99_ms'])})"
                            if "first_try_p99_ms" in r
                            else ""
                        )
                        for r in of_design(rows, design)
                    ),
                    max(r["client_cpu"] for r in of_design(rows, design)),
                    (at_knee(rows, design) or {}).get("web_cpu_us_per_frame"),
                    (at_knee(rows, design) or {}).get("persist_lag_p99_ms"),
                ]
                for design in found
            ],
        ),
    ]


def knee_targets(rows: list[dict], results: dict) -> list[tuple]:
    found, beyond = knees(rows), unbroken(rows)
    out = []
    for other, least, name in (("b", 2, "at least 2x (b)'s"), ("e", 0.8, "at least 80% of (e)'s")):
        if not {"c", other} <= found.keys():
            continue
        times = ratio(found["c"], found[other])
        met = times is not None and times >= least
        # A design that never broke has its knee past the sweep: some verdicts still hold.
        if (met and other in beyond) or (not met and "c" in beyond):
            met = None
        measured = f"{times}x ({found['c']:g} vs {found[other]:g} frames/s)"
        if met is None:
            measured += "; the sweep ended before a knee"
        out.append((f"(c)'s knee {name}", met, measured))
    return out + fan_out_cost_target(rows) + knee_persist_lag_target(rows)


def fan_out_cost_target(rows: list[dict]) -> list[tuple]:
    """(c)'s and (e)'s ASGI CPU per delivered frame at the same offered load: the highest
    step both held."""
    bare = {row["rate"]: row for row in of_design(rows, "e") if row["held"]}
    both = [(row, bare[row["rate"]]) for row in of_design(rows, "c") if row["rate"] in bare]
    both = [(c, e) for c, e in both if c["held"]]
    if not both:
        return []
    c, e = both[-1]
    times = ratio(c.get("web_cpu_us_per_frame"), e.get("web_cpu_us_per_frame"))
    return [
        (
            "(c) ASGI CPU per delivered frame within 1.25x of (e)'s, same offered load",
            None if times is None else times <= 1.25,
            f"{times}x ({cell(c.get('web_cpu_us_per_frame'))} vs "
            f"{cell(e.get('web_cpu_us_per_frame'))} µs at {c['offered_frames_per_s']:g} "
            "offered frames/s)",
        )
    ]


def knee_persist_lag_target(rows: list[dict]) -> list[tuple]:
    """Every message of (c)'s knee step persisted, with a persist lag p99 under 1 s."""
    row = at_knee(rows, "c")
    if row is None or row.get("persist_lag_p99_ms") is None:
        return []
    lag, every = row["persist_lag_p99_ms"], row["persisted"] >= row["sent"]
    return [
        (
            "persist lag p99 under 1 s at (c)'s knee",
            every and lag < 1000,
            f"{cell(lag)} ms at {row['offered_frames_per_s']:g} offered frames/s; "
            f"{row['persisted']} of {row['sent']} persisted",
        )
    ]


def knee_panel(ax, rows: list[dict], results: dict) -> None:
    for design in dict.fromkeys(r["design"] for r in rows):
        steps = of_design(rows, design)
        ax.plot(
            [r["offered_frames_per_s"] for r in steps],
            [r["latency_p99_ms"] or 0 for r in steps],
            "o-",
            label=f"({design})",
        )
    ax.axhline(KNEE_P99_MS, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("offered frames/s")
    ax.set_ylabel("fan-out p99 ms (log)")
    ax.set_yscale("log")
    ax.set_title("5. The knee: p99 against offered load")
    ax.legend(fontsize="small", loc="lower right", ncol=2)


# 6. The article's table: the comparison's rows, these rows with more sockets, the knees


def table_section(rows: list[dict], results: dict) -> list[str]:
    runs = [r for r in results.get("comparison", []) if r["design"] in {x["design"] for x in rows}]
    runs += rows
    counts = sorted({r["sockets"] for r in runs})
    by = {(r["design"], r["sockets"]): r for r in runs}
    found = knees(results.get("knee", []))
    fixed = next((r for r in runs if r["sockets"] == counts[0]), runs[0])
    return [
        "### 6. The comparison table, measured",
        table(
            [
                "approach",
                *(f"peak PG conns at {n} sockets (ASGI + worker)" for n in counts),
                "knee: offered frames/s",
                f"fan-out p99 ms at {fixed['offered_per_s']:g} msgs/s, {counts[0]} sockets",
                "frames lost",
            ],
            [
                [
                    DESIGN_NAMES[design],
                    *(connections(by[design, n]) if (design, n) in by else "n/a" for n in counts),
                    cell(found.get(design)),
                    cell(by[design, counts[0]]["latency_p99_ms"])
                    if (design, counts[0]) in by
                    else "n/a",
                    sum(by[design, n]["missing_frames"] for n in counts if (design, n) in by),
                ]
                for design in dict.fromkeys(r["design"] for r in rows)
            ],
        ),
    ]


def table_targets(rows: list[dict], results: dict) -> list[tuple]:
    budget = results["meta"]["budget"]["worker"]
    c = of_design(rows, "c")
    if not c:
        return []
    web, worker = max(r["web_peak"] for r in c), max(r["worker_peak"] for r in c)
    return [
        (
            f"table: (c) holds 0 in the ASGI process, the worker within {budget}",
            web == 0 and worker <= budget,
            f"peaks {web} and {worker}",
        )
    ]


def table_panel(ax, rows: list[dict], results: dict) -> None:
    designs = list(dict.fromkeys(r["design"] for r in rows))
    runs = [r for r in results.get("comparison", []) if r["design"] in designs] + rows
    counts = sorted({r["sockets"] for r in runs})
    by = {(r["design"], r["sockets"]): r for r in runs}
    width = 0.8 / len(counts)
    for i, n in enumerate(counts):
        ax.bar(
            [x + i * width for x in range(len(designs))],
            [
                by[d, n]["web_peak"] + by[d, n]["worker_peak"] if (d, n) in by else 0
                for d in designs
            ],
            width,
            label=f"{n} sockets",
        )
    ax.set_xticks([x + width * (len(counts) - 1) / 2 for x in range(len(designs))], designs)
    ax.set_ylabel("peak PostgreSQL connections (ASGI + worker)")
    ax.set_title("6. The comparison table: connections by design")
    ax.legend()


# 7. The connection wall


def wall_section(rows: list[dict], results: dict) -> list[str]:
    first = rows[0]
    return [
        f"### 7. The connection wall (PostgreSQL max_connections = {first['max_connections']}, "
        f"ASGI_THREADS = {first['threads']}, {first['sockets']} sockets at once, one message "
        "each)",
        table(
            [
                "design",
                "server processes",
                "peak PG conns (ASGI + worker)",
                '"too many clients" refusals',
                "handshakes failed",
                "messages not stored",
                "frames missing",
                "error frames",
            ],
            [
                [
                    DESIGN_NAMES[r["design"]],
                    r["processes"],
                    connections(r),
                    r["refusals"],
                    r["handshakes_failed"],
                    f"{cell(r['unstored'])} of {r['sent']}",
                    r["missing_frames"],
                    ", ".join(f"{code}: {n}" for code, n in r["errors"].items()) or "none",
                ]
                for r in rows
            ],
        ),
    ]


def wall_targets(rows: list[dict], results: dict) -> list[tuple]:
    budget = results["meta"]["budget"]["worker"]
    c = of_design(rows, "c")
    if not c:
        return []
    web, worker = max(r["web_peak"] for r in c), max(r["worker_peak"] for r in c)
    failed = sum(r["unstored"] + r["handshakes_failed"] + r["missing_frames"] for r in c)
    counts = ", ".join(str(r["processes"]) for r in c)
    return [
        (
            f"wall: (c) holds 0 in the ASGI processes, the worker within {budget}, nothing "
            f"lost, at K = {counts}",
            web == 0 and worker <= budget and failed == 0,
            f"peaks {web} and {worker}, {failed} lost",
        )
    ]


def wall_panel(ax, rows: list[dict], results: dict) -> None:
    for design in dict.fromkeys(r["design"] for r in rows):
        runs = of_design(rows, design)
        refused = sum(r["refusals"] for r in runs)
        unstored = sum(r["unstored"] or 0 for r in runs)
        ax.plot(
            [r["processes"] for r in runs],
            [r["web_peak"] + r["worker_peak"] for r in runs],
            "o-",
            label=f"({design}): {refused} refused, {unstored} messages lost",
        )
    limit = rows[0]["max_connections"]
    ax.axhline(limit, color="red", linestyle="--", label="max_connections")
    ax.set_ylim(0, limit * 1.7)  # room above the wall for the legend
    ax.set_xticks(sorted({r["processes"] for r in rows}))
    ax.set_xlabel("server processes (K)")
    ax.set_ylabel("peak PostgreSQL connections")
    ax.set_title("7. The connection wall")
    ax.legend(fontsize="x-small", loc="upper center", ncol=2)


# 8. Past one process


def with_single(rows: list[dict], results: dict) -> list[dict]:
    """The comparison's run of (c), on one process and one Redis, then these."""
    return of_design(results.get("comparison", []), "c") + rows


def cluster_section(rows: list[dict], results: dict) -> list[str]:
    return [
        "### 8. Past one process (this project's design)",
        table(
            [
                "server processes",
                "channel-layer shards",
                "sockets",
                "offered msgs/s",
                "delivered frames/s",
                "fan-out p50 ms",
                "fan-out p99 ms",
                "frames missing / twice / unstored",
                "peak PG conns (ASGI + worker)",
            ],
            [
                [
                    r.get("processes", 1),
                    r.get("shards", 1),
                    r["sockets"],
                    r["offered_per_s"],
                    r["delivered_per_s"],
                    r["latency_p50_ms"],
                    r["latency_p99_ms"],
                    f"{r['missing_frames']} / {r['duplicate_frames']} / {cell(r['unstored'])}",
                    connections(r),
                ]
                for r in with_single(rows, results)
            ],
        ),
    ]


def cluster_targets(rows: list[dict], results: dict) -> list[tuple]:
    return [
        (
            f"{r['processes']} processes, {r['shards']} shards: every member gets every "
            "message, all stored, 0 connections in the ASGI processes",
            r["missing_frames"] == r["duplicate_frames"] == r["unstored"] == r["web_peak"] == 0,
            f"{r['missing_frames']} frames missing, {r['duplicate_frames']} twice, "
            f"{r['unstored']} unstored, peak {r['web_peak']}",
        )
        for r in rows
    ]


def cluster_panel(ax, rows: list[dict], results: dict) -> None:
    runs = with_single(rows, results)
    labels = [f"{r.get('processes', 1)} process(es)\n{r.get('shards', 1)} shard(s)" for r in runs]
    ax.bar(labels, [r["latency_p99_ms"] or 0 for r in runs])
    ax.set_ylabel("fan-out p99 ms")
    ax.set_title("8. Past one process (this project's design)")


# 9. Sockets

# Issue 20's targets for the project's process (c) beside the bare consumer (e).
SOCKET_MEMORY_RATIO = 1.15
SOCKET_MEMORY_KIB = 45
SOCKET_IDLE_CPU_RATIO = 1.25
SOCKET_DELIVERY_RATIO = 1.25


def top_level(rows: list[dict], design: str) -> dict | None:
    """The design's row at the most sockets asked for."""
    return max(of_design(rows, design), key=lambda row: row["asked"], default=None)


def sockets_section(rows: list[dict], results: dict) -> list[str]:
    sizes = results["meta"]["sizes"]
    ping = sizes.get("crowd_ping") or 20
    return [
        "### 9. Idle sockets on one process (this project vs the bare consumer (e))",
        f"The server from the Procfile's web line (keepalive ping every {ping} s), the "
        f"idle CPU over {sizes.get('crowd_idle', 0):g} s; clients in "
        "a second process offering permessage-deflate as browsers do, 20 sockets per room. "
        "Each level once one message sent into every room has reached every socket; "
        "memory is the resident memory above the idle process, per socket.",
        table(
            [
                "design",
                "sockets (failed)",
                "handshakes s",
                "heard the message (of)",
                "to every socket s",
                "ASGI RSS MiB (idle)",
                "KiB per socket",
                "Redis clients ASGI (peak / budget)",
                "PG conns ASGI (peak)",
                "idle CPU % of a core",
            ],
            [
                [
                    DESIGN_NAMES[r["design"]],
                    f"{r['sockets']} ({r['failed']})",
                    r["handshake_s"],
                    f"{r['delivered']} ({r['expected']})",
                    r["delivery_s"],
                    f"{cell(r['rss_mb'])} ({cell(r['idle_rss_mb'])})",
                    r["kib_per_socket"],
                    f"{r['redis_clients_peak']} / {r['redis_budget']}",
                    r["web_peak"],
                    r["idle_cpu_pct"],
                ]
                for r in rows
            ],
        ),
    ]


def sockets_targets(rows: list[dict], results: dict) -> list[tuple]:
    c, e = top_level(rows, "c"), top_level(rows, "e")
    if c is None or e is None:
        return []
    n = c["asked"]
    memory = ratio(c["kib_per_socket"], e["kib_per_socket"])
    cpu = ratio(c["idle_cpu_pct"], e["idle_cpu_pct"])
    delivery = ratio(c["delivery_s"], e["delivery_s"])
    heard = c["delivered"] == c["expected"] == n
    ours = of_design(rows, "c")
    redis = [f"{r['redis_clients_peak']} at {r['sockets']}" for r in ours]
    pg = max(r["web_peak"] for r in ours)
    return [
        (f"(c) {n} sockets: 0 PostgreSQL connections", pg == 0, f"peak {pg}"),
        (
            f"(c) every one of {n} handshakes succeeds",
            c["sockets"] == n and not c["failed"],
            f"{c['sockets']} opened, {c['failed']} failed ((e): {e['sockets']}, {e['failed']})",
        ),
        (
            f"(c) memory per socket within {SOCKET_MEMORY_RATIO}x of (e)",
            memory is not None and memory <= SOCKET_MEMORY_RATIO,
            f"{memory}x ({c['kib_per_socket']:g} vs {e['kib_per_socket']:g} KiB)",
        ),
        (
            f"(c) at most {SOCKET_MEMORY_KIB} KiB per socket, shipped defaults",
            c["kib_per_socket"] <= SOCKET_MEMORY_KIB,
            f"{c['kib_per_socket']:g} KiB",
        ),
        (
            f"(c) idle CPU within {SOCKET_IDLE_CPU_RATIO}x of (e)",
            cpu is not None and cpu <= SOCKET_IDLE_CPU_RATIO,
            f"{cpu}x ({cell(c['idle_cpu_pct'])}% vs {cell(e['idle_cpu_pct'])}% of a core)",
        ),
        (
            f"(c) a message to every room reaches all {n} sockets within "
            f"{SOCKET_DELIVERY_RATIO}x of (e)'s time",
            heard and delivery is not None and delivery <= SOCKET_DELIVERY_RATIO,
            f"{delivery}x ({c['delivery_s']:g} vs {e['delivery_s']:g} s; "
            f"{c['delivered']} of {c['expected']} heard it)",
        ),
        (
            "(c) Redis clients within the process's pools, whatever the sockets",
            all(r["redis_clients_peak"] <= r["redis_budget"] for r in ours),
            f"{', '.join(redis)} (budget {c['redis_budget']})",
        ),
    ]


def sockets_panel(ax, rows: list[dict], results: dict) -> None:
    for design, marker in (("c", "o-"), ("e", "s--")):
        mine = sorted(of_design(rows, design), key=lambda row: row["sockets"])
        ax.plot(
            [r["sockets"] for r in mine],
            [r["kib_per_socket"] for r in mine],
            marker,
            label=f"({design}) KiB per socket",
        )
    ax.axhline(SOCKET_MEMORY_KIB, color="grey", linestyle=":", label="target")
    ax.set_xscale("log")
    ax.set_xlabel("idle sockets on one process")
    ax.set_title("9. Memory per idle socket")
    ax.legend()


def none(rows: list[dict], results: dict) -> list:
    return []


# scenario: (section, targets, chart panel), in the report's order
SCENARIOS = {
    "comparison": (comparison_section, comparison_targets, comparison_panel),
    "scale": (scale_section, none, scale_panel),
    "persistence": (persistence_section, persistence_targets, persistence_panel),
    "matrix": (matrix_section, none, matrix_panel),
    "knee": (knee_section, knee_targets, knee_panel),
    "table": (table_section, table_targets, table_panel),
    "wall": (wall_section, wall_targets, wall_panel),
    "cluster": (cluster_section, cluster_targets, cluster_panel),
    "sockets": (sockets_section, sockets_targets, sockets_panel),
}


def connection_targets(results: dict) -> list[tuple]:
    """Zero in the ASGI process and the worker within budget, over every load on (c)."""
    budget = results["meta"]["budget"]["worker"]
    loads = of_design(results.get("comparison", []), "c")
    loads += of_design(results.get("comparison", []), "d")
    loads += results.get("scale", []) + results.get("matrix", [])
    if not loads:
        return []
    web = max(row["web_peak"] for row in loads)
    worker = max(row["worker_peak"] for row in loads)
    return [
        ("ASGI process: 0 PostgreSQL connections", web == 0, f"peak {web}"),
        (f"worker side within its budget ({budget})", worker <= budget, f"peak {worker}"),
    ]


def targets(results: dict) -> list[tuple[str, bool | None, str]]:
    """(target, met?, measured) for each target of the benchmark that this run measured;
    met is None when the run cannot tell."""
    out = connection_targets(results)
    for name, (_, check, _) in SCENARIOS.items():
        if results.get(name):
            out += check(results[name], results)
    return out


def markdown(results: dict) -> str:
    meta = results["meta"]
    parts = [
        f"Run: `{meta['command']}` ({meta['mode']}), {meta['date']}, {meta['machine']}. "
        f"Server: {meta['server']}, layer: {meta['layer']}, "
        f"worker budget: {meta['budget']['worker']} connections. "
        f"Load average (1, 5, 15 min) at start {meta['load_average_at_start']}, "
        f"at end {meta['load_average_at_end']}; took {meta['seconds']:g} s.",
        *(f"Skipped {what}: {why}." for what, why in meta.get("skipped", {}).items()),
    ]
    for name, (section, _, _) in SCENARIOS.items():
        if results.get(name):
            parts += section(results[name], results)
    checks = targets(results)
    if checks:
        rows = [[name, VERDICTS[met], measured] for name, met, measured in checks]
        parts += ["### Targets", table(["target", "result", "measured"], rows)]
    return "\n\n".join(parts) + "\n"


def chart(results: dict, path: Path) -> bool:
    """A PNG with one panel per scenario run; False if matplotlib (the bench extra) is
    missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ran = [name for name in SCENARIOS if results.get(name)]
    if not ran:
        return False
    rows = -(-len(ran) // 2)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, ran, strict=False):
        SCENARIOS[name][2](ax, results[name], results)
    for ax in list(axes.flat)[len(ran) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write(results: dict, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (folder / "results.md").write_text(text)
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, folder / "results.png")
    return text
