"""The body model and the plan mode as they were before they were made fast (2026-12-02).

A frozen copy, kept only so that tests can check the fast code against it
(`tests/test_body_speed.py`): same equations, same step schedule, Python loop
over pulses with numpy over clients × channels. Do not optimise this file.
"""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from channels.layouts import SuitLayout
from channels.limits import (
    CURRENT_DENSITY_MAX_MA_CM2,
    INTENSITY_RISE_STEP_S,
    LEVEL_STEP_MA,
    level_codes,
    program_caps_mA,
)
from channels.program import FloatArray
from sim.body.population import Population
from sim.body.thresholds import adaptation, cr10, recruitment
from workouts.plan import Plan


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
    """Force and fatigue of `n` muscles driven by pulse trains."""

    def __init__(self, n: int, params: DingParameters = QUADRICEPS, fatigue: bool = True) -> None:
        self.p = params
        self.fatigue = fatigue
        self.s = np.zeros(n)
        self.cn = np.zeros(n)
        self.force = np.zeros(n)
        self.a = np.full(n, params.a_rest)
        self.km = np.full(n, params.km_rest)
        self.tau1 = np.full(n, params.tau1_rest)
        self.last_pulse = np.full(n, -np.inf)
        self._f_sum = np.zeros(n)
        self._h_sum = 0.0

    def pulse(self, t: float, mask: np.ndarray | None = None) -> None:
        """A stimulation pulse at time `t` on the muscles in `mask` (all if None)."""
        gap = t - self.last_pulse
        r = 1.0 + (self.km + 1.04 - 1.0) * np.exp(-gap / self.p.tau_c)
        if mask is None:
            self.s += r
            self.last_pulse[:] = t
        else:
            self.s += np.where(mask, r, 0.0)
            self.last_pulse = np.where(mask, t, self.last_pulse)

    def step(self, h: float) -> None:
        """Advance every muscle by `h` seconds with no pulse inside the step."""
        if h <= 0:
            return
        p = self.p
        e = math.exp(-h / p.tau_c)
        e_half = math.exp(-0.5 * h / p.tau_c)
        cn_mid = (self.cn + self.s * (0.5 * h / p.tau_c)) * e_half
        x = cn_mid / (self.km + cn_mid)
        tau = self.tau1 + p.tau2 * x
        f_ss = self.a * x * tau
        f_old = self.force
        self.force = f_ss + (f_old - f_ss) * np.exp(-h / tau)
        self.cn += self.s * (h / p.tau_c)
        self.cn *= e
        self.s *= e
        if self.fatigue:
            # tau_fat is minutes long: fold the force in and update the fatigue
            # parameters every FATIGUE_STEP_S, exactly for the mean force held over it.
            self._f_sum += 0.5 * (f_old + self.force) * h
            self._h_sum += h
            if self._h_sum >= FATIGUE_STEP_S:
                self.settle_fatigue()

    def settle_fatigue(self) -> None:
        """Apply the fatigue accumulated since the last update."""
        h = self._h_sum
        if h <= 0:
            return
        p = self.p
        f = self._f_sum / h
        decay = math.exp(-h / p.tau_fat)
        # exact for F held over the interval: X -> X_ss + (X - X_ss)·exp(-h/tau_fat)
        self.a = self.a * decay + (p.a_rest + p.alpha_a * f * p.tau_fat) * (1 - decay)
        self.km = self.km * decay + (p.km_rest + p.alpha_km * f * p.tau_fat) * (1 - decay)
        self.tau1 = self.tau1 * decay + (p.tau1_rest + p.alpha_tau1 * f * p.tau_fat) * (1 - decay)
        self._f_sum = np.zeros_like(self.force)
        self._h_sum = 0.0


TIMELINE_S = 1.0
QUIET_FORCE_N = 0.05
WEAK_FRACTION = 0.5
LONG_STIM_S = 20 * 60.0
FIRST_SESSION_MAX_CR10 = 7.0


@dataclass
class BodyResult:
    """Per client and channel figures, 1-second timelines, warnings and requests."""

    channels: list[str]
    clients: list[str]
    peak_force_N: FloatArray
    force_time_Ns: FloatArray
    fatigue_end: FloatArray  # A / A_rest at the end (1 = fresh)
    stim_s: FloatArray
    recruited_fraction: FloatArray  # share of stimulated time with muscle recruited
    max_density_mA_cm2: FloatArray
    max_cr10: FloatArray  # per client
    timeline_t: FloatArray
    timeline_levels_mA: FloatArray  # (T1, C, N) highest level in each second
    timeline_force_N: FloatArray  # (T1, C, N) highest force in each second
    timeline_fatigue: FloatArray  # (T1, C, N) A / A_rest
    timeline_cr10: FloatArray  # (T1, C) highest rating in each second
    requests: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: (C, N) the highest rating each channel alone reached (the client's is their maximum)
    max_cr10_channel: FloatArray | None = None

    def per_client(self) -> list[dict[str, Any]]:
        out = []
        for i, name in enumerate(self.clients):
            out.append(
                {
                    "client": name,
                    "max_cr10": round(float(self.max_cr10[i]), 2),
                    "channels": {
                        ch: {
                            "peak_force_N": round(float(self.peak_force_N[i, j]), 1),
                            "force_time_Ns": round(float(self.force_time_Ns[i, j]), 1),
                            "fatigue_end": round(float(self.fatigue_end[i, j]), 3),
                            "stim_s": round(float(self.stim_s[i, j]), 2),
                            "recruited_fraction": round(float(self.recruited_fraction[i, j]), 3),
                            "max_density_mA_cm2": round(float(self.max_density_mA_cm2[i, j]), 3),
                        }
                        for j, ch in enumerate(self.channels)
                    },
                }
            )
        return out

    def timelines(self) -> dict[str, Any]:
        return {
            "t": self.timeline_t.round(3).tolist(),
            "levels_mA": self.timeline_levels_mA.round(1).tolist(),
            "force_N": self.timeline_force_N.round(1).tolist(),
            "fatigue": self.timeline_fatigue.round(3).tolist(),
            "cr10": self.timeline_cr10.round(2).tolist(),
        }


CHUNK_TICKS = 2000
REQUEST_GAP_S = 30.0


def simulate_body(
    currents_mA: np.ndarray,
    tick_s: float,
    pulse_width_us: FloatArray,
    frequency_hz: FloatArray,
    population: Population,
    layout: SuitLayout,
    clients: list[str],
    first_session: list[bool] | None = None,
) -> BodyResult:
    """Run the body through a class. `currents_mA` is (ticks, clients, channels).

    Sensation, recruitment and density are instantaneous: computed for all
    ticks at once. Force and fatigue are stepped pulse by pulse where any
    muscle is recruited, and in single exact steps between.
    """
    n_ticks, n_clients, n_ch = currents_mA.shape
    shape = (n_clients, n_ch)
    area = np.array([c.area_cm2 for c in layout.channels])[None, :]
    contact = np.maximum(population.contact, 1e-3)
    per_second = max(1, round(TIMELINE_S / tick_s))
    n_sec = -(-n_ticks // per_second)
    pad = n_sec * per_second - n_ticks

    recruit = np.zeros((n_ticks, *shape), dtype=np.float32)
    stim = np.zeros(shape)
    recruited_time = np.zeros(shape)
    max_density = np.zeros(shape)
    client_rating = np.zeros((n_ticks, n_clients), dtype=np.float32)
    channel_rating = np.zeros(shape)
    by_pw = {pw: population.thresholds_mA(pw) for pw in np.unique(pulse_width_us) if pw > 0}
    for c0 in range(0, n_ticks, CHUNK_TICKS):
        c1 = min(n_ticks, c0 + CHUNK_TICKS)
        cur = currents_mA[c0:c1].astype(np.float64)
        on = cur > 0
        stim_cum = stim[None] + np.cumsum(on, axis=0) * tick_s
        pws = pulse_width_us[c0:c1]
        r = np.zeros_like(cur)
        rating = np.zeros_like(cur)
        for pw, (sens, motor, tol) in by_pw.items():
            sel = pws == pw
            if not sel.any():
                continue
            r[sel] = recruitment(cur[sel], motor)
            rating[sel] = cr10(cur[sel] / contact, sens, motor, tol * adaptation(stim_cum[sel]))
        recruit[c0:c1] = r
        client_rating[c0:c1] = rating.max(axis=2)
        np.maximum(channel_rating, rating.max(axis=0), out=channel_rating)
        stim += on.sum(axis=0) * tick_s
        recruited_time += ((r > 0) & on).sum(axis=0) * tick_s
        factor = np.sqrt(2.0 * pws * 1e-6 * frequency_hz[c0:c1])[:, None, None]
        np.maximum(max_density, (cur * factor / (area * contact)).max(axis=0), out=max_density)

    def per_sec(a: np.ndarray) -> np.ndarray:
        if pad:
            a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), dtype=a.dtype)])
        out: np.ndarray = a.reshape(n_sec, per_second, *a.shape[1:]).max(axis=1)
        return out

    tl_levels = per_sec(currents_mA).astype(np.float64)
    tl_cr10 = per_sec(client_rating).astype(np.float64)
    requests = _requests(client_rating, population.tolerance_cr10, tick_s, clients)

    force = _force_and_fatigue(
        recruit, tick_s, frequency_hz, population.strength, per_second, n_sec
    )
    peak, fti, tl_force, tl_fatigue, fatigue_end = force
    result = BodyResult(
        channels=list(layout.names),
        clients=list(clients),
        peak_force_N=peak,
        force_time_Ns=fti,
        fatigue_end=fatigue_end,
        stim_s=stim,
        recruited_fraction=np.where(stim > 0, recruited_time / np.maximum(stim, 1e-9), 0.0),
        max_density_mA_cm2=max_density,
        max_cr10=client_rating.max(axis=0).astype(np.float64) if n_ticks else np.zeros(n_clients),
        timeline_t=np.arange(n_sec) * per_second * tick_s,
        timeline_levels_mA=tl_levels,
        timeline_force_N=tl_force,
        timeline_fatigue=tl_fatigue,
        timeline_cr10=tl_cr10,
        requests=requests,
        max_cr10_channel=channel_rating,
    )
    result.warnings = body_warnings(result, first_session or [False] * n_clients)
    return result


def _requests(
    rating: np.ndarray, tolerance: FloatArray, tick_s: float, clients: list[str]
) -> list[dict[str, Any]]:
    """A client asks for less when the rating goes above their tolerance (at most every 30 s)."""
    out = []
    for i, name in enumerate(clients):
        over = np.nonzero(rating[:, i] > tolerance[i])[0]
        last = -np.inf
        for k in over:
            t = k * tick_s
            if t - last >= REQUEST_GAP_S:
                last = t
                out.append(
                    {
                        "t": round(float(t), 3),
                        "client": name,
                        "cr10": round(float(rating[k, i]), 1),
                        "message": f"{name} asks for less (feels CR10 {rating[k, i]:.1f})",
                    }
                )
    return sorted(out, key=lambda r: r["t"])


def _force_and_fatigue(
    recruit: np.ndarray,
    tick_s: float,
    frequency_hz: FloatArray,
    strength: FloatArray,
    per_second: int,
    n_sec: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    n_ticks, n_clients, n_ch = recruit.shape
    shape = (n_clients, n_ch)
    muscles = DingMuscles(n_clients * n_ch)
    a_rest = muscles.p.a_rest
    strength_flat = strength.reshape(-1)
    peak = np.zeros(n_clients * n_ch)
    fti = np.zeros(n_clients * n_ch)
    tl_force = np.zeros((n_sec, n_clients * n_ch))
    tl_fatigue = np.ones((n_sec, *shape))
    active = np.nonzero(recruit.reshape(n_ticks, -1).max(axis=1) > 0)[0]
    t_now = 0.0
    next_pulse = 0.0
    last_sec = -1
    # runs of consecutive active ticks
    runs = np.split(active, np.nonzero(np.diff(active) != 1)[0] + 1) if active.size else []
    for run in runs:
        k0, k1 = int(run[0]), int(run[-1]) + 1
        start = k0 * tick_s
        if start > t_now:
            _quiet(muscles, start - t_now)
            t_now = start
        next_pulse = max(next_pulse, start)
        end = k1 * tick_s
        while next_pulse < end:
            k = min(int(next_pulse / tick_s + 1e-9), n_ticks - 1)
            period = 1.0 / float(frequency_hz[k])
            muscles.step(next_pulse - t_now)
            t_now = next_pulse
            r = recruit[k].reshape(-1)
            muscles.pulse(t_now, r > 0)
            if period > 0.03:  # unfused twitches peak between pulses: sample mid-way too
                muscles.step(period / 2)
                t_now += period / 2
                np.maximum(peak, strength_flat * r * muscles.force, out=peak)
            out = strength_flat * r * muscles.force
            np.maximum(peak, out, out=peak)
            fti += out * period
            sec = k // per_second
            np.maximum(tl_force[sec], out, out=tl_force[sec])
            if sec != last_sec:
                tl_fatigue[sec] = (muscles.a / a_rest).reshape(shape)
                last_sec = sec
            next_pulse += period
    total = n_ticks * tick_s
    if total > t_now:
        _quiet(muscles, total - t_now)
    muscles.settle_fatigue()
    # fatigue between active stretches recovers: fill the timeline forward with recovery
    tl_fatigue = _fill_recovery(tl_fatigue, recruit, per_second, tick_s, muscles.p.tau_fat)
    return (
        peak.reshape(shape),
        fti.reshape(shape),
        tl_force.reshape(n_sec, *shape),
        tl_fatigue,
        (muscles.a / a_rest).reshape(shape),
    )


def _quiet(muscles: DingMuscles, h: float) -> None:
    """Advance through a stretch without pulses: let the force die out, then one step."""
    settle = min(h, 0.5)
    for _ in range(10):
        muscles.step(settle / 10)
    if h > settle:
        muscles.step(h - settle)


def _fill_recovery(
    tl: FloatArray, recruit: np.ndarray, per_second: int, tick_s: float, tau_fat: float
) -> FloatArray:
    """Seconds with no stimulation: the fatigue ratio recovers towards 1 with tau_fat."""
    n_sec = tl.shape[0]
    active = np.zeros(n_sec, dtype=bool)
    act_ticks = recruit.reshape(recruit.shape[0], -1).max(axis=1) > 0
    idx = np.nonzero(act_ticks)[0] // per_second
    active[idx] = True
    decay = math.exp(-per_second * tick_s / tau_fat)
    for s in range(1, n_sec):
        if not active[s]:
            tl[s] = 1.0 - (1.0 - tl[s - 1]) * decay
    return tl


def body_warnings(res: BodyResult, first_session: list[bool]) -> list[dict[str, Any]]:
    """What a trainer should know, in plain words."""
    out: list[dict[str, Any]] = []
    for i, name in enumerate(res.clients):
        for j, ch in enumerate(res.channels):
            if res.max_density_mA_cm2[i, j] > CURRENT_DENSITY_MAX_MA_CM2 + 1e-9:
                out.append(
                    {
                        "client": name,
                        "channel": ch,
                        "kind": "current_density",
                        "message": f"{name}, {ch}: current density reached "
                        f"{res.max_density_mA_cm2[i, j]:.2f} mA/cm² rms (above 2): "
                        "check the electrode's contact",
                    }
                )
            if res.stim_s[i, j] > 0 and res.recruited_fraction[i, j] < WEAK_FRACTION:
                out.append(
                    {
                        "client": name,
                        "channel": ch,
                        "kind": "too_weak",
                        "message": f"{name}, {ch}: too weak to recruit muscle "
                        f"{100 * (1 - res.recruited_fraction[i, j]):.0f} % of the "
                        "stimulated time: raise the intensity",
                    }
                )
            if res.stim_s[i, j] > LONG_STIM_S:
                out.append(
                    {
                        "client": name,
                        "channel": ch,
                        "kind": "long",
                        "message": f"{name}, {ch}: {res.stim_s[i, j] / 60:.1f} min of "
                        "stimulation (more than 20 min)",
                    }
                )
        if first_session[i] and res.max_cr10[i] > FIRST_SESSION_MAX_CR10:
            out.append(
                {
                    "client": name,
                    "channel": None,
                    "kind": "first_session_hard",
                    "message": f"{name}: first session rated CR10 {res.max_cr10[i]:.1f} "
                    "(above 7): first sessions must be light",
                }
            )
    return out


_CHUNK = 4096


@dataclass(frozen=True)
class ReferenceDelivery:
    """Currents on the tick grid, with each tick's pulse parameters."""

    tick_s: float
    currents_mA: np.ndarray  # (ticks, clients, channels), float32
    pulse_width_us: FloatArray  # (ticks,)
    frequency_hz: FloatArray  # (ticks,)


def planned_delivery(
    plan: Plan, targets_mA: FloatArray, client_caps_mA: FloatArray, rate_hz: float = 40.0
) -> ReferenceDelivery:
    """Currents the engine would send: `targets_mA` and `client_caps_mA` are (clients, channels)."""
    tick = 1.0 / rate_hz
    t: FloatArray = np.arange(int(np.ceil(plan.total_s * rate_hz)), dtype=np.float64) * tick
    levels = plan.levels(t)  # (T, N), float64 as in the engine
    n_t = t.size
    seg_idx = np.clip(
        np.searchsorted([s.start_s for s in plan.segments], t, side="right") - 1,
        0,
        len(plan.segments) - 1,
    )
    pw = np.zeros(n_t)
    freq = np.zeros(n_t)
    caps = np.zeros((len(plan.segments), *targets_mA.shape))
    channel_max = np.array([ch.max_mA for ch in plan.layout.channels])
    area = np.array([ch.area_cm2 for ch in plan.layout.channels])
    for i, seg in enumerate(plan.segments):
        p = seg.program
        if p is None:
            continue
        sel = seg_idx == i
        pw[sel], freq[sel] = p.pulse_width_us, p.frequency_hz
        caps[i] = program_caps_mA(
            channel_max_mA=channel_max,
            area_cm2=area,
            client_cap_mA=client_caps_mA,
            programs=[(p.frequency_hz, p.pulse_width_us)],
        )
    target = np.minimum(targets_mA, client_caps_mA)
    steps = np.floor(t / INTENSITY_RISE_STEP_S + 1e-9) + 1  # 1 mA each
    out = np.empty((n_t, *targets_mA.shape), dtype=np.float32)
    for a in range(0, n_t, _CHUNK):  # bounded memory: (chunk, clients, channels) at a time
        b = min(a + _CHUNK, n_t)
        set_mA = np.minimum(target[None, :, :], steps[a:b, None, None])
        requested = levels[a:b, None, :] * set_mA
        out[a:b] = level_codes(requested, caps[seg_idx[a:b]]) * LEVEL_STEP_MA
    return ReferenceDelivery(tick, out, pw, freq)
