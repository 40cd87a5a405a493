"""The simulated body over a whole class: force, fatigue, sensation and warnings.

Input is what the suits delivered, sampled on the engine's tick grid: the
peak current of every client's every channel per tick, with the program's
pulse width and frequency. The Ding model is stepped pulse by pulse while
anything is on, and in one exact step over quiet stretches. Everything is
vectorised over clients × channels; the instantaneous figures are computed
only on the entries that carry current, and the pulse loop runs in C when the
kernel can be built (`kernel.py`, `ding.c`: same operations, same order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from channels.layouts import SuitLayout
from channels.limits import CURRENT_DENSITY_MAX_MA_CM2
from channels.program import FloatArray
from sim.body.ding import DingMuscles
from sim.body.population import Population
from sim.body.thresholds import adaptation, cr10, recruitment

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
    recruiting = np.zeros(n_ticks, dtype=bool)  # ticks where any muscle is recruited
    stim = np.zeros(shape)
    recruited_time = np.zeros(shape)
    max_density = np.zeros(shape)
    client_rating = np.zeros((n_ticks, n_clients), dtype=np.float32)
    channel_rating = np.zeros(shape)
    by_pw = {pw: population.thresholds_mA(pw) for pw in np.unique(pulse_width_us) if pw > 0}
    # Entries without current (most of a class) recruit nothing, rate 0 and have
    # no density: everything is computed on the entries with current only.
    n_m = n_clients * n_ch
    flat_thresholds = {
        pw: tuple(np.broadcast_to(x, shape).reshape(-1) for x in th) for pw, th in by_pw.items()
    }
    contact_flat = np.broadcast_to(contact, shape).reshape(-1)
    area_contact = np.broadcast_to(area * contact, shape).reshape(-1)
    density_factor = np.sqrt(2.0 * pulse_width_us * 1e-6 * frequency_hz)
    stim_flat = stim.reshape(-1)
    for c0 in range(0, n_ticks, CHUNK_TICKS):
        c1 = min(n_ticks, c0 + CHUNK_TICKS)
        chunk = currents_mA[c0:c1].reshape(c1 - c0, n_m)
        on = chunk > 0
        idx = np.flatnonzero(on)
        if idx.size == 0:
            continue
        k, m = np.divmod(idx, n_m)
        cur = chunk.reshape(-1)[idx].astype(np.float64)
        on_count = np.cumsum(on, axis=0, dtype=np.int16)  # CHUNK_TICKS < 2**15
        stim_cum = stim_flat[m] + on_count.reshape(-1)[idx] * tick_s
        pws = pulse_width_us[c0:c1][k]
        r = np.zeros_like(cur)
        rating = np.zeros_like(cur)
        for pw, (sens, motor, tol) in flat_thresholds.items():
            sel = np.flatnonzero(pws == pw)
            if not sel.size:
                continue
            ms = m[sel]
            r[sel] = recruitment(cur[sel], motor[ms])
            tolerance = tol[ms] * adaptation(stim_cum[sel])
            rating[sel] = cr10(cur[sel] / contact_flat[ms], sens[ms], motor[ms], tolerance)
        recruit[c0:c1].reshape(-1)[idx] = r
        recruiting[c0 + k[r > 0]] = True
        by_client = np.zeros((c1 - c0) * n_clients)  # the highest rating of each tick, client
        np.maximum.at(by_client, k * n_clients + m // n_ch, rating)
        client_rating[c0:c1] = by_client.reshape(c1 - c0, n_clients)
        np.maximum.at(channel_rating.reshape(-1), m, rating)
        stim += on_count[-1].reshape(shape) * tick_s
        recruited = np.bincount(m[r > 0], minlength=n_m).reshape(shape)
        recruited_time += recruited * tick_s
        np.maximum.at(max_density.reshape(-1), m, cur * density_factor[c0:c1][k] / area_contact[m])

    def per_sec(a: np.ndarray) -> np.ndarray:
        if pad:
            a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), dtype=a.dtype)])
        out: np.ndarray = a.reshape(n_sec, per_second, *a.shape[1:]).max(axis=1)
        return out

    tl_levels = per_sec(currents_mA).astype(np.float64)
    tl_cr10 = per_sec(client_rating).astype(np.float64)
    requests = _requests(client_rating, population.tolerance_cr10, tick_s, clients)

    force = _force_and_fatigue(
        recruit, recruiting, tick_s, frequency_hz, population.strength, per_second, n_sec
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
        over = np.flatnonzero(rating[:, i] > tolerance[i])
        times = over * tick_s
        last = -np.inf
        j = 0
        while j < over.size:
            # jump to the first tick 30 s on (a few ticks early: the exact test decides)
            j += int(np.searchsorted(times[j:], last + REQUEST_GAP_S - 1.0))
            while j < over.size and not times[j] - last >= REQUEST_GAP_S:
                j += 1
            if j == over.size:
                break
            k = over[j]
            t = times[j]
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
    recruiting: np.ndarray,
    tick_s: float,
    frequency_hz: FloatArray,
    strength: FloatArray,
    per_second: int,
    n_sec: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    n_ticks, n_clients, n_ch = recruit.shape
    shape = (n_clients, n_ch)
    n_m = n_clients * n_ch
    muscles = DingMuscles(n_m)
    kernel = muscles.uses_kernel  # the pulse loop in C, else here
    a_rest = muscles.p.a_rest
    strength_flat = strength.reshape(-1)
    peak = np.zeros(n_clients * n_ch)
    fti = np.zeros(n_clients * n_ch)
    tl_force = np.zeros((n_sec, n_clients * n_ch))
    tl_fatigue = np.ones((n_sec, *shape))
    active = np.flatnonzero(recruiting)
    t_now = 0.0
    next_pulse = 0.0
    last_sec_at = np.array([-1], dtype=np.int64)  # the second of the last pulse
    # runs of consecutive active ticks
    runs = np.split(active, np.nonzero(np.diff(active) != 1)[0] + 1) if active.size else []
    frequency = frequency_hz.astype(np.float64)
    periods = np.divide(1.0, frequency, out=np.full(n_ticks, np.inf), where=frequency > 0)
    for run in runs:
        k0, k1 = int(run[0]), int(run[-1]) + 1
        start = k0 * tick_s
        if start > t_now:
            _quiet(muscles, start - t_now)
            t_now = start
        next_pulse = max(next_pulse, start)
        end = k1 * tick_s
        # The pulse loop only steps the muscles and keeps the force at each pulse
        # (mid-way between pulses for unfused twitches); what is made of those
        # forces (peaks, force-time integral, timeline) is computed per run.
        rec = recruit[k0:k1].reshape(k1 - k0, -1)
        masks = np.ascontiguousarray(rec > 0)
        run_periods = periods[k0:k1]
        max_pulses = int(np.ceil((end - next_pulse) / run_periods.min())) + 2
        forces = np.empty((max_pulses, n_m))
        ks_done = np.empty(max_pulses, dtype=np.int64)
        periods_done = np.empty(max_pulses)
        ks: list[int] = []
        pulse_periods: list[float] = []
        i = 0
        while next_pulse < end:
            if kernel:
                done, t_now, next_pulse = muscles.run_pulses(
                    (t_now, next_pulse, end),
                    run_periods,
                    masks,
                    (k0, k1, n_ticks, tick_s, per_second),
                    last_sec_at,
                    tl_fatigue,
                    (forces[i:], ks_done[i:], periods_done[i:]),
                )
                ks += ks_done[i : i + done].tolist()
                pulse_periods += periods_done[i : i + done].tolist()
                i += done
                if not next_pulse < end:
                    break
            # in numpy; with the kernel, a last pulse whose float clock lands on the next tick
            k = min(int(next_pulse / tick_s + 1e-9), n_ticks - 1)
            period = float(run_periods[k - k0]) if k < k1 else 1.0 / float(frequency_hz[k])
            muscles.step(next_pulse - t_now)
            t_now = next_pulse
            muscles.pulse(t_now, masks[k - k0] if k < k1 else recruit[k].reshape(-1) > 0)
            if period > 0.03:  # unfused twitches peak between pulses: sample mid-way
                muscles.step(period / 2)
                t_now += period / 2
            forces[i] = muscles.force
            ks.append(k)
            pulse_periods.append(period)
            i += 1
            sec = k // per_second
            if sec != last_sec_at[0]:
                tl_fatigue[sec] = (muscles.a / a_rest).reshape(shape)
                last_sec_at[0] = sec
            next_pulse += period
        if not ks:
            continue
        kk = np.array(ks)
        out = strength_flat * recruit[kk].reshape(i, n_m) * forces[:i]
        np.maximum(peak, out.max(axis=0), out=peak)
        # summed in pulse order (a cumulative sum runs in order), as it always was
        # (numpy reduces along the first axis row after row)
        fti[:] = np.add.reduce(np.vstack([fti, out * np.array(pulse_periods)[:, None]]), axis=0)
        secs = kk // per_second
        bounds = np.flatnonzero(np.diff(secs)) + 1
        for sec_rows, sec in zip(np.split(out, bounds), secs[np.r_[0, bounds]], strict=True):
            np.maximum(tl_force[sec], sec_rows.max(axis=0), out=tl_force[sec])
    total = n_ticks * tick_s
    if total > t_now:
        _quiet(muscles, total - t_now)
    muscles.settle_fatigue()
    # fatigue between active stretches recovers: fill the timeline forward with recovery
    tl_fatigue = _fill_recovery(tl_fatigue, recruiting, per_second, tick_s, muscles.p.tau_fat)
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
    tl: FloatArray, recruiting: np.ndarray, per_second: int, tick_s: float, tau_fat: float
) -> FloatArray:
    """Seconds with no stimulation: the fatigue ratio recovers towards 1 with tau_fat."""
    n_sec = tl.shape[0]
    active = np.zeros(n_sec, dtype=bool)
    idx = np.flatnonzero(recruiting) // per_second
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
