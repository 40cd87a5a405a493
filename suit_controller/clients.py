"""A client in a class: who wears which suit, with what intensities and caps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from channels.layouts import SuitLayout
from channels.limits import DEVICE_MAX_MA, FIRST_SESSION_CAP_MA
from channels.muscles import ABDOMINAL_GROUPS
from channels.program import FloatArray


@dataclass(frozen=True)
class ClientSpec:
    """A client's settings for one class.

    `intensity_mA`: the starting target per channel name (or one value for all).
    `cap_mA`: the client's own cap on every channel. A first session lowers
    the cap to FIRST_SESSION_CAP_MA (S5); `abdominal_off` (ate less than 1.5 h
    ago) keeps abdominal channels at zero.
    """

    name: str
    intensity_mA: float | dict[str, float] = 30.0
    cap_mA: float = DEVICE_MAX_MA
    first_session: bool = False
    abdominal_off: bool = False
    trainer: str | None = None
    notes: tuple[str, ...] = field(default=())

    def caps(self, layout: SuitLayout) -> FloatArray:
        """Per-channel cap from this client (before the program-dependent limits)."""
        cap = min(self.cap_mA, FIRST_SESSION_CAP_MA) if self.first_session else self.cap_mA
        out = np.array([min(cap, ch.max_mA, DEVICE_MAX_MA) for ch in layout.channels])
        if self.abdominal_off:
            for i, ch in enumerate(layout.channels):
                if ch.group in ABDOMINAL_GROUPS:
                    out[i] = 0.0
        return out

    def targets(self, layout: SuitLayout) -> FloatArray:
        """Starting target intensities per channel, mA."""
        if isinstance(self.intensity_mA, dict):
            return np.array([float(self.intensity_mA.get(n, 0.0)) for n in layout.names])
        return np.full(len(layout), float(self.intensity_mA))
