"""A whole class over BLE in virtual time: bleak over bumble, the radio model, the real engine.

`python -m benchmarks.ble_class [--clients N] [--adapters A] [--minutes M]` runs the built-in
35-minute benchmark class (benchmarks/class35.yaml) as `suitctl sim run --link ble --virtual`
does (bodies on, bleak + bumble + `sim/radio.py`), and prints one JSON line: wall seconds,
CPU seconds, ticks, and every suit's frames received.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from typing import Any

import trio
import trio.testing
import trio_asyncio

from benchmarks.common import plan35
from sim.radio import Radio
from sim.simclass import SimulatedClass
from workouts.plan import Plan

#: Issue 15: a full class with `--link ble` (bumble) in virtual time.
TARGET_BLE_CLASS_S = 60.0


def run_ble_class(
    clients: int = 8, adapters: int = 1, minutes: float | None = None
) -> dict[str, Any]:
    """One virtual-time class over BLE; `minutes` cuts the plan short (profiling)."""
    plan = plan35()
    if minutes is not None:  # the class's first `minutes`, cut at a segment's end
        cut = minutes * 60.0
        kept = [
            dataclasses.replace(s, end_s=min(s.end_s, cut))
            for s in plan.segments
            if s.start_s < cut
        ]
        plan = Plan(plan.workout, plan.layout, kept)
    radio = Radio()
    sc = SimulatedClass(
        plan,
        clients,
        link="ble",
        adapters=[f"sim-hci{i}" for i in range(adapters)],
        radio=radio,
    )

    async def main() -> str:
        async with trio_asyncio.open_loop():
            return await sc.run()

    load = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    ending = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    received = [s.frames_received for s in sc.suits]
    return {
        "clients": clients,
        "adapters": adapters,
        "class_min": round(plan.total_s / 60, 1),
        "ended": ending,
        "ticks": sc.session.ticks,
        "frames_received_min": min(received),
        "frames_received_max": max(received),
        "watchdog_trips": sum(s.firmware.watchdog_trips for s in sc.suits),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "load_avg_1m": round(load, 2),
        # the target is a full class's: a shortened one has none
        "target_wall_s": TARGET_BLE_CLASS_S if minutes is None else None,
    }


def median_of_runs(
    runs: int = 3, clients: int = 8, adapters: int = 1, minutes: float | None = None
) -> dict[str, Any]:
    """`runs` classes one after the other: the median wall and CPU seconds, their spread,
    and the load average before each (the machine is shared: compare with the load)."""
    results = [run_ble_class(clients, adapters, minutes) for _ in range(runs)]
    walls = sorted(r["wall_s"] for r in results)
    cpus = sorted(r["cpu_s"] for r in results)
    last = results[-1]
    return {
        "clients": clients,
        "adapters": adapters,
        "class_min": last["class_min"],
        "runs": runs,
        "ended": sorted({r["ended"] for r in results}),
        "ticks": last["ticks"],
        "frames_received_min": min(r["frames_received_min"] for r in results),
        "watchdog_trips": sum(r["watchdog_trips"] for r in results),
        "wall_s_median": statistics.median(walls),
        "wall_s_min": walls[0],
        "wall_s_max": walls[-1],
        "cpu_s_median": statistics.median(cpus),
        "cpu_s_min": cpus[0],
        "cpu_s_max": cpus[-1],
        "load_avg_1m": [r["load_avg_1m"] for r in results],
        "target_wall_s": TARGET_BLE_CLASS_S if minutes is None else None,
        "met": statistics.median(walls) <= TARGET_BLE_CLASS_S if minutes is None else None,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--adapters", type=int, default=1)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--runs", type=int, default=1)
    a = p.parse_args()
    if a.runs == 1:
        line = run_ble_class(a.clients, a.adapters, a.minutes)
    else:
        line = median_of_runs(a.runs, a.clients, a.adapters, a.minutes)
    print(json.dumps({"bench": "ble_class", **line}), flush=True)


if __name__ == "__main__":
    main()
