"""What the live console costs the controller: one `state` push, built and encoded.

Each connected device gets a push ten times a second, built in the engine's own
Trio program, so its cost comes out of the same thread as the ticks.
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio
import trio.testing

from benchmarks.common import percentiles_ms, plan35
from sim.simclass import SimulatedClass
from suit_controller.web.app import PUSH_HZ, Console


def run_console(clients: int = 12, pushes: int = 500) -> dict[str, Any]:
    """Build and encode `pushes` state messages of a `clients`-client class mid-exercise."""
    sc = SimulatedClass(plan35(), clients, body=False)
    console = Console(sc.session, None)
    samples: list[float] = []
    size = class_size = 0

    async def main() -> None:
        nonlocal size, class_size
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await trio.sleep(400.0)  # into the exercises
            class_size = len(json.dumps(console.class_facts()))
            for _ in range(pushes):
                t = time.perf_counter()
                text = json.dumps(console.state(), default=str)
                samples.append(time.perf_counter() - t)
                size = len(text)
                await trio.sleep(1.0 / PUSH_HZ)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    p = percentiles_ms(samples)
    return {
        "clients": clients,
        "pushes": pushes,
        "state_bytes": size,
        "class_bytes": class_size,
        **p,
        # one device at 10 Hz: the share of one core its pushes take (p50)
        "cpu_share_per_device_pct": round(p["p50_ms"] / 1000 * PUSH_HZ * 100, 3),
    }
