"""`plan_report`: what a trainer waits for, `suitctl sim plan` 20 × 12 over 35 min, report included.

The command runs as the trainer runs it (a process of its own: start-up,
planning, `session.json`, `report.html`), three times; the median and spread
of its wall and CPU time are printed with the load average, and beside them
the parts: the CLI's start-up (imports) and drawing the report in-process.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import HERE, emit

#: Issue 15: `sim plan` 20 × 12 ≤ 2 s.
TARGET_WALL_S = 2.0
RUNS = 3
CLIENTS = 20


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(float(statistics.median(ordered)), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process (which must succeed)."""
    cpu, t = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t, _children_cpu() - cpu


def run_plan_report(runs: int = RUNS, clients: int = CLIENTS) -> dict[str, Any]:
    """Run the bench and return its fields (also printed by `bench_plan_report`)."""
    from sim.report import render_report

    workout = HERE / "class35.yaml"
    walls, cpus, computes, renders, startups = [], [], [], [], []
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            out = Path(tmp) / f"plan{i}"
            cmd = [sys.executable, "-m", "suit_controller", "sim", "plan", str(workout),
                   "--clients", str(clients), "--out", str(out)]  # fmt: skip
            wall, cpu = _timed(cmd)
            walls.append(wall)
            cpus.append(cpu)
            doc = json.loads((out / "session.json").read_text(encoding="utf-8"))
            computes.append(float(doc["compute_s"]))
            size = (out / "report.html").stat().st_size
            c = time.process_time()
            render_report(doc)
            renders.append(time.process_time() - c)
            startups.append(_timed([sys.executable, "-c", "import suit_controller.cli"])[1])
    wall_s = _spread(walls)
    return {
        "clients": clients,
        "channels": 12,
        "class_min": 35.0,
        "runs": runs,
        "wall_s": wall_s,
        "cpu_s": _spread(cpus),
        "planning_wall_s": _spread(computes),
        "report_cpu_s": _spread(renders),
        "startup_cpu_s": _spread(startups),
        "report_kb": round(size / 1024),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "target_wall_s": TARGET_WALL_S,
        "met": wall_s["median"] <= TARGET_WALL_S,
    }


def bench_plan_report() -> None:
    emit("plan_report", **run_plan_report(int(os.environ.get("PLAN_REPORT_RUNS", RUNS))))
