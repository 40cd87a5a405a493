"""The body beside a running class: samples what the suits deliver, and clients speak up.

Every tick it records each suit's applied output (0.5 mA codes) with the
program's pulse parameters; four times a second it rates how each client
feels and, above their tolerance, the client asks for less — an event the
trainer sees. After the class, `result()` runs the full body model on what
was recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from channels.layouts import SuitLayout
from sim.body.population import Population
from sim.body.simulate import REQUEST_GAP_S, BodyResult, simulate_body
from sim.body.thresholds import adaptation, cr10
from sim.suit import AnyFirmware

RATE_EVERY_S = 0.25


class BodyObserver:
    """Records delivered currents per tick and raises clients' requests live."""

    def __init__(
        self,
        firmwares: Sequence[AnyFirmware],
        population: Population,
        layout: SuitLayout,
        clients: list[str],
        first_session: list[bool],
        pulse: Callable[[], tuple[float, float]],
        on_request: Callable[[int, str, dict[str, Any]], None],
    ) -> None:
        self.firmwares = list(firmwares)
        self.population = population
        self.layout = layout
        self.clients = clients
        self.first_session = first_session
        self.pulse = pulse
        self.on_request = on_request
        self.codes: list[np.ndarray] = []
        self.pw: list[float] = []
        self.freq: list[float] = []
        self.t0: float | None = None
        self.tick_s: float | None = None
        self._stim = np.zeros(population.shape)
        #: This tick's applied currents (clients × channels), overwritten every tick.
        self._current = np.zeros((len(self.firmwares), len(layout)))
        self._last_t: float | None = None
        self._next_rating = 0.0
        self._asked = np.full(len(clients), -np.inf)

    def __call__(self, now: float) -> None:
        if self.t0 is None:
            self.t0 = now
        elif self.tick_s is None:
            self.tick_s = now - self.t0
        # rows copied into one buffer, rint for round, in-place add: the same values as
        # np.stack / np.round / +=, in a third of the time (this runs every tick)
        current = self._current
        for i, fw in enumerate(self.firmwares):
            current[i] = fw.applied_mA
        self.codes.append(np.rint(current * 2.0).astype(np.uint8))
        pw, f = self.pulse()
        self.pw.append(pw)
        self.freq.append(f)
        if self._last_t is not None:
            np.add(self._stim, (current > 0) * (now - self._last_t), out=self._stim)
        self._last_t = now
        if now >= self._next_rating and pw > 0:
            self._next_rating = now + RATE_EVERY_S
            self._rate(now, current, pw)

    def _rate(self, now: float, current: np.ndarray, pw: float) -> None:
        sens, motor, tol = self.population.thresholds_mA(pw)
        felt = current / np.maximum(self.population.contact, 1e-3)
        rating = cr10(felt, sens, motor, tol * adaptation(self._stim))
        for i, name in enumerate(self.clients):
            j = int(np.argmax(rating[i]))
            if (
                rating[i, j] > self.population.tolerance_cr10[i]
                and now - self._asked[i] >= REQUEST_GAP_S
            ):
                self._asked[i] = now
                self.on_request(
                    i,
                    f"{name} asks for less on {self.layout.names[j]} "
                    f"(feels CR10 {rating[i, j]:.1f})",
                    {"channel": self.layout.names[j], "cr10": round(float(rating[i, j]), 1)},
                )

    def result(self) -> BodyResult | None:
        """The body model over everything recorded (None before any tick)."""
        if not self.codes:
            return None
        tick = self.tick_s or 0.025
        currents = np.stack(self.codes).astype(np.float32) * 0.5
        return simulate_body(
            currents,
            tick,
            np.array(self.pw),
            np.array(self.freq),
            self.population,
            self.layout,
            self.clients,
            self.first_session,
        )
