"""What the engine commanded each channel, summed as the class runs (clients × channels).

Outputs are piecewise constant between ticks, so the sums are exact for what
was sent: charge of one phase of every pulse (µC), time above zero (s), the
highest output (mA) and contractions (rising edges from zero).
"""

from __future__ import annotations

import numpy as np

from channels.program import FloatArray


class DeliveryTotals:
    """Running totals per client and channel."""

    def __init__(self, n_clients: int, n_channels: int) -> None:
        shape = (n_clients, n_channels)
        self.charge_uC = np.zeros(shape)
        self.stim_s = np.zeros(shape)
        self.max_mA = np.zeros(shape)
        self.contractions = np.zeros(shape, dtype=np.int64)

    def hold(
        self, output_mA: FloatArray, dt: float, pulse_width_us: float, frequency_hz: float
    ) -> None:
        """`output_mA` was on for `dt` seconds with these pulse parameters."""
        if dt <= 0:
            return
        self.stim_s += (output_mA > 0) * dt
        self.charge_uC += output_mA * (pulse_width_us / 1000.0 * frequency_hz * dt)

    def change(self, before_mA: FloatArray, after_mA: FloatArray) -> None:
        """Outputs change from `before_mA` to `after_mA`."""
        self.contractions += (after_mA > 0) & (before_mA <= 0)
        np.maximum(self.max_mA, after_mA, out=self.max_mA)
