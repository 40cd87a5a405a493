"""The tick source: wake the engine on time, 40 times a second.

Trio's `sleep_until` wakes about 1 ms late (the event loop's timeouts are in
whole milliseconds). On the real clock the tick source sleeps until
`SPIN_MARGIN_S` before the deadline, then finishes with short blocking
sleeps, so ticks land well under a millisecond late while the engine still
yields to other tasks for most of the period. Under a virtual clock
(`MockClock`) it only uses Trio's sleep, since real time does not move it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

import trio
import trio.testing

SPIN_MARGIN_S = 0.0015
SPIN_STEP_S = 0.0001


class TickSource:
    """Sleeps until deadlines on Trio's clock, precisely on the real clock."""

    def __init__(self, precise: bool | None = None) -> None:
        self._precise = precise

    def _is_precise(self) -> bool:
        if self._precise is None:
            clock = trio.lowlevel.current_clock()
            self._precise = not isinstance(clock, trio.testing.MockClock)
        return self._precise

    async def sleep_until(self, deadline: float) -> None:
        if not self._is_precise():
            await trio.sleep_until(deadline)
            return
        await trio.sleep_until(deadline - SPIN_MARGIN_S)
        while (left := deadline - trio.current_time()) > 0:
            time.sleep(min(left, SPIN_STEP_S))  # noqa: ASYNC251 - bounded by SPIN_MARGIN_S



@contextmanager
def settled_memory() -> Iterator[None]:
    """Around a program's classes: collect once, then leave what exists out of later scans.

    Python's full (generation 2) collections scan every object alive; with a
    workout, a web server and their imports loaded that took 90–400 ms here,
    a pause that made a tick 95 ms late. With the set-up frozen (`gc.freeze`)
    they scan only what the classes allocate (`make bench`, `loaded`: max
    lateness 95 -> 5 ms). Unfrozen on the way out, so a longer-lived program
    (a test run) can still collect those objects later.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
