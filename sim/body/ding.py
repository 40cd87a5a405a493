"""The Ding et al. (2003) force model with its fatigue extension, stepped exactly.

Theory of operation
-------------------
Per muscle (vectorised over any number of them), states: the pulse sum S,
the Ca²⁺-troponin factor CN, the force F, and the fatigue parameters A, Km
and tau1. A pulse at t_i adds R_i = 1 + (R0 - 1)·exp(-(t_i - t_{i-1})/tau_c)
to S (R0 = Km + 1.04). Between pulses S decays with tau_c and, since CN has
the same time constant, CN(t+h) = (CN + S·h/tau_c)·e with e = exp(-h/tau_c):
exact for any h. F relaxes exponentially towards A·x·tau with tau = tau1 +
tau2·x, x = CN/(Km + CN) taken at the step's midpoint: stable for any step.
The fatigue parameters follow dA/dt = -(A - A_rest)/tau_fat + alpha_A·F
(likewise Km, tau1), integrated with F held over the step.

Units are seconds and newtons; parameters are the human quadriceps values of
Ding 2003 (DESIGN.md). With them, 1 s trains without fatigue peak at about
166 N (10 Hz), 236 N (20 Hz), 289 N (50 Hz) and 311 N (100 Hz).
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from channels.program import FloatArray
from sim.body import kernel


@dataclass(frozen=True)
class DingParameters:
    """Model constants (seconds, newtons)."""

    tau_c: float = 0.020
    a_rest: float = 3009.0
    km_rest: float = 0.103
    tau1_rest: float = 0.050957
    tau2: float = 0.060
    alpha_a: float = -0.4  # s^-2
    alpha_km: float = 1.9e-5  # s^-1 N^-1
    alpha_tau1: float = 2.1e-5  # N^-1
    tau_fat: float = 127.0


QUADRICEPS = DingParameters()
#: The fatigue parameters move on minutes; they are updated this often, s.
FATIGUE_STEP_S = 0.05


class DingMuscles:
    """Force and fatigue of `n` muscles driven by pulse trains.

    Stepped pulse by pulse over a whole class: by the C kernel (`kernel.py`)
    when it can be built, else by numpy writing into arrays allocated once
    (same operations, same order as the equations above either way). Read
    `force` after a step, do not keep it: numpy replaces it at each step.
    """

    def __init__(
        self,
        n: int,
        params: DingParameters = QUADRICEPS,
        fatigue: bool = True,
        use_kernel: bool = True,
    ) -> None:
        self.p = params
        self.fatigue = fatigue
        self._sc = np.zeros((2, n))  # S and CN decay together: one multiply for both
        self.s = self._sc[0]
        self.cn = self._sc[1]
        self.force = np.zeros(n)
        self._force_next = np.zeros(n)
        self.a = np.full(n, params.a_rest)
        self.km = np.full(n, params.km_rest)
        self.tau1 = np.full(n, params.tau1_rest)
        self.last_pulse = np.full(n, -np.inf)
        self._f_sum = np.zeros(n)
        self._h_sum = 0.0
        self._r0_minus_1 = self.km + 1.04 - 1.0  # R0 - 1, changes with Km only
        self._b1 = np.empty(n)
        self._b2 = np.empty(n)
        self._b3 = np.empty(n)
        self._lib = kernel.library() if use_kernel else None
        self._state: Any = None
        if self._lib is not None:
            arrays: list[np.ndarray] = [self.s, self.cn, self.force, self.a, self.km, self.tau1]
            arrays += [self.last_pulse, self._f_sum, self._r0_minus_1]
            ptr = ctypes.POINTER(ctypes.c_double)
            self._state = ctypes.pointer(
                kernel.DingState(n, *(x.ctypes.data_as(ptr) for x in arrays))
            )

    @property
    def uses_kernel(self) -> bool:
        """Whether the C kernel steps these muscles (else numpy)."""
        return self._lib is not None

    def pulse(self, t: float, mask: np.ndarray | None = None) -> None:
        """A stimulation pulse at time `t` on the muscles in `mask` (all if None)."""
        if self._lib is not None:
            if mask is None:
                self._lib.ding_pulse(self._state, t, None, self.p.tau_c)
                return
            m = np.asarray(mask, dtype=np.bool_)
            if m.shape != self.s.shape:
                raise ValueError(f"a mask of {self.s.size} muscles, not {m.shape}")
            if not m.flags.c_contiguous:
                m = np.ascontiguousarray(m)
            self._lib.ding_pulse(self._state, t, m.ctypes.data, self.p.tau_c)
            return
        r = np.subtract(t, self.last_pulse, out=self._b1)  # the gap since the last pulse
        np.negative(r, out=r)
        r /= self.p.tau_c
        np.exp(r, out=r)
        r *= self._r0_minus_1
        r += 1.0
        if mask is None:
            self.s += r
            self.last_pulse[:] = t
        else:
            np.add(self.s, r, out=self.s, where=mask)
            np.copyto(self.last_pulse, t, where=mask)

    def pulse_at_address(self, t: float, mask_address: int) -> None:
        """`pulse(t, mask)` with the mask given as the address of n contiguous bools.

        Kernel only (check `uses_kernel`): the caller keeps the array alive and
        the right size; it saves a view and a check per pulse in a class's loop.
        """
        assert self._lib is not None
        self._lib.ding_pulse(self._state, t, mask_address, self.p.tau_c)

    def run_pulses(
        self,
        clock: tuple[float, float, float],
        periods: FloatArray,
        masks: np.ndarray,
        ticks: tuple[int, int, int, float, int],
        last_sec: np.ndarray,
        tl_fatigue: FloatArray,
        out: tuple[FloatArray, np.ndarray, FloatArray],
    ) -> tuple[int, float, float]:
        """The pulse loop of one run of ticks in C (kernel only; see ding.c's `ding_run`).

        clock: (t_now, next_pulse, end); periods (float64) and masks (bool,
        (ticks, n)) per tick of the run; ticks: (k0, k1, n_ticks, tick_s,
        per_second); last_sec: int64 [1], updated; out: forces (pulses, n),
        ticks (int64) and periods of the pulses done. Returns (pulses done,
        t_now, next_pulse).
        """
        assert self._lib is not None
        k0, k1, n_ticks, tick_s, per_second = ticks
        forces, ks, pulse_periods = out
        for a, kind in ((periods, np.float64), (masks, np.bool_), (last_sec, np.int64)):
            assert a.dtype == kind and a.flags.c_contiguous
        for a, kind in ((forces, np.float64), (ks, np.int64), (pulse_periods, np.float64)):
            assert a.dtype == kind and a.flags.c_contiguous
        assert tl_fatigue.dtype == np.float64 and tl_fatigue.flags.c_contiguous
        assert masks.shape == (k1 - k0, self.s.size) and periods.shape == (k1 - k0,)
        assert forces.shape[1:] == (self.s.size,) and len(ks) == len(pulse_periods) == len(forces)
        state = np.array([*clock, self._h_sum])
        p = self.p
        constants = (p.tau_c, p.tau2, p.a_rest, p.km_rest, p.tau1_rest, p.alpha_a, p.alpha_km)
        params = np.array([*constants, p.alpha_tau1, p.tau_fat, FATIGUE_STEP_S])
        done = self._lib.ding_run(
            self._state, state.ctypes.data, periods.ctypes.data, masks.ctypes.data,
            k0, k1, n_ticks, tick_s, per_second, last_sec.ctypes.data, tl_fatigue.ctypes.data,
            params.ctypes.data, self.fatigue, forces.ctypes.data, ks.ctypes.data,
            pulse_periods.ctypes.data, len(forces),
        )  # fmt: skip
        self._h_sum = float(state[3])
        return int(done), float(state[0]), float(state[1])

    def step(self, h: float) -> None:
        """Advance every muscle by `h` seconds with no pulse inside the step."""
        if h <= 0:
            return
        p = self.p
        e = math.exp(-h / p.tau_c)
        e_half = math.exp(-0.5 * h / p.tau_c)
        if self._lib is not None:
            c_half, c_full = 0.5 * h / p.tau_c, h / p.tau_c
            self._lib.ding_step(self._state, h, c_half, e_half, c_full, e, p.tau2, self.fatigue)
            if self.fatigue:
                self._h_sum += h
                if self._h_sum >= FATIGUE_STEP_S:
                    self.settle_fatigue()
            return
        x = np.multiply(self.s, 0.5 * h / p.tau_c, out=self._b1)
        x += self.cn
        x *= e_half  # CN at the step's midpoint
        np.add(self.km, x, out=self._b2)
        np.divide(x, self._b2, out=x)  # x = CN / (Km + CN)
        tau = np.multiply(x, p.tau2, out=self._b2)
        tau += self.tau1
        f_ss = np.multiply(self.a, x, out=self._b3)
        f_ss *= tau
        f_old = self.force
        f_new = np.subtract(f_old, f_ss, out=self._force_next)
        decay = np.divide(-h, tau, out=tau)
        np.exp(decay, out=decay)
        f_new *= decay
        f_new += f_ss
        self.force, self._force_next = f_new, f_old
        grow = np.multiply(self.s, h / p.tau_c, out=self._b1)
        self.cn += grow
        self._sc *= e
        if self.fatigue:
            # tau_fat is minutes long: fold the force in and update the fatigue
            # parameters every FATIGUE_STEP_S, exactly for the mean force held over it.
            mean = np.add(f_old, f_new, out=self._b1)
            mean *= 0.5
            mean *= h
            self._f_sum += mean
            self._h_sum += h
            if self._h_sum >= FATIGUE_STEP_S:
                self.settle_fatigue()

    def settle_fatigue(self) -> None:
        """Apply the fatigue accumulated since the last update."""
        h = self._h_sum
        if h <= 0:
            return
        p = self.p
        decay = math.exp(-h / p.tau_fat)
        if self._lib is not None:
            self._lib.ding_settle(
                self._state, h, decay, 1 - decay, p.a_rest, p.km_rest, p.tau1_rest,
                p.alpha_a, p.alpha_km, p.alpha_tau1, p.tau_fat,
            )  # fmt: skip
            self._h_sum = 0.0
            return
        f = self._f_sum / h
        # exact for F held over the interval: X -> X_ss + (X - X_ss)·exp(-h/tau_fat)
        self.a = self.a * decay + (p.a_rest + p.alpha_a * f * p.tau_fat) * (1 - decay)
        self.km = self.km * decay + (p.km_rest + p.alpha_km * f * p.tau_fat) * (1 - decay)
        self.tau1 = self.tau1 * decay + (p.tau1_rest + p.alpha_tau1 * f * p.tau_fat) * (1 - decay)
        self._r0_minus_1 = self.km + 1.04 - 1.0
        self._f_sum.fill(0.0)
        self._h_sum = 0.0


def train_peak_force(
    frequency_hz: float,
    duration_s: float = 1.0,
    dt: float = 1e-4,
    params: DingParameters = QUADRICEPS,
) -> float:
    """Peak force of one pulse train from rest, without fatigue (N)."""
    m = DingMuscles(1, params, fatigue=False)
    period = 1.0 / frequency_hz
    n_pulses = round(duration_s * frequency_hz)
    peak = 0.0
    for k in range(n_pulses):
        m.pulse(k * period)
        steps = max(1, round(period / dt))
        for _ in range(steps):
            m.step(period / steps)
            peak = max(peak, float(m.force[0]))
    for _ in range(int(0.3 / dt)):  # the force keeps rising briefly after the last pulse
        m.step(dt)
        peak = max(peak, float(m.force[0]))
    return peak


def fatigue_run(
    frequency_hz: float, on_s: float, off_s: float, cycles: int, substeps: int = 4
) -> FloatArray:
    """Peak force of each contraction of an on/off train (N), with fatigue."""
    m = DingMuscles(1)
    period = 1.0 / frequency_hz
    peaks = []
    t = 0.0
    for _ in range(cycles):
        peak = 0.0
        for _k in range(round(on_s * frequency_hz)):
            m.pulse(t)
            for _ in range(substeps):
                m.step(period / substeps)
                peak = max(peak, float(m.force[0]))
            t += period
        peaks.append(peak)
        for _ in range(int(off_s / 0.01)):
            m.step(0.01)
        t += off_s
    return np.array(peaks)
