"""Set intensities that never jump (S2), vectorised over clients × channels.

Theory of operation
-------------------
A trainer sets a *target* intensity (mA at relative level 1). The *set*
intensity the engine uses follows the target in steps of at most
`INTENSITY_STEP_MAX_MA`: upwards one step per `INTENSITY_RISE_STEP_S`,
downwards one step per tick. After a reconnect, a resume or an emergency
stop reset, `restart_from_zero` sets the set intensity to zero, so the client
ramps back up the same way. Targets are bounded by `max_target_mA` (device,
layout and client caps); the program-dependent S1 caps apply to the output.
"""

from __future__ import annotations

import numpy as np

from channels.limits import INTENSITY_RISE_STEP_S, INTENSITY_STEP_MAX_MA
from channels.program import FloatArray


class IntensityBoard:
    """Target and set intensities for every client and channel."""

    def __init__(self, targets_mA: FloatArray, max_target_mA: FloatArray) -> None:
        self.max_target_mA = np.asarray(max_target_mA, dtype=np.float64).copy()
        self.target_mA = np.minimum(np.asarray(targets_mA, dtype=np.float64), self.max_target_mA)
        self.set_mA = np.zeros_like(self.target_mA)
        self._next_rise = np.full_like(self.target_mA, -np.inf)

    def step(self, now: float) -> None:
        """Move every set intensity one step towards its target where its time has come."""
        diff = self.target_mA - self.set_mA
        rise = (diff > 0) & (now >= self._next_rise)
        if rise.any():  # the method, not np.any: a tick calls these 40 times a second
            self.set_mA[rise] += np.minimum(diff[rise], INTENSITY_STEP_MAX_MA)
            self._next_rise[rise] = now + INTENSITY_RISE_STEP_S
        fall = diff < 0
        if fall.any():
            self.set_mA[fall] -= np.minimum(-diff[fall], INTENSITY_STEP_MAX_MA)

    def hold_at_zero(self, clients: np.ndarray) -> None:
        """Keep the set intensity of these clients (a boolean mask) at zero."""
        if clients.any():
            self.set_mA[clients] = 0.0
            self._next_rise[clients] = -np.inf

    def restart_from_zero(self, client: int | None = None) -> None:
        """Set intensity to zero (one client, or all); it ramps back up to the target."""
        sel = slice(None) if client is None else client
        self.set_mA[sel] = 0.0
        self._next_rise[sel] = -np.inf
