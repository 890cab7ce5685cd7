"""The benchmark's verdicts: a target is called met or missed from the figures, never assumed.

The benchmark itself runs in the template's tests (make bench-quick); here, its report is
fed figures on either side of each target.
"""

from bench.load import percentile
from bench.report import markdown, targets

META = {
    "command": "make bench",
    "mode": "full",
    "date": "today",
    "machine": "test",
    "server": "uvicorn",
    "layer": "redis_pubsub",
    "budget": {"worker": 2, "web": 4},
    "load_average_at_start": [0, 0, 0],
    "load_average_at_end": [0, 0, 0],
    "seconds": 1.0,
}


def row(design: str, p99: float, web_peak: int = 0, worker_peak: int = 0) -> dict:
    return {
        "design": design,
        "sockets": 200,
        "offered_per_s": 100,
        "delivered_per_s": 1000,
        "latency_p50_ms": p99 / 2,
        "latency_p99_ms": p99,
        "persist_lag_p99_ms": 500.0,
        "web_peak": web_peak,
        "worker_peak": worker_peak,
        "stored": 1500,
        "duplicate_frames": 0,
        "missing_frames": 0,
        "unstored": 0,
        "web_cpu_s": 1.0,
        "worker_cpu_s": 1.0,
    }


def results(c_p99: float, c_web_peak: int = 0, batched: float = 5000) -> dict:
    return {
        "meta": META,
        "comparison": [
            row("a", 2000, web_peak=1),
            row("b", 100, web_peak=7),
            row("c", c_p99, web_peak=c_web_peak, worker_peak=2),
            row("d", 8),
        ],
        "persistence": [
            {
                "worker": "batched",
                "messages": 1,
                "tasks": 1,
                "stored_per_s": batched,
                "worker_peak": 2,
            },
            {"worker": "naive", "messages": 1, "tasks": 1, "stored_per_s": 200, "worker_peak": 2},
        ],
    }


def verdicts(data: dict) -> dict:
    return {name: met for name, met, _ in targets(data)}


def test_every_target_met():
    assert all(verdicts(results(c_p99=10)).values())


def test_each_missed_target_is_reported_as_missed():
    slow = verdicts(results(c_p99=50))  # 2x better than (b), 6x its ceiling
    assert not slow["(c) fan-out p99 at least 10x lower than (b)"]
    assert not slow["(c) fan-out p99 within 1.3x of (d)"]
    assert not verdicts(results(c_p99=10, c_web_peak=1))["ASGI process: 0 PostgreSQL connections"]
    assert not verdicts(results(c_p99=10, batched=3000))[
        "persistence: at least 20x the one-task-per-message worker"
    ]
    assert "| **missed** | 2.0x |" in markdown(results(c_p99=50))


def with_ceiling(worker: float, ceiling: float) -> dict:
    """The batched row measured against PostgreSQL's own rate for the same rows."""
    data = results(c_p99=10, batched=worker)
    data["persistence"][0]["ceiling"] = {
        "connections": 2,
        "rows": 1,
        "insert_per_s": ceiling / 3,
        "copy_per_s": ceiling,
        "ceiling_way": "copy",
        "ceiling_per_s": ceiling,
    }
    return data


def test_the_ceiling_target_is_called_from_the_ratio_to_postgresqls_own_rate():
    name = "persistence at least 40% of PostgreSQL's ceiling (batched)"
    assert verdicts(with_ceiling(worker=5000, ceiling=10000))[name]
    assert not verdicts(with_ceiling(worker=5000, ceiling=100000))[name]
    text = markdown(with_ceiling(worker=5000, ceiling=100000))
    assert f"| {name} | **missed** | 5.0% (5000 vs 100000 rows/s by copy) |" in text
    assert "| batched | 1 | 1 | 5000 | 2 | 100000 | 0.05 |" in text
    # Rows without a ceiling (the run did not measure one) have no such target.
    assert not any("PostgreSQL's ceiling" in target for target, _, _ in targets(results(10)))


def test_percentile():
    values = list(range(1, 101))
    assert percentile(values, 50) in (50, 51)
    assert percentile(values, 99) == 99
    assert percentile([], 99) is None


def step(design: str, frames: float, p99: float, held: bool, cpu: float = 50.0, lag=None) -> dict:
    return {
        "design": design,
        "rate": frames / 10,
        "offered_frames_per_s": frames,
        "latency_p99_ms": p99,
        "missing_frames": 0 if held else 5,
        "held": held,
        "client_cpu": 0.5,
        "web_cpu_us_per_frame": cpu,
        "persist_lag_p99_ms": lag,
        "sent": 300,
        "persisted": 300 if lag is not None else 0,
    }


def knee_results(c_knee: float, e_broke: bool = True) -> dict:
    """(b) breaks at 1,000 frames/s, (c) just past ``c_knee``, (e) at 4,000 unless not."""
    steps = [step("b", 500, 20, True), step("b", 1000, 900, False)]
    steps += [step("c", c_knee, 50, True), step("c", c_knee * 2, 700, False)]
    steps += [step("e", 3000, 30, True), step("e", 4000, 800 if e_broke else 40, not e_broke)]
    return {"meta": META, "knee": steps}


def test_the_knee_targets_are_called_from_the_steps_that_held():
    assert verdicts(knee_results(c_knee=3200)) == {
        "(c)'s knee at least 2x (b)'s": True,  # 3,200 against 500
        "(c)'s knee at least 80% of (e)'s": True,  # 3,200 against 3,000
    }
    assert verdicts(knee_results(c_knee=800)) == {
        "(c)'s knee at least 2x (b)'s": False,  # 800 against 500
        "(c)'s knee at least 80% of (e)'s": False,
    }
    assert "| (c) this project | 800 |" in markdown(knee_results(c_knee=800))


def test_the_fan_out_cost_is_compared_at_the_highest_load_both_held():
    name = "(c) ASGI CPU per delivered frame within 1.25x of (e)'s, same offered load"

    def run(c_cost: float) -> dict:
        steps = [step("c", 1000, 10, True, cpu=90), step("c", 2000, 20, True, cpu=c_cost)]
        steps += [step("c", 4000, 900, False, cpu=10)]
        steps += [step("e", 1000, 10, True, cpu=10), step("e", 2000, 20, True, cpu=40)]
        steps += [step("e", 4000, 30, True, cpu=10)]
        return {"meta": META, "knee": steps}

    # At 2,000 frames/s, the last load both held: not 1,000, nor (c)'s failed 4,000.
    assert verdicts(run(c_cost=48))[name]  # 1.2x
    assert not verdicts(run(c_cost=55))[name]  # 1.38x
    assert f"| {name} | **missed** | 1.38x (55 vs 40 µs at 2000 offered frames/s) |" in (
        markdown(run(c_cost=55))
    )


def test_the_persist_lag_is_called_at_the_knee_step_and_counts_the_unpersisted():
    name = "persist lag p99 under 1 s at (c)'s knee"

    def run(lag: float, persisted: int = 300) -> dict:
        steps = [step("c", 1000, 10, True, lag=5000), step("c", 2000, 20, True, lag=lag)]
        steps[-1]["persisted"] = persisted
        steps += [step("c", 4000, 900, False, lag=10)]
        return {"meta": META, "knee": steps}

    assert verdicts(run(lag=400))[name]
    assert not verdicts(run(lag=1500))[name]
    assert not verdicts(run(lag=400, persisted=299))[name]  # one never persisted


def test_a_knee_beyond_the_sweep_makes_a_verdict_inconclusive_not_met():
    # (e) held at its last step: its knee may be far beyond 4,000.
    unbounded = verdicts(knee_results(c_knee=3500, e_broke=False))
    assert unbounded["(c)'s knee at least 80% of (e)'s"] is None
    assert "| inconclusive |" in markdown(knee_results(c_knee=3500, e_broke=False))
    # ... but (c) below 80% of what (e) is known to hold is missed all the same.
    assert not verdicts(knee_results(c_knee=1000, e_broke=False))[
        "(c)'s knee at least 80% of (e)'s"
    ]


def test_the_wall_target_is_missed_when_the_project_loses_a_message():
    def wall(unstored: int) -> dict:
        row = {
            "design": "c",
            "processes": 2,
            "threads": 32,
            "max_connections": 30,
            "sockets": 1000,
            "handshakes_failed": 0,
            "sent": 1000,
            "unstored": unstored,
            "missing_frames": 0,
            "errors": {},
            "refusals": 0,
            "web_peak": 0,
            "worker_peak": 2,
        }
        return {"meta": META, "wall": [row]}

    name = "wall: (c) holds 0 in the ASGI processes, the worker within 2, nothing lost, at K = 2"
    assert verdicts(wall(0))[name]
    assert not verdicts(wall(1))[name]
