"""Emergency stop latency: from the command until every simulated suit's output is zero."""

from __future__ import annotations

import random
import time
from typing import Any

import trio
import trio.lowlevel

from benchmarks.common import percentiles_ms, plan35
from sim.simclass import SimulatedClass
from suit_controller.commands import EmergencyStop, Reset, Resume

#: Start inside the suit block, where outputs are on.
SUIT_BLOCK_S = 6 * 60.0 + 1.0


def run_estop(n_suits: int = 20, trials: int = 100, seed: int = 1) -> dict[str, Any]:
    """Real clock, zero link latency: time from `execute(EmergencyStop())` to all outputs zero."""
    plan = plan35()
    sc = SimulatedClass(plan, n_suits, intensity_mA=60.0)
    rng = random.Random(seed)
    samples: list[float] = []
    nonzero_before = 0

    async def all_zero() -> None:
        while any(s.firmware.applied_mA.any() for s in sc.suits):
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        nonlocal nonzero_before
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await trio.lowlevel.checkpoint()
            sc.session.clock.seek(SUIT_BLOCK_S)
            await trio.sleep(3.0)  # intensities ramp up
            for _ in range(trials):
                await trio.sleep(rng.uniform(0.05, 0.5))
                nonzero_before += any(s.firmware.applied_mA.any() for s in sc.suits)
                t0 = time.perf_counter()
                await sc.session.execute(EmergencyStop(), source="bench")
                with trio.fail_after(1.0):
                    await all_zero()
                samples.append(time.perf_counter() - t0)
                await sc.session.execute(Reset(), source="bench")
                await sc.session.execute(Resume(), source="bench")
                sc.session.board.set_mA[:] = sc.session.board.target_mA  # skip the ramp
            nursery.cancel_scope.cancel()

    trio.run(main)
    return {
        "suits": n_suits,
        "trials": trials,
        "outputs_on_before": nonzero_before,
        **percentiles_ms(samples),
        "target_p99_ms": 1.0,  # issue 15: to all 20 suits zero, in process
    }
