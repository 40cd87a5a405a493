"""Tick lateness of the engine on the real clock, against a naive per-channel scheduler."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
import trio
import trio.lowlevel

from benchmarks.common import cpu_seconds, percentiles_ms, plan35
from sim.simclass import SimulatedClass
from sim.suit import SimulatedSuit
from suit_controller.links import InProcessLink
from suit_controller.protocol import ControllerConnection, level_code
from workouts import Plan

WARMUP_S = 0.5
#: Start the measured window inside the suit block, where levels change every tick.
PLAN_OFFSET_S = 6 * 60.0


def _into_suit_block(sc: SimulatedClass) -> None:
    sc.session.clock.seek(PLAN_OFFSET_S)


def run_engine(n_suits: int, seconds: float, rate_hz: float = 40.0) -> dict[str, Any]:
    """Run the real engine against n simulated suits for `seconds` of wall time."""
    plan = plan35()
    sc = SimulatedClass(plan, n_suits, intensity_mA=60.0, rate_hz=rate_hz)
    sends: dict[int, list[float]] = defaultdict(list)
    session = sc.session
    for link in (d.link for d in session.drivers):
        assert isinstance(link, InProcessLink)
        original = link.send

        async def timed(frame: bytes, _send: Any = original) -> None:
            if frame[0] & 0x0F == 1:
                sends[session.ticks].append(time.perf_counter())
            await _send(frame)

        link.send = timed  # type: ignore[method-assign]

    result: dict[str, Any] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await trio.lowlevel.checkpoint()
            _into_suit_block(sc)
            await trio.sleep(WARMUP_S)
            n0, cpu0, wall0 = len(session.lateness_s), cpu_seconds(), time.perf_counter()
            await trio.sleep(seconds)
            cpu1, wall1 = cpu_seconds(), time.perf_counter()
            result["lateness"] = session.lateness_s[n0:]
            result["cpu_pct"] = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
            nursery.cancel_scope.cancel()

    trio.run(main)
    spreads = [max(v) - min(v) for v in sends.values() if len(v) == n_suits]
    return {
        "suits": n_suits,
        "channels": len(plan.layout),
        "rate_hz": rate_hz,
        "seconds": seconds,
        "ticks": len(result["lateness"]),
        **percentiles_ms(result["lateness"], "lateness_"),
        "send_spread_p50_ms": round(float(np.percentile(spreads, 50)) * 1000, 4)
        if spreads
        else None,
        "send_spread_p99_ms": round(float(np.percentile(spreads, 99)) * 1000, 4)
        if spreads
        else None,
        "cpu_pct_one_core": round(result["cpu_pct"], 1),
    }


def _next_change(plan: Plan, t: float, channel: int, period: float) -> float:
    """The naive scheduler's idea of when a channel's level next changes."""
    seg = plan.segment_at(t)
    if seg is None:
        return t + 1.0
    p = seg.program
    if p is None or seg.weights[channel] == 0:
        return seg.end_s
    if p.continuous:
        return t + period if t - seg.start_s < p.ramp_up_s else seg.end_s
    phase = (t - seg.start_s) % p.period_s
    cycle_start = t - phase
    if phase < p.ramp_up_s or p.impulse_s - p.ramp_down_s <= phase < p.impulse_s:
        return t + period  # ramping: every tick
    if phase < p.impulse_s:
        return cycle_start + p.impulse_s - p.ramp_down_s
    return min(cycle_start + p.period_s, seg.end_s)


def run_naive(n_suits: int, seconds: float, rate_hz: float = 40.0) -> dict[str, Any]:
    """One Trio task per channel, each sleeping until its own next change (plain Trio timers)."""
    plan = plan35()
    n_ch = len(plan.layout)
    period = 1.0 / rate_hz
    suits = [SimulatedSuit(f"N-{i}", n_ch) for i in range(n_suits)]
    links = [InProcessLink(s) for s in suits]
    ends = [ControllerConnection(n_ch) for _ in suits]
    levels = np.zeros((n_suits, n_ch))
    lateness: list[float] = []
    measuring = {"on": False}
    result: dict[str, float] = {}

    async def channel_task(i: int, ch: int, t0: float) -> None:
        nxt = trio.current_time()
        while True:
            await trio.sleep_until(nxt)
            now = trio.current_time()
            if measuring["on"]:
                lateness.append(now - nxt)
            t = PLAN_OFFSET_S + now - t0
            levels[i, ch] = plan.levels(t)[ch] * 60.0
            codes = bytes(level_code(v) for v in levels[i])
            for frame in ends[i].frames_to_send(codes, now):
                await links[i].send(frame)
            nxt = max(now + 1e-4, t0 + _next_change(plan, t, ch, period) - PLAN_OFFSET_S)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for s in suits:
                await nursery.start(s.run)
            for i, link in enumerate(links):
                await link.connect()
                ends[i].connected(link.att_payload)
                ends[i].receive_data(await link.receive(), trio.current_time())  # ARM goes first
            t0 = trio.current_time()
            for i in range(n_suits):
                for ch in range(n_ch):
                    nursery.start_soon(channel_task, i, ch, t0)
            await trio.sleep(WARMUP_S)
            measuring["on"] = True
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            await trio.sleep(seconds)
            measuring["on"] = False
            result["cpu_pct"] = 100.0 * (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return {
        "suits": n_suits,
        "channels": n_ch,
        "tasks": n_suits * n_ch,
        "wakeups": len(lateness),
        **percentiles_ms(lateness, "lateness_"),
        "cpu_pct_one_core": round(result["cpu_pct"], 1),
    }
