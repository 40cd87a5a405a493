"""The fast body model and plan mode give the results of the code they replaced.

`tests/body_reference.py` is the body model and `planned_delivery` exactly as
they were before they were made fast; every figure the body model returns is
compared with it (tight tolerance: only the order of floating-point
operations may differ), on a plan that exercises every path: quiet stretches,
runs of pulses at 7 Hz (unfused twitches, sampled mid-way), 85 and 120 Hz,
three pulse widths, a loose electrode, requests and warnings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sim.body import DingMuscles, kernel, make_population, simulate_body
from sim.body.simulate import BodyResult
from sim.plan_mode import planned_delivery
from workouts import compile_workout, load_workout_text

from . import body_reference as ref

PROGRAMS = """\
name: Every path of the body model
programs:
  wide: {frequency_hz: 85, pulse_width_us: 450, impulse_s: 4, pause_s: 2}
  fast: {frequency_hz: 120, pulse_width_us: 377, impulse_s: 3, pause_s: 3, ramp_up_s: 1}
  slow: {frequency_hz: 7, pulse_width_us: 300, continuous: true, ramp_up_s: 1}
phases:
  - {kind: warmup, duration: 20s}
  - kind: suit
    exercises:
      - {name: Squat, duration: 30s, program: wide, channels: {quads: 1.0, abs: 0.7, shoulders: 1}}
      - {name: Row, duration: 30s, program: fast, channels: {lats: 1.0, arms: 0.8, glutes: 1}}
      - {name: Cardio, duration: 20s, program: slow, channels: {quads: 0.5, chest: 1.0}}
      - {name: Squat again, duration: 20s, program: wide, channels: {quads: 1.0, calves: 0.4}}
  - {kind: stretch, duration: 10s}
"""

FIELDS = (
    "peak_force_N",
    "force_time_Ns",
    "fatigue_end",
    "stim_s",
    "recruited_fraction",
    "max_density_mA_cm2",
    "max_cr10",
    "timeline_t",
    "timeline_levels_mA",
    "timeline_force_N",
    "timeline_fatigue",
    "timeline_cr10",
    "max_cr10_channel",
)


def _plan() -> Any:
    return compile_workout(load_workout_text(PROGRAMS))


def _inputs(n: int = 3) -> tuple[Any, np.ndarray, np.ndarray]:
    plan = _plan()
    n_ch = len(plan.layout)
    # three clients: gentle, firm (the caps bite), hard (asks for less)
    targets = np.stack([np.full(n_ch, mA) for mA in (35.0, 80.0, 118.0)][:n])
    caps = np.full((n, n_ch), 120.0)
    caps[1 % n, 3] = 50.0
    return plan, targets, caps


def _both(currents: np.ndarray, d: Any, population: Any, plan: Any) -> tuple[Any, Any]:
    names = [f"client {i + 1}" for i in range(currents.shape[1])]
    first = [True, False, True][: len(names)]
    args = (d.tick_s, d.pulse_width_us, d.frequency_hz, population, plan.layout, names, first)
    return simulate_body(currents, *args), ref.simulate_body(currents, *args)


def _assert_same(new: BodyResult, old: Any) -> None:
    for name in FIELDS:
        np.testing.assert_allclose(
            getattr(new, name), getattr(old, name), rtol=1e-9, atol=1e-9, err_msg=name
        )
    assert new.requests == old.requests
    assert new.warnings == old.warnings
    assert new.per_client() == old.per_client()
    assert new.timelines() == old.timelines()


def test_planned_delivery_is_the_reference_wire_codes() -> None:
    plan, targets, caps = _inputs()
    new = planned_delivery(plan, targets, caps)
    old = ref.planned_delivery(plan, targets, caps)
    assert new.tick_s == old.tick_s
    np.testing.assert_array_equal(new.currents_mA, old.currents_mA)
    np.testing.assert_array_equal(new.pulse_width_us, old.pulse_width_us)
    np.testing.assert_array_equal(new.frequency_hz, old.frequency_hz)
    assert new.currents_mA.dtype == old.currents_mA.dtype
    assert new.currents_mA.max() > 90 and (new.currents_mA == 0).mean() > 0.3


def test_the_c_kernel_is_built_and_used() -> None:
    """What the other tests compare is the C kernel (gcc comes with scripts/system-deps.sh)."""
    assert kernel.library() is not None
    assert DingMuscles(4).uses_kernel and not DingMuscles(4, use_kernel=False).uses_kernel


@pytest.fixture(params=["kernel", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of stepping the muscles: the C kernel, and numpy alone (no compiler)."""
    if request.param == "numpy":
        monkeypatch.setattr(kernel, "library", lambda: None)
    return str(request.param)


def test_the_body_model_gives_the_reference_figures(backend: str) -> None:
    assert DingMuscles(1).uses_kernel == (backend == "kernel")
    plan, targets, caps = _inputs()
    d = planned_delivery(plan, targets, caps)
    population = make_population(3, plan.layout, seed=4)
    population.contact[2, 0] = 0.05  # a loose electrode: density warning, felt harder
    new, old = _both(d.currents_mA, d, population, plan)
    _assert_same(new, old)
    # the comparison means something: force, fatigue, requests and warnings all occur
    assert old.peak_force_N.max() > 50 and old.fatigue_end.min() < 0.99
    assert old.requests and {w["kind"] for w in old.warnings} >= {
        "current_density",
        "first_session_hard",
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_the_body_model_gives_the_reference_figures_on_irregular_currents(
    seed: int, backend: str
) -> None:
    """Random on/off per channel and tick (runs of any length, gaps of one tick), 2 clients."""
    plan, targets, caps = _inputs(2)
    d = planned_delivery(plan, targets, caps)
    rng = np.random.default_rng(seed)
    keep = rng.random(d.currents_mA.shape) < 0.9
    hold = np.repeat(rng.random((d.currents_mA.shape[0] // 7 + 1, 1, 1)) < 0.8, 7, axis=0)
    currents = (d.currents_mA * keep * hold[: d.currents_mA.shape[0]]).astype(np.float32)
    population = make_population(2, plan.layout, seed=seed)
    d = replace(d, currents_mA=currents)
    new, old = _both(currents, d, population, plan)
    _assert_same(new, old)
    assert old.peak_force_N.max() > 20


def test_an_empty_class_and_a_silent_class_give_the_reference_figures() -> None:
    plan, targets, caps = _inputs(1)
    d = planned_delivery(plan, targets, caps)
    population = make_population(1, plan.layout, seed=0)
    silent = np.zeros_like(d.currents_mA[:400])
    d = replace(d, currents_mA=silent, pulse_width_us=d.pulse_width_us[:400])
    d = replace(d, frequency_hz=d.frequency_hz[:400])
    new, old = _both(silent, d, population, plan)
    _assert_same(new, old)


def test_without_a_compiler_the_body_model_runs_on_numpy(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel, "_build_dirs", lambda: [tmp_path / "build"])
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert kernel._build(kernel.SOURCE.read_bytes()) is None
    monkeypatch.setenv("SUIT_BODY_KERNEL", "numpy")
    assert kernel.library.__wrapped__() is None  # type: ignore[attr-defined]


def test_a_source_the_compiler_refuses_falls_back_and_a_good_one_is_built_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel, "_build_dirs", lambda: [tmp_path / "build"])
    assert kernel._build(b"this is not C\n") is None
    assert not list((tmp_path / "build").iterdir())  # no half-written library or source left
    source = kernel.SOURCE.read_bytes()
    built = kernel._build(source)
    assert built is not None and built.parent == tmp_path / "build"
    mtime = built.stat().st_mtime_ns
    assert kernel._build(source) == built and built.stat().st_mtime_ns == mtime
