"""The workout designer's simulation: a workout tried on a group of simulated bodies, in words.

Theory of operation
-------------------
`run_designer` compiles the workout, computes what the engine would send to
N simulated clients (`planned_delivery`, the engine's own arithmetic) — the
seeded population at one set intensity, or the studio's real clients
(`Body`), each at their own last settings and first-session status — runs
the body model (`simulate_body`) in groups of clients so progress can be
reported, and turns the result into what a trainer reads (`advice`): per
client and body area whether the muscle is recruited and how it feels (Borg
CR10), then suggestions for the whole group ("Raise Lower back by about
8 mA"), each with the set intensity that makes it go away (`apply`).

A suggestion's amount is not a guess: for the one channel it names, the
channel's currents, recruitment and ratings are recomputed exactly as the
full simulation computes them (`channel_view`, pinned to `simulate_body` by
a test) for each candidate intensity, and the smallest change that meets the
rule is suggested. So applying it and running again makes it disappear.
For real clients the change is one amount on top of each one's own setting
(`shift_mA`), searched the same way.

`python -m sim.designer` reads one request as JSON on stdin and writes
progress lines then the result as JSON lines on stdout: the studio runs it
in a separate process (the body model holds the GIL).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from channels.limits import INTENSITY_RISE_STEP_S, LEVEL_STEP_MA, level_codes, program_caps_mA
from channels.program import FloatArray
from sim.body.population import Population, make_population
from sim.body.simulate import FIRST_SESSION_MAX_CR10, WEAK_FRACTION, BodyResult, simulate_body
from sim.body.thresholds import adaptation, cr10
from sim.plan_mode import planned_delivery
from suit_controller.clients import ClientSpec
from suit_controller.studio.words import area_label, in_trainer_order
from workouts.loader import load_workout_text
from workouts.plan import Plan, compile_workout

DEFAULT_INTENSITY_MA = 40.0
RATE_HZ = 40.0
#: Clients simulated per step (one progress report each).
GROUP = 10
#: Seconds per point of the pictures' timelines (sensation, force, fatigue).
PICTURE_S = 5
#: Seconds per point of a client's levels.
LEVELS_S = 10

#: Borg CR10 anchors, highest first: the words a rating is read as.
CR10_WORDS = (
    (10.0, "maximal"),
    (7.0, "very strong"),
    (5.0, "strong"),
    (3.0, "moderate"),
    (2.0, "weak"),
    (1.0, "very weak"),
    (0.3, "barely felt"),
    (0.0, "nothing"),
)

Progress = Callable[[float, str], None]


def feels(rating: float) -> str:
    """A CR10 rating in words ("strong")."""
    for floor, words in CR10_WORDS:
        if rating >= floor:
            return words
    return "nothing"


@dataclass(frozen=True)
class Body:
    """One of the studio's real clients, as the records know them, to try a workout on.

    `intensity_mA`: their set intensity per channel at the end of their last
    real session (their calibration); `first_session`: they have not trained
    yet (the first-session cap and the CR10 7 limit hold for them). `seed`
    draws their simulated body (thresholds, tolerance, strength), the same
    for the same client in every try-out.
    """

    name: str
    first_session: bool
    intensity_mA: tuple[tuple[str, float], ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Group:
    """Who the workout is tried on: N seeded simulated clients, or the studio's real clients.

    Seeded: `clients` of the population drawn with `seed`, all first session or
    all experienced, every channel at `intensity_mA` (a channel's own, else its
    group's, else 40 mA). Real (`bodies` given): each client at their own
    calibration (a channel they have none for: as for the seeded ones), with
    `shift_mA` added to everyone's set intensity of an area (what applying a
    suggestion for them does).
    """

    clients: int = 8
    first_session: bool = False
    seed: int = 0
    intensity_mA: tuple[tuple[str, float], ...] = ()
    bodies: tuple[Body, ...] = ()
    shift_mA: tuple[tuple[str, float], ...] = ()

    @property
    def size(self) -> int:
        """How many clients the workout is tried on."""
        return len(self.bodies) if self.bodies else self.clients

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.bodies] or [f"Client {i + 1}" for i in range(self.clients)]

    @property
    def first_sessions(self) -> list[bool]:
        """Per client: is it their first session."""
        return [b.first_session for b in self.bodies] or [self.first_session] * self.clients

    def targets(self, plan: Plan) -> dict[str, float]:
        """The set intensity of every channel: a channel's own, else its group's, else 40 mA."""
        given = dict(self.intensity_mA)
        out = {}
        for ch in plan.layout.channels:
            fallback = given.get(ch.group.value, DEFAULT_INTENSITY_MA)
            out[ch.name] = float(given.get(ch.name, fallback))
        return out

    def client_targets(self, plan: Plan) -> FloatArray:
        """(C, N) set intensities: the seeded group's, or each real client's own, shifted."""
        base = self.targets(plan)
        if not self.bodies:
            row = np.array([base[n] for n in plan.layout.names])
            return np.tile(row, (self.clients, 1))
        shift = dict(self.shift_mA)
        out = np.zeros((len(self.bodies), len(plan.layout)))
        for i, body in enumerate(self.bodies):
            own = dict(body.intensity_mA)
            for j, ch in enumerate(plan.layout.channels):
                add = shift.get(ch.name, shift.get(ch.group.value, 0.0))
                out[i, j] = max(0.0, own.get(ch.name, base[ch.name]) + add)
        return out

    def population(self, plan: Plan) -> Population:
        """The simulated bodies: the seeded population, or one seeded body per real client."""
        if not self.bodies:
            return make_population(self.clients, plan.layout, self.seed)
        return population_concat([make_population(1, plan.layout, b.seed) for b in self.bodies])


def run_designer(
    text: str, group: Group, progress: Progress | None = None, *, source: str = "workout"
) -> dict[str, Any]:
    """Try `text` (workout YAML) on `group`: the report's data (words first, then pictures)."""
    say = progress or (lambda _f, _s: None)
    t0 = time.perf_counter()
    plan = compile_workout(load_workout_text(text, source=source))
    layout = plan.layout
    names = group.names
    firsts = group.first_sessions
    targets = group.client_targets(plan)
    caps = np.stack(
        [ClientSpec(n, first_session=f).caps(layout) for n, f in zip(names, firsts, strict=True)]
    )
    say(0.05, "what the suits would send")
    delivery = planned_delivery(plan, targets, caps, RATE_HZ)
    population = group.population(plan)
    n = group.size
    parts: list[BodyResult] = []
    for a in range(0, n, GROUP):
        b = min(a + GROUP, n)
        say(0.1 + 0.8 * a / n, f"simulating clients {a + 1}–{b} of {n}")
        parts.append(
            simulate_body(
                delivery.currents_mA[:, a:b],
                delivery.tick_s,
                delivery.pulse_width_us,
                delivery.frequency_hz,
                population_slice(population, a, b),
                layout,
                names[a:b],
                firsts[a:b],
            )
        )
    result = merge(parts)
    say(0.92, "writing the report")
    words = advice(plan, result, population, targets, caps, group)
    doc = {
        "workout": plan.workout.name,
        "group": {"clients": n, "first_session": group.first_session,
                  "seed": group.seed, "intensity_mA": group.targets(plan),
                  "studio_clients": [
                      {"name": b.name, "first_session": b.first_session,
                       "calibrated": [area_label(c) for c in in_trainer_order(
                           [c for c, _ in b.intensity_mA if c in layout.names])],
                       "says": f"{b.name}: " + ("first session" if b.first_session else
                               "has trained before") + ", "
                               + (f"set intensities of the last session on "
                                  f"{sum(c in layout.names for c, _ in b.intensity_mA)} areas"
                                  if b.intensity_mA else "no set intensities on record yet")}
                      for b in group.bodies],
                  "shift_mA": dict(group.shift_mA)},
        "channels": [{"channel": c, "label": area_label(c)} for c in layout.names],
        "segments": [
            {"kind": s.kind.value, "name": s.name, "start_s": s.start_s, "end_s": s.end_s}
            for s in plan.segments
        ],
        "total_s": plan.total_s,
        **words,
        "pictures": pictures(result),
    }  # fmt: skip
    doc["compute_s"] = round(time.perf_counter() - t0, 3)
    say(1.0, "done")
    return doc


def population_slice(p: Population, a: int, b: int) -> Population:
    """Clients a..b-1 of a population."""
    return replace(
        p,
        sensory_rheobase_mA=p.sensory_rheobase_mA[a:b],
        motor_rheobase_mA=p.motor_rheobase_mA[a:b],
        pain_rheobase_mA=p.pain_rheobase_mA[a:b],
        strength=p.strength[a:b],
        tolerance_cr10=p.tolerance_cr10[a:b],
        contact=p.contact[a:b],
    )


def population_concat(parts: list[Population]) -> Population:
    """Populations one after the other (clients in order)."""
    first = parts[0]

    def cat(name: str) -> Any:
        return np.concatenate([getattr(p, name) for p in parts], axis=0)

    return replace(
        first,
        sensory_rheobase_mA=cat("sensory_rheobase_mA"),
        motor_rheobase_mA=cat("motor_rheobase_mA"),
        pain_rheobase_mA=cat("pain_rheobase_mA"),
        strength=cat("strength"),
        tolerance_cr10=cat("tolerance_cr10"),
        contact=cat("contact"),
    )


def merge(parts: list[BodyResult]) -> BodyResult:
    """Body results of groups of clients as one (clients in order)."""
    first = parts[0]

    def cat(name: str, axis: int) -> Any:
        return np.concatenate([getattr(p, name) for p in parts], axis=axis)

    return BodyResult(
        channels=first.channels,
        clients=[c for p in parts for c in p.clients],
        peak_force_N=cat("peak_force_N", 0),
        force_time_Ns=cat("force_time_Ns", 0),
        fatigue_end=cat("fatigue_end", 0),
        stim_s=cat("stim_s", 0),
        recruited_fraction=cat("recruited_fraction", 0),
        max_density_mA_cm2=cat("max_density_mA_cm2", 0),
        max_cr10=cat("max_cr10", 0),
        timeline_t=first.timeline_t,
        timeline_levels_mA=cat("timeline_levels_mA", 1),
        timeline_force_N=cat("timeline_force_N", 1),
        timeline_fatigue=cat("timeline_fatigue", 1),
        timeline_cr10=cat("timeline_cr10", 1),
        requests=sorted((r for p in parts for r in p.requests), key=lambda r: r["t"]),
        warnings=[w for p in parts for w in p.warnings],
        max_cr10_channel=cat("max_cr10_channel", 0),
    )


# -- one channel, exactly as the simulation sees it ---------------------------------------


@dataclass(frozen=True)
class ChannelView:
    """One channel for every client at a set intensity: recruited share, highest rating."""

    recruited_fraction: FloatArray  # (C,)
    max_cr10: FloatArray  # (C,)
    worst_tick: FloatArray  # (C,) the tick of the highest rating


def channel_view(
    plan: Plan,
    j: int,
    set_mA: float | FloatArray,
    caps: FloatArray,
    population: Population,
    rate_hz: float = RATE_HZ,
    *,
    ratings: bool = True,
) -> ChannelView:
    """Channel `j` of every client with its set intensity at `set_mA` (caps: (C, N)).

    `set_mA`: one intensity for everyone, or each client's own ((C,)).

    Only the ticks where the plan asks for anything are computed (nothing is
    sent, felt or counted in the others); `ratings=False` skips the CR10.
    """
    tick = 1.0 / rate_hz
    n_t = int(np.ceil(plan.total_s * rate_hz))
    t_all = np.arange(n_t, dtype=np.float64) * tick
    levels_all = plan.levels(t_all)[:, j]
    ticks = np.nonzero(levels_all > 0)[0]
    t, levels = t_all[ticks], levels_all[ticks]
    starts = [s.start_s for s in plan.segments]
    seg_idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(plan.segments) - 1)
    ch = plan.layout.channels[j]
    n_c = caps.shape[0]
    seg_caps = np.zeros((len(plan.segments), n_c))
    pw = np.zeros(t.size)
    for i, seg in enumerate(plan.segments):
        p = seg.program
        if p is None:
            continue
        pw[seg_idx == i] = p.pulse_width_us
        seg_caps[i] = program_caps_mA(
            channel_max_mA=np.array([ch.max_mA]),
            area_cm2=np.array([ch.area_cm2]),
            client_cap_mA=caps[:, j : j + 1],
            programs=[(p.frequency_hz, p.pulse_width_us)],
        )[:, 0]
    target = np.minimum(np.maximum(set_mA, 0.0), caps[:, j])  # (C,)
    steps = np.floor(t / INTENSITY_RISE_STEP_S + 1e-9) + 1
    set_now = np.minimum(target[None, :], steps[:, None])
    cur = (
        (level_codes(levels[:, None] * set_now, seg_caps[seg_idx]) * LEVEL_STEP_MA)
        .astype(np.float32)
        .astype(np.float64)
    )  # the float32 of the delivery, as the simulation reads it
    on = cur > 0
    contact = np.maximum(population.contact[:, j], 1e-3)
    recruited = np.zeros(n_c)
    rating = np.zeros_like(cur) if ratings else np.zeros((1, n_c))
    stim_cum = np.cumsum(on, axis=0) * tick if ratings else None
    for width in np.unique(pw):
        if width <= 0:
            continue
        sens, motor, tol = (a[:, j] for a in population.thresholds_mA(float(width)))
        sel = pw == width
        recruited += ((cur[sel] > motor[None, :]) & on[sel]).sum(axis=0)
        if stim_cum is not None:
            rating[sel] = cr10(cur[sel] / contact, sens, motor, tol * adaptation(stim_cum[sel]))
    stim = on.sum(axis=0)
    fraction = np.where(stim > 0, recruited / np.maximum(stim, 1), 0.0)
    if not t.size:  # the plan never asks anything of this channel
        return ChannelView(fraction, np.zeros(n_c), np.zeros(n_c))
    worst = t[rating.argmax(axis=0)] if ratings else np.zeros(n_c)
    return ChannelView(fraction, rating.max(axis=0), worst)


def _too_weak(v: ChannelView, stimulated: FloatArray) -> int:
    return int(((stimulated > 0) & (v.recruited_fraction < WEAK_FRACTION)).sum())


def _limits(population: Population, first_sessions: list[bool]) -> FloatArray:
    """The rating each client must stay at or under: 7 in a first session, else their tolerance."""
    tol = population.tolerance_cr10
    first = np.array(first_sessions, dtype=bool)
    capped: FloatArray = np.where(first, np.minimum(tol, FIRST_SESSION_MAX_CR10), tol)
    return capped


def advice(
    plan: Plan,
    res: BodyResult,
    population: Population,
    targets: FloatArray,
    caps: FloatArray,
    group: Group,
    *,
    rate_hz: float = RATE_HZ,
) -> dict[str, Any]:
    """Per client and body area in words, then the group's suggestions (each with `apply`)."""
    channels = list(res.channels)
    order = in_trainer_order(channels)
    per_ch = res.max_cr10_channel
    assert per_ch is not None
    limit = _limits(population, group.first_sessions)
    clients = []
    for i, name in enumerate(res.clients):
        areas = []
        for ch in order:
            j = channels.index(ch)
            if res.stim_s[i, j] <= 0:
                continue
            rating = float(per_ch[i, j])
            recruits = bool(res.recruited_fraction[i, j] >= WEAK_FRACTION)
            areas.append({
                "channel": ch,
                "label": area_label(ch),
                "recruits": recruits,
                "recruited_pct": round(100 * float(res.recruited_fraction[i, j])),
                "cr10": round(rating, 1),
                "feels": feels(rating),
                "too_strong": rating > float(limit[i]) + 1e-9,
                "says": (f"{area_label(ch)}: "
                         + ("works the muscle" if recruits else "too weak to work the muscle")
                         + f"; feels {feels(rating)} (CR10 {rating:.1f})"),
            })  # fmt: skip
        clients.append({"client": name, "max_cr10": round(float(res.max_cr10[i]), 1),
                        "feels": feels(float(res.max_cr10[i])), "areas": areas})  # fmt: skip
    suggestions = []
    n = len(res.clients)
    half = math.ceil(n / 2)
    firsts = np.array(group.first_sessions, dtype=bool)
    shift = dict(group.shift_mA)
    for ch in order:
        j = channels.index(ch)
        stimulated = res.stim_s[:, j]
        if not (stimulated > 0).any():
            continue
        base = targets[:, j]  # each client's set intensity of the area
        now = float(base[0])
        top = float(caps[:, j].max())
        weak = int(((stimulated > 0) & (res.recruited_fraction[:, j] < WEAK_FRACTION)).sum())
        over = per_ch[:, j] > limit + 1e-9
        label = area_label(ch)
        if group.bodies:  # each real client keeps their own setting: a change is for everyone
            group_key = plan.layout.channels[j].group.value
            had = float(shift.get(ch, shift.get(group_key, 0.0)))
            lo_mA, hi_mA = float(base.min()), float(base.max())
            span = f"{lo_mA:g} mA" if lo_mA == hi_mA else f"{lo_mA:g}–{hi_mA:g} mA"
            to_words = f" on top of each client's own setting (now {span})"
            field, start = "shift_mA", had
        else:
            to_words = ""
            field, start = "intensity_mA", now

        if over.any():
            d = _search_down(plan, j, base, caps, population, limit, rate_hz)
            view = channel_view(plan, j, base, caps, population, rate_hz)
            where = _exercise_at(plan, float(view.worst_tick[int(np.argmax(view.max_cr10))]))
            who = int(over.sum())
            if firsts[over].all():
                text = (
                    f"'{where}' will feel too strong for a first session on {label} "
                    f"({who} of {n} above CR10 7): lower {label} by about {-d:g} mA{to_words}"
                )
            else:
                text = (
                    f"{label} will feel too strong for {who} of {n} clients in '{where}' "
                    f"(they ask for less): lower {label} by about {-d:g} mA{to_words}"
                )
            suggestions.append(
                _suggestion("lower", ch, label, text, now, {"channel": ch, field: start + d}, who)
            )
        elif weak >= half:
            up = _search_up(plan, j, base, top, caps, population, stimulated, half, rate_hz)
            if up is None:
                text = (
                    f"{label} stays too weak to work the muscle for {weak} of {n} clients "
                    f"even at the most the suit allows ({top:g} mA): give the area more "
                    "weight in the exercises, or wet the pads"
                )
                suggestions.append(_suggestion("weak", ch, label, text, now, None, weak))
            else:
                to = to_words or f" (to {now + up:g} mA)"
                text = (
                    f"Raise {label} by about {up:g} mA{to}: "
                    f"now it is too weak to work the muscle for {weak} of {n} clients"
                )
                suggestions.append(
                    _suggestion(
                        "raise", ch, label, text, now, {"channel": ch, field: start + up}, weak
                    )
                )
    return {"clients": clients, "suggestions": suggestions,
            "requests": res.requests, "warnings": res.warnings}  # fmt: skip


def _suggestion(
    kind: str,
    ch: str,
    label: str,
    text: str,
    now: float,
    apply: dict[str, Any] | None,
    clients: int,
) -> dict[str, Any]:
    """`apply`: what to send again for the suggestion to hold (`intensity_mA` or `shift_mA`)."""
    return {
        "id": f"{kind}:{ch}",
        "kind": kind,
        "channel": ch,
        "label": label,
        "text": text,
        "clients": clients,
        "from_mA": now,
        "apply": apply,
    }


def _search_up(
    plan: Plan,
    j: int,
    base: FloatArray,
    top: float,
    caps: FloatArray,
    population: Population,
    stimulated: FloatArray,
    half: int,
    rate_hz: float,
) -> float | None:
    """The fewest whole mA added to `base` at which fewer than half the clients are too weak."""

    def weak(d: int) -> int:
        view = channel_view(plan, j, base + d, caps, population, rate_hz, ratings=False)
        return _too_weak(view, stimulated)

    lo, hi = 0, math.ceil(top - float(base.min()))
    if hi <= lo or weak(hi) >= half:
        return None
    while hi - lo > 1:  # too weak at lo, fine at hi
        mid = (lo + hi) // 2
        if weak(mid) >= half:
            lo = mid
        else:
            hi = mid
    return float(hi)


def _search_down(
    plan: Plan,
    j: int,
    base: FloatArray,
    caps: FloatArray,
    population: Population,
    limit: FloatArray,
    rate_hz: float,
) -> float:
    """The fewest whole mA taken from `base` (a negative amount) for no rating above its limit."""

    def fine(d: int) -> bool:
        view = channel_view(plan, j, base + d, caps, population, rate_hz)
        return bool((view.max_cr10 <= limit + 1e-9).all())

    lo, hi = -math.ceil(float(base.max())), 0  # fine at lo (nothing felt), too strong at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fine(mid):
            lo = mid
        else:
            hi = mid
    return float(lo)


def _exercise_at(plan: Plan, t: float) -> str:
    seg = plan.segment_at(t)
    return seg.name if seg is not None else "the class"


def pictures(res: BodyResult) -> dict[str, Any]:
    """The timelines the report draws: sensation per client, force and fatigue per area, levels."""

    def every(a: FloatArray, k: int) -> FloatArray:
        n = a.shape[0] // k * k
        if n == 0:
            return a
        head: FloatArray = a[:n].reshape(n // k, k, *a.shape[1:]).max(axis=1)
        return head

    step = PICTURE_S
    cr = every(res.timeline_cr10, step)  # (T, C)
    force = every(res.timeline_force_N, step).mean(axis=1)  # (T, N)
    fatigue = every(res.timeline_fatigue, step).mean(axis=1)
    levels = every(res.timeline_levels_mA, LEVELS_S)  # (T, C, N)
    return {
        "step_s": step,
        "levels_step_s": LEVELS_S,
        "cr10": cr.T.round(1).tolist(),  # per client
        "force_N": force.T.round(1).tolist(),  # per channel, mean of the group
        "fatigue": fatigue.T.round(3).tolist(),
        "levels_mA": levels.transpose(1, 2, 0).round(1).tolist(),  # per client, channel
    }


def _pairs(d: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    return tuple((str(k), float(v)) for k, v in d.items())


def group_of(request: dict[str, Any]) -> Group:
    """The group a request (the studio's, as JSON) asks for: seeded, or its `bodies`."""
    bodies = tuple(
        Body(str(b["name"]), bool(b["first_session"]), _pairs(b.get("intensity_mA", {})),
             int(b.get("seed", 0)))
        for b in request.get("bodies", [])
    )  # fmt: skip
    return Group(
        int(request["clients"]),
        bool(request["first_session"]),
        int(request["seed"]),
        _pairs(request.get("intensity_mA", {})),
        bodies,
        _pairs(request.get("shift_mA", {})),
    )


def main() -> None:
    """One run: a JSON request on stdin; progress and the result as JSON lines on stdout."""
    request = json.loads(sys.stdin.read())
    group = group_of(request)

    def progress(fraction: float, doing: str) -> None:
        print(json.dumps({"progress": round(fraction, 3), "doing": doing}), flush=True)

    try:
        doc = run_designer(request["yaml"], group, progress)
    except Exception as e:  # a worker process: every failure is reported, never a traceback
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
    print(json.dumps({"result": doc}), flush=True)


if __name__ == "__main__":
    main()
