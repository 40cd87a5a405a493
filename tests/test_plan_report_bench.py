"""The `plan_report` bench runs the real command and its figures hang together (no timing asserted)."""

from __future__ import annotations

from benchmarks.plan_report import run_plan_report


def test_the_plan_report_bench_runs_sim_plan_and_draws_the_report() -> None:
    line = run_plan_report(runs=1, clients=2)
    assert line["runs"] == 1 and line["clients"] == 2 and line["report_kb"] > 10
    wall, cpu = line["wall_s"], line["cpu_s"]
    assert wall["min"] == wall["median"] == wall["max"] > 0 and cpu["median"] > 0
    # the parts are inside the whole: start-up and the report's drawing took CPU of their own
    assert line["report_cpu_s"]["median"] > 0 and line["startup_cpu_s"]["median"] > 0
    assert line["planning_wall_s"]["median"] <= wall["median"]
    assert line["met"] == (wall["median"] <= line["target_wall_s"])
