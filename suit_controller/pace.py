"""The pace of a sped-up class: slow down when the machine cannot keep up, never skip the plan.

Theory of operation
-------------------
`suitctl sim run --speed X` runs the class on a clock X times faster than
the wall. Every simulated suit keeps its 250 ms watchdog (S4) on that clock,
so in wall time a suit trips when no frame reaches it for 250/X ms: a
render, a browser or a garbage collection that holds the program for
12.5 ms trips every suit at `--speed 20`, cuts every client to zero, and the
suits' record no longer agrees with the engine's.

`Pace` watches the margin that matters, the clock time between two ticks
(each tick's frames go to every suit): when a gap uses more than
`MARGIN` of the watchdog, it halves the clock's rate (never below real time,
or the speed asked for if that is slower), says so once per change as a
`slowed_down` event, and the class plays on from where it was. A class at a
lower speed takes longer; it never skips any of its plan.
"""

from __future__ import annotations

from typing import Protocol

from channels.limits import WATCHDOG_S
from suit_controller.session import ClassSession

#: Share of the suits' watchdog a gap between ticks may use before the class slows down.
MARGIN = 0.4


class AdjustableClock(Protocol):
    """A clock whose rate (clock seconds per wall second) can change: trio's `MockClock`."""

    rate: float


class Pace:
    """A tick observer that slows a sped-up class down before the suits' watchdogs trip."""

    def __init__(
        self,
        session: ClassSession,
        clock: AdjustableClock,
        *,
        watchdog_s: float = WATCHDOG_S,
        margin: float = MARGIN,
    ) -> None:
        self.session = session
        self.clock = clock
        self.asked = clock.rate
        self.floor = min(1.0, clock.rate)
        self.limit_s = margin * watchdog_s
        self.watchdog_s = watchdog_s
        self._last: float | None = None
        #: Every change of speed: (class time s, gap s, new speed).
        self.changes: list[tuple[float, float, float]] = []

    @property
    def speed(self) -> float:
        """The speed the class runs at now (clock seconds per wall second)."""
        return self.clock.rate

    def __call__(self, now: float) -> None:
        last, self._last = self._last, now
        if last is None:
            return
        gap = now - last
        if gap <= self.limit_s or self.clock.rate <= self.floor:
            return
        before = self.clock.rate
        self.clock.rate = after = max(self.floor, before / 2)
        self.changes.append((self.session.class_time(now), gap, after))
        wall_ms = 1000 * self.watchdog_s / before
        self.session.emit(
            "slowed_down",
            f"this computer cannot keep up with {before:g}× speed (the suits went "
            f"{1000 * gap:.0f} ms of class time without a frame; their watchdog allows "
            f"{1000 * self.watchdog_s:.0f} ms, {wall_ms:.1f} ms of real time at {before:g}×): "
            f"slowed down to {after:g}×; the class skips nothing",
            speed=after,
            previous_speed=before,
            gap_ms=round(1000 * gap, 1),
        )
