"""The compiled workout: a timeline of segments, a pure function of time.

`Plan.levels(t)` gives each channel's relative level 0..1 at class time `t`
(seconds since the class started), for a scalar or a numpy array of times.
The real-time engine samples it once per tick; the offline simulator
evaluates a whole class at once. Warm-up and stretching are always 0 (S8).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import overload

import numpy as np
import numpy.typing as npt

from channels.layouts import DEFAULT_LAYOUT, SuitLayout
from channels.program import Program
from workouts.model import PhaseKind, Workout

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Segment:
    """A stretch of the class with one program (or none) and fixed channel weights."""

    start_s: float
    end_s: float
    kind: PhaseKind
    name: str
    cues: tuple[str, ...]
    program: Program | None
    weights: FloatArray = field(repr=False)
    phase_index: int = 0
    exercise_index: int | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def stimulates(self) -> bool:
        return self.program is not None and bool(np.any(self.weights > 0))

    def contractions(self) -> int:
        """Impulse starts in this segment (0 when it does not stimulate or is continuous)."""
        return self.program.contractions(self.duration_s) if self.stimulates and self.program else 0

    def stim_s(self) -> float:
        """Time with a level above zero on a weighted channel, s."""
        p = self.program
        if p is None or not self.stimulates:
            return 0.0
        if p.continuous:
            return self.duration_s
        full, rest = divmod(self.duration_s, p.period_s)
        return full * p.impulse_s + min(rest, p.impulse_s)


@dataclass(frozen=True)
class Summary:
    """Figures of a plan, as `workout validate --json` prints them."""

    total_s: float
    suit_s: float
    exercises: int
    contractions: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "total_s": self.total_s,
            "suit_s": self.suit_s,
            "exercises": self.exercises,
            "contractions": self.contractions,
        }


class Plan:
    """A workout compiled for one suit layout."""

    def __init__(self, workout: Workout, layout: SuitLayout, segments: list[Segment]) -> None:
        self.workout = workout
        self.layout = layout
        self.segments = tuple(segments)
        self._starts = np.array([s.start_s for s in segments], dtype=np.float64)
        self._start_list = [s.start_s for s in segments]  # bisect: a tick's scalar look-up
        self.total_s = segments[-1].end_s if segments else 0.0
        self._zeros = np.zeros(len(layout), dtype=np.float64)

    @property
    def n_channels(self) -> int:
        return len(self.layout)

    def segment_index(self, t: float) -> int | None:
        """Index of the segment running at time `t`, or None outside the class."""
        if not 0.0 <= t < self.total_s:
            return None
        return bisect.bisect_right(self._start_list, t) - 1  # np.searchsorted side="right"

    def segment_at(self, t: float) -> Segment | None:
        """The segment running at time `t`, or None before the start and after the end."""
        i = self.segment_index(t)
        return None if i is None else self.segments[i]

    def next_segment_start(self, t: float) -> float:
        """Start of the segment after the one at `t` (the class end if it is the last)."""
        i = self.segment_index(t)
        if i is None:
            return self.total_s
        return self.segments[i].end_s

    @overload
    def levels(self, t: float) -> FloatArray: ...
    @overload
    def levels(self, t: FloatArray) -> FloatArray: ...
    def levels(self, t: float | FloatArray) -> FloatArray:
        """Relative levels 0..1: shape (channels,) for a scalar, (len(t), channels) for an array."""
        if np.ndim(t) == 0:
            tf = float(t)
            seg = self.segment_at(tf) if math.isfinite(tf) else None
            if seg is None or seg.program is None:
                return self._zeros.copy()
            return seg.weights * seg.program.level_at(tf - seg.start_s)
        times = np.asarray(t, dtype=np.float64)
        out = np.zeros((times.shape[0], self.n_channels), dtype=np.float64)
        idx = np.searchsorted(self._starts, times, side="right") - 1
        inside = (times >= 0) & (times < self.total_s)
        for i, seg in enumerate(self.segments):
            if seg.program is None or not seg.stimulates:
                continue
            mask = inside & (idx == i)
            if np.any(mask):
                env = seg.program.envelope(times[mask] - seg.start_s)
                out[mask] = env[:, None] * seg.weights[None, :]
        return out

    def contractions_per_channel(self) -> FloatArray:
        """Impulse starts each channel receives over the class."""
        out = np.zeros(self.n_channels)
        for seg in self.segments:
            out += (seg.weights > 0) * seg.contractions()
        return out

    def stim_s_per_channel(self) -> FloatArray:
        """Seconds each channel has a level above zero over the class."""
        out = np.zeros(self.n_channels)
        for seg in self.segments:
            out += (seg.weights > 0) * seg.stim_s()
        return out

    def summary(self) -> Summary:
        suit = [s for s in self.segments if s.kind is PhaseKind.SUIT]
        return Summary(
            total_s=self.total_s,
            suit_s=sum(s.duration_s for s in suit),
            exercises=len(suit),
            contractions=sum(s.contractions() for s in suit),
        )


def compile_workout(workout: Workout, layout: SuitLayout = DEFAULT_LAYOUT) -> Plan:
    """Lay the workout's phases and exercises end to end as segments for `layout`."""
    segments: list[Segment] = []
    t = 0.0
    for pi, phase in enumerate(workout.phases):
        if phase.kind is not PhaseKind.SUIT:
            segments.append(
                Segment(
                    t,
                    t + phase.duration_s,
                    phase.kind,
                    phase.kind.value,
                    phase.cues,
                    None,
                    np.zeros(len(layout)),
                    pi,
                )
            )
            t += phase.duration_s
            continue
        for ei, ex in enumerate(phase.exercises):
            weights = np.zeros(len(layout))
            # a group key (`chest`) first, then side keys (`chest_left`) override it
            for key, w in sorted(ex.channels.items(), key=lambda kv: kv[0].side is not None):
                for ch in layout.select(key):
                    weights[ch] = w
            segments.append(
                Segment(
                    t,
                    t + ex.duration_s,
                    phase.kind,
                    ex.name,
                    ex.cues or phase.cues,
                    ex.program,
                    weights,
                    pi,
                    ei,
                )
            )
            t += ex.duration_s
    segments = [s for s in segments if s.end_s > s.start_s]
    return Plan(workout, layout, segments)
