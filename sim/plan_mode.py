"""The fast planning mode: what the engine would send, computed for a whole class at once.

It mirrors the engine's arithmetic (DESIGN principle 2: the plan is a pure
function of time): plan levels × set intensity (which rises from zero in
1 mA steps every 0.25 s), capped by S1 for each segment's program, and
rounded down to the protocol's 0.5 mA steps — vectorised over ticks,
clients and channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channels.limits import INTENSITY_RISE_STEP_S, LEVEL_STEP_MA, channel_cap_mA
from channels.program import FloatArray
from workouts.plan import Plan


@dataclass(frozen=True)
class Delivery:
    """Currents on the tick grid, with each tick's pulse parameters."""

    tick_s: float
    currents_mA: np.ndarray  # (ticks, clients, channels), float32
    pulse_width_us: FloatArray  # (ticks,)
    frequency_hz: FloatArray  # (ticks,)


def planned_delivery(
    plan: Plan, targets_mA: FloatArray, client_caps_mA: FloatArray, rate_hz: float = 40.0
) -> Delivery:
    """Currents the engine would send: `targets_mA` and `client_caps_mA` are (clients, channels)."""
    tick = 1.0 / rate_hz
    t: FloatArray = np.arange(int(np.ceil(plan.total_s * rate_hz)), dtype=np.float64) * tick
    levels = plan.levels(t).astype(np.float32)  # (T, N)
    n_t = t.size
    seg_idx = np.clip(
        np.searchsorted([s.start_s for s in plan.segments], t, side="right") - 1,
        0,
        len(plan.segments) - 1,
    )
    pw = np.zeros(n_t)
    freq = np.zeros(n_t)
    caps = np.zeros((len(plan.segments), *targets_mA.shape), dtype=np.float32)
    for i, seg in enumerate(plan.segments):
        p = seg.program
        if p is None:
            continue
        sel = seg_idx == i
        pw[sel], freq[sel] = p.pulse_width_us, p.frequency_hz
        for j, ch in enumerate(plan.layout.channels):
            for c in range(targets_mA.shape[0]):
                caps[i, c, j] = channel_cap_mA(
                    channel_max_mA=ch.max_mA,
                    area_cm2=ch.area_cm2,
                    pulse_width_us=p.pulse_width_us,
                    frequency_hz=p.frequency_hz,
                    client_cap_mA=float(client_caps_mA[c, j]),
                )
    target = np.minimum(targets_mA, client_caps_mA).astype(np.float32)
    steps = (np.floor(t / INTENSITY_RISE_STEP_S + 1e-9) + 1).astype(np.float32)  # 1 mA each
    set_mA = np.minimum(target[None, :, :], steps[:, None, None])
    out = np.minimum(levels[:, None, :] * set_mA, caps[seg_idx])
    out = np.floor(out / LEVEL_STEP_MA + 1e-6) * LEVEL_STEP_MA
    return Delivery(tick, out.astype(np.float32), pw, freq)
