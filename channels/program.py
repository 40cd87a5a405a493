"""Stimulation programs and their impulse/pause envelope, vectorised over time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from channels.limits import FREQUENCY_RANGE_HZ, PULSE_WIDTH_RANGE_US

FloatArray = npt.NDArray[np.float64]


class ProgramError(ValueError):
    """A program whose parameters are out of range or inconsistent."""


@dataclass(frozen=True)
class Program:
    """How a channel is stimulated: pulse parameters and the contraction rhythm.

    Units: Hz, µs per phase, seconds. Frequency and pulse width are whole
    numbers, as the suit protocol carries and the suit applies them (S1 caps are
    computed from exactly these). A `continuous` program has no pauses:
    it ramps up once at the start of its segment and stays on.
    """

    frequency_hz: int = 85
    pulse_width_us: int = 350
    impulse_s: float = 4.0
    pause_s: float = 4.0
    ramp_up_s: float = 0.5
    ramp_down_s: float = 0.3
    continuous: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ProgramError("; ".join(f"{k}: {v}" for k, v in problems))

    def problems(self) -> list[tuple[str, str]]:
        """Every range or consistency problem as (field, message)."""
        out: list[tuple[str, str]] = []
        for name in ("frequency_hz", "pulse_width_us"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                out.append(
                    (name, f"must be a whole number (the suit applies whole units), not {v!r}")
                )
        lo, hi = FREQUENCY_RANGE_HZ
        if not lo <= self.frequency_hz <= hi:
            out.append(("frequency_hz", f"must be between {lo:g} and {hi:g} Hz"))
        lo, hi = PULSE_WIDTH_RANGE_US
        if not lo <= self.pulse_width_us <= hi:
            out.append(("pulse_width_us", f"must be between {lo:g} and {hi:g} µs"))
        for name in ("impulse_s", "pause_s", "ramp_up_s", "ramp_down_s"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                out.append((name, "must be zero or more seconds"))
        if not self.continuous:
            if self.impulse_s <= 0:
                out.append(("impulse_s", "must be more than 0 s"))
            elif self.ramp_up_s + self.ramp_down_s > self.impulse_s + 1e-9:
                out.append(
                    (
                        "ramp_up_s",
                        f"ramps ({self.ramp_up_s:g} s up + {self.ramp_down_s:g} s down) "
                        f"must fit inside the {self.impulse_s:g} s impulse",
                    )
                )
        elif self.pause_s != 0:
            out.append(("pause_s", "a continuous program has no pause: use 0 or leave it out"))
        return out

    @property
    def period_s(self) -> float:
        """One contraction cycle, impulse plus pause (inf for continuous programs)."""
        return math.inf if self.continuous else self.impulse_s + self.pause_s

    def contractions(self, duration_s: float) -> int:
        """Impulse starts in a segment of this length (0 for continuous programs)."""
        if self.continuous or duration_s <= 0:
            return 0
        return math.ceil(duration_s / self.period_s - 1e-9)

    def level_at(self, t: float) -> float:
        """`envelope` at one time, in plain floats (the engine's tick calls it 40 times a second).

        The same arithmetic as `envelope` (numpy's mod is C's fmod for t ≥ 0), without
        the cost of numpy on a scalar; a test holds the two equal.
        """
        if not math.isfinite(t):  # never from a plan: whatever `envelope` says
            return float(self.envelope(t))
        if t < 0:
            return 0.0
        up = self.ramp_up_s if self.ramp_up_s > 1e-9 else 0.0
        if self.continuous:
            return 1.0 if up <= 0 else min(max(t / up, 0.0), 1.0)
        phase = math.fmod(t, self.period_s)
        if not phase < self.impulse_s:
            return 0.0
        down = self.ramp_down_s if self.ramp_down_s > 1e-9 else 0.0
        rise = 1.0 if up <= 0 else min(phase / up, 1.0)
        fall = 1.0 if down <= 0 else min((self.impulse_s - phase) / down, 1.0)
        return min(max(min(rise, fall), 0.0), 1.0)

    def envelope(self, t: float | FloatArray) -> FloatArray:
        """Relative level 0..1 at time `t` since the segment start (scalar or array).

        Negative times give 0. A ramp of length zero is a step.
        """
        tt = np.asarray(t, dtype=np.float64)
        up = self.ramp_up_s if self.ramp_up_s > 1e-9 else 0.0
        if self.continuous:
            lvl = np.ones_like(tt) if up <= 0 else np.clip(tt / up, 0.0, 1.0)
            return np.where(tt < 0, 0.0, lvl)
        phase = np.mod(tt, self.period_s)
        down = self.ramp_down_s if self.ramp_down_s > 1e-9 else 0.0
        rise = np.ones_like(phase) if up <= 0 else np.minimum(phase / up, 1.0)
        fall = (
            np.ones_like(phase) if down <= 0 else np.minimum((self.impulse_s - phase) / down, 1.0)
        )
        lvl = np.where(phase < self.impulse_s, np.minimum(rise, fall), 0.0)
        return np.where(tt < 0, 0.0, np.clip(lvl, 0.0, 1.0))
