"""Helpers to run classes against simulated suits in virtual time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.simclass import SimulatedClass
from sim.suit import SimulatedSuit
from workouts import compile_workout, load_workout_text

SHORT = """\
name: Short
programs:
  s: {frequency_hz: 85, pulse_width_us: 350, impulse_s: 4, pause_s: 4, ramp_up_s: 0.5, ramp_down_s: 0.3}
phases:
  - {kind: warmup, duration: 10s}
  - kind: suit
    exercises:
      - {name: Squat, duration: 40s, program: s, channels: {quads: 1.0, glutes: 1.0}}
      - {name: Crunch, duration: 40s, program: s, channels: {abs: 1.0}}
  - {kind: stretch, duration: 10s}
"""
QUADS = 9
ABS = 2


def short_plan(text: str = SHORT) -> Any:
    return compile_workout(load_workout_text(text))


@dataclass
class History:
    """Every change of applied output at every suit: (time, outputs, state)."""

    changes: dict[str, list[tuple[float, np.ndarray, str]]] = field(default_factory=dict)

    def watch(self, suits: list[SimulatedSuit]) -> None:
        import trio

        def record(suit: SimulatedSuit) -> None:
            rows = self.changes.setdefault(suit.address, [])
            out = suit.firmware.applied_mA.copy()
            if not rows or not np.array_equal(rows[-1][1], out):
                rows.append((trio.current_time(), out, suit.firmware.state.name))

        for s in suits:
            s.on_change = record

    def rising_edges(self, address: str, channel: int) -> list[float]:
        out, prev = [], 0.0
        for t, lv, _ in self.changes.get(address, []):
            if lv[channel] > 0 and prev <= 0:
                out.append(t)
            prev = lv[channel]
        return out


def make_class(n: int = 4, text: str = SHORT, **kw: Any) -> tuple[SimulatedClass, History]:
    kw.setdefault("intensity_mA", 20.0)
    sc = SimulatedClass(short_plan(text), n, **kw)
    hist = History()
    hist.watch(sc.suits)
    return sc, hist


def contains(group: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(group, kind):
        return True
    if isinstance(group, BaseExceptionGroup):
        return any(contains(e, kind) for e in group.exceptions)
    return False
