"""The fast planning mode: what the engine would send, computed for a whole class at once.

It shares the engine's arithmetic (DESIGN principle 2: the plan is a pure
function of time): plan levels × set intensity (which rises from zero in
1 mA steps every 0.25 s), capped by S1 for each segment's program and
turned into wire codes by the engine's own functions (`program_caps_mA`,
`level_codes`) — vectorised over ticks, clients and channels. It assumes
every suit confirms each program at once (the engine holds the lower of
two programs' caps for the few ticks a confirmation takes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channels.limits import INTENSITY_RISE_STEP_S, LEVEL_STEP_MA, level_codes, program_caps_mA
from channels.program import FloatArray
from workouts.plan import Plan

_CHUNK = 4096


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
    levels = plan.levels(t)  # (T, N), float64 as in the engine
    n_t = t.size
    seg_idx = np.clip(
        np.searchsorted([s.start_s for s in plan.segments], t, side="right") - 1,
        0,
        len(plan.segments) - 1,
    )
    pw = np.zeros(n_t)
    freq = np.zeros(n_t)
    caps = np.zeros((len(plan.segments), *targets_mA.shape))
    channel_max = np.array([ch.max_mA for ch in plan.layout.channels])
    area = np.array([ch.area_cm2 for ch in plan.layout.channels])
    for i, seg in enumerate(plan.segments):
        p = seg.program
        if p is None:
            continue
        sel = seg_idx == i
        pw[sel], freq[sel] = p.pulse_width_us, p.frequency_hz
        caps[i] = program_caps_mA(
            channel_max_mA=channel_max,
            area_cm2=area,
            client_cap_mA=client_caps_mA,
            programs=[(p.frequency_hz, p.pulse_width_us)],
        )
    target = np.minimum(targets_mA, client_caps_mA)
    steps = np.floor(t / INTENSITY_RISE_STEP_S + 1e-9) + 1  # 1 mA each
    # A zero level sends code 0 whatever the set intensity and cap: compute the
    # wire codes only where the plan asks for something (rows: ticks with any
    # level; columns: channels with a level in that block), zeros elsewhere.
    out = np.zeros((n_t, *targets_mA.shape), dtype=np.float32)
    live = np.flatnonzero((levels != 0).any(axis=1))
    for a in range(0, live.size, _CHUNK):  # bounded memory: (chunk, clients, channels) at a time
        rows = live[a : a + _CHUNK]
        cols = np.flatnonzero((levels[rows] != 0).any(axis=0))
        set_mA = np.minimum(target[None, :, cols], steps[rows, None, None])
        requested = levels[rows[:, None], cols][:, None, :] * set_mA
        cap = caps[:, :, cols][seg_idx[rows]]
        out[np.ix_(rows, np.arange(targets_mA.shape[0]), cols)] = (
            level_codes(requested, cap) * LEVEL_STEP_MA
        )
    return Delivery(tick, out, pw, freq)
