"""The results: markdown tables, the targets met or missed, a JSON file and a PNG chart."""

import json
from pathlib import Path

from bench.stack import DESIGN_NAMES


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


def targets(results: dict) -> list[tuple[str, bool | None, str]]:
    """(target, met?, measured) for each target of the benchmark that this run measured."""
    out = []
    budget = results["meta"]["budget"]["worker"]
    comparison = {row["design"]: row for row in results.get("comparison", [])}
    loads = [comparison.get("c"), comparison.get("d"), *results.get("scale", [])]
    loads += results.get("matrix", [])
    loads = [row for row in loads if row]
    if loads:
        web = max(row["web_peak"] for row in loads)
        worker = max(row["worker_peak"] for row in loads)
        out.append(("ASGI process: 0 PostgreSQL connections", web == 0, f"peak {web}"))
        out.append(
            (f"worker side within its budget ({budget})", worker <= budget, f"peak {worker}")
        )
    if {"b", "c", "d"} <= comparison.keys():
        c, b, d = (comparison[k]["latency_p99_ms"] for k in "cbd")
        vs_b, vs_d = ratio(b, c), ratio(c, d)
        out.append(("(c) fan-out p99 at least 10x lower than (b)", vs_b and vs_b >= 10, f"{vs_b}x"))
        out.append(("(c) fan-out p99 within 1.3x of (d)", vs_d and vs_d <= 1.3, f"{vs_d}x"))
        lag = comparison["c"]["persist_lag_p99_ms"]
        out.append(("persist lag p99 under 1 s", lag is not None and lag < 1000, f"{cell(lag)} ms"))
    persistence = results.get("persistence", [])
    if persistence:
        batched, naive = persistence[0], persistence[-1]
        speedup = ratio(batched["stored_per_s"], naive["stored_per_s"])
        out.append(
            (
                "persistence: at least 20x the one-task-per-message worker",
                speedup is not None and speedup >= 20,
                f"{speedup}x ({batched['stored_per_s']:g} vs {naive['stored_per_s']:g} msgs/s)",
            )
        )
        peak = max(row["worker_peak"] for row in persistence)
        out.append((f"persistence within the budget ({budget})", peak <= budget, f"peak {peak}"))
    return out


def markdown(results: dict) -> str:
    meta = results["meta"]
    parts = [
        f"Run: `{meta['command']}` ({meta['mode']}), {meta['date']}, {meta['machine']}. "
        f"Server: {meta['server']}, layer: {meta['layer']}, "
        f"worker budget: {meta['budget']['worker']} connections. "
        f"Load average (1, 5, 15 min) at start {meta['load_average_at_start']}, "
        f"at end {meta['load_average_at_end']}; took {meta['seconds']:g} s.",
    ]
    if results.get("comparison"):
        rows = [
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
                f"{r['missing_frames']} / {cell(r['unstored'])}",
                f"{r['web_cpu_s']:g} / {r['worker_cpu_s']:g}",
            ]
            for r in results["comparison"]
        ]
        parts += [
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
                rows,
            ),
        ]
        c = next(r for r in results["comparison"] if r["design"] == "c")
        parts.append(
            f"Design (c): persist lag (send to `message.persisted`) p99 "
            f"{cell(c['persist_lag_p99_ms'])} ms."
        )
    if results.get("scale"):
        rows = [
            [
                r["sockets"],
                r["web_peak"],
                r["worker_peak"],
                r["rss_mb"],
                r["peak_rss_mb"],
                r["offered_per_s"],
                r["delivered_per_s"],
                r["latency_p50_ms"],
                r["latency_p99_ms"],
                f"{r['missing_frames']} / {r['unstored']}",
            ]
            for r in results["scale"]
        ]
        parts += [
            "### 2. Scale of sockets (this project's design)",
            table(
                [
                    "sockets",
                    "PG conns ASGI (peak)",
                    "PG conns worker (peak)",
                    "ASGI RSS MiB",
                    "ASGI peak RSS MiB",
                    "offered msgs/s",
                    "delivered frames/s",
                    "fan-out p50 ms",
                    "fan-out p99 ms",
                    "lost (frames / unstored)",
                ],
                rows,
            ),
        ]
    if results.get("persistence"):
        rows = [
            [r["worker"], r["messages"], r["tasks"], r["stored_per_s"], r["worker_peak"]]
            for r in results["persistence"]
        ]
        parts += [
            "### 3. Persistence throughput (preloaded queue, worker started after)",
            table(["worker", "messages", "tasks", "stored msgs/s", "PG conns worker (peak)"], rows),
        ]
    if results.get("matrix"):
        rows = [
            [
                r["server"],
                r["layer"],
                r["offered_per_s"],
                r["delivered_per_s"],
                r["latency_p50_ms"],
                r["latency_p99_ms"],
                r["persist_lag_p99_ms"],
                f"{r['missing_frames']} / {r['unstored']}",
                r["peak_rss_mb"],
            ]
            for r in results["matrix"]
        ]
        parts += [
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
                rows,
            ),
        ]
    checks = targets(results)
    if checks:
        rows = [[name, "met" if ok else "**missed**", measured] for name, ok, measured in checks]
        parts += ["### Targets", table(["target", "result", "measured"], rows)]
    return "\n\n".join(parts) + "\n"


def chart(results: dict, path: Path) -> bool:
    """A PNG of the headline figures; False if matplotlib (the bench extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    if comparison := results.get("comparison"):
        ax = axes[0][0]
        labels = [r["design"] for r in comparison]
        x = range(len(labels))
        ax.bar(
            [i - 0.2 for i in x], [r["latency_p50_ms"] or 0 for r in comparison], 0.4, label="p50"
        )
        ax.bar(
            [i + 0.2 for i in x], [r["latency_p99_ms"] or 0 for r in comparison], 0.4, label="p99"
        )
        ax.set_xticks(list(x), labels)
        ax.set_yscale("log")
        ax.set_title("1. Fan-out latency (ms, log) by design")
        ax.legend()
    if scale_rows := results.get("scale"):
        ax = axes[0][1]
        sockets = [r["sockets"] for r in scale_rows]
        ax.plot(sockets, [r["rss_mb"] for r in scale_rows], "o-", label="ASGI RSS MiB")
        ax.plot(sockets, [r["web_peak"] for r in scale_rows], "s-", label="PG conns ASGI")
        ax.plot(sockets, [r["worker_peak"] for r in scale_rows], "^-", label="PG conns worker")
        ax.set_xlabel("sockets")
        ax.set_title("2. Scale of sockets")
        ax.legend()
    if persistence := results.get("persistence"):
        ax = axes[1][0]
        ax.barh([r["worker"] for r in persistence], [r["stored_per_s"] for r in persistence])
        ax.set_xlabel("stored msgs/s")
        ax.set_title("3. Persistence throughput")
    if matrix := results.get("matrix"):
        ax = axes[1][1]
        labels = [f"{r['server']}\n{r['layer']}" for r in matrix]
        ax.bar(labels, [r["latency_p99_ms"] or 0 for r in matrix])
        ax.set_ylabel("fan-out p99 ms")
        ax.set_title("4. Server and layer (this project's design)")
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
