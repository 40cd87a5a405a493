"""Emergency stop latency: from the command until every simulated suit's output is zero."""

from __future__ import annotations

import random
import time
from typing import Any

import trio
import trio.lowlevel

from benchmarks.common import percentiles_ms, plan35
from sim.simclass import SimulatedClass
from sim.suit import SimulatedSuit
from suit_controller.commands import EmergencyStop, Reset, Resume

#: Start inside the suit block, where outputs are on.
SUIT_BLOCK_S = 6 * 60.0 + 1.0


def run_estop(n_suits: int = 20, trials: int = 100, seed: int = 1) -> dict[str, Any]:
    """Real clock, zero link latency: time from `execute(EmergencyStop())` to all outputs zero."""
    plan = plan35()
    sc = SimulatedClass(plan, n_suits, intensity_mA=60.0)
    rng = random.Random(seed)
    samples: list[float] = []
    #: From the command to the moment the last suit's firmware zeroed (before the command's
    #: own bookkeeping after the stop: its event and result), in trials with outputs on.
    at_suits: list[float] = []
    zeroed_at: dict[str, float] = {}
    nonzero_before = 0

    def watch(suit: SimulatedSuit) -> None:
        if not suit.firmware.applied_mA.any() and suit.address not in zeroed_at:
            zeroed_at[suit.address] = time.perf_counter()

    for suit in sc.suits:
        suit.on_change = watch

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
                on_before = any(s.firmware.applied_mA.any() for s in sc.suits)
                nonzero_before += on_before
                zeroed_at.clear()
                for suit in sc.suits:  # those at zero already count from the command
                    watch(suit)
                t0 = time.perf_counter()
                zeroed_at.update({a: t0 for a in zeroed_at})
                await sc.session.execute(EmergencyStop(), source="bench")
                with trio.fail_after(1.0):
                    await all_zero()
                samples.append(time.perf_counter() - t0)
                if on_before:  # a stop with outputs to zero (else the last zero is t0)
                    at_suits.append(max(zeroed_at.values()) - t0)
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
        **percentiles_ms(at_suits, prefix="last_suit_zero_"),
        "target_p99_ms": 1.0,  # issue 15: to all 20 suits zero, in process
    }


def run_estop_thread(n_suits: int = 20, trials: int = 100, seed: int = 1) -> dict[str, Any]:
    """The same with the engine in its own thread (`engine_thread`): from the faces' thread
    handing the e-stop to the port until its result is back there (every suit's firmware has
    stopped by then: the result comes once STOP_ALL has gone to every suit)."""
    from suit_controller.engine_thread import open_engine_thread

    plan = plan35()
    sc = SimulatedClass(plan, n_suits, intensity_mA=60.0)
    session = sc.session
    rng = random.Random(seed)
    samples: list[float] = []
    nonzero_before = 0
    not_stopped_at_result = 0
    zeroed_at: dict[str, float] = {}  # perf_counter (one clock for every thread)
    to_zero: list[float] = []

    def changed(suit: SimulatedSuit) -> None:  # in the engine's thread, as a frame lands
        if not suit.firmware.applied_mA.any():
            zeroed_at[suit.address] = time.perf_counter()

    for suit in sc.suits:
        suit.on_change = changed

    def skip_ramp() -> None:  # in the engine's loop
        session.board.set_mA[:] = session.board.target_mA

    async def main() -> None:
        nonlocal nonzero_before, not_stopped_at_result
        async with open_engine_thread(session, sc.run) as port:
            port.in_engine(lambda: session.clock.seek(SUIT_BLOCK_S))
            await trio.sleep(3.0)  # intensities ramp up
            for _ in range(trials):
                await trio.sleep(rng.uniform(0.05, 0.5))
                nonzero_before += any(s.firmware.applied_mA.any() for s in sc.suits)
                zeroed_at.clear()
                on = {s.address for s in sc.suits if s.firmware.applied_mA.any()}
                t0 = time.perf_counter()
                result = await port.desk.take({"do": "estop"}, "bench").wait()
                samples.append(time.perf_counter() - t0)
                if on:  # until the last suit that was stimulating is at zero
                    to_zero.append(max(zeroed_at.get(a, t0) for a in on) - t0)
                assert result.ok, result.message
                not_stopped_at_result += any(s.firmware.applied_mA.any() for s in sc.suits)
                await port.submit({"do": "reset"}, "bench")
                await port.submit({"do": "resume"}, "bench")
                port.in_engine(skip_ramp)
            await port.submit({"do": "stop"}, "bench")

    trio.run(main)
    return {
        "engine": "own thread",
        "suits": n_suits,
        "trials": trials,
        "outputs_on_before": nonzero_before,
        "outputs_on_at_result": not_stopped_at_result,
        # from the faces' hand-over until every stimulating suit is at zero (measured in the
        # engine's thread as the frames land), then until the result is back with the faces
        **percentiles_ms(to_zero, "to_zero_"),
        **percentiles_ms(samples, "to_result_"),
        "target_p99_ms": 1.0,
    }
