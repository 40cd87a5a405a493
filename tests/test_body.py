"""The simulated body against published figures, and its warnings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from channels import DEFAULT_LAYOUT
from sim.body import DingMuscles, fatigue_run, make_population, simulate_body, train_peak_force
from sim.body.thresholds import (
    MOTOR_CHRONAXIE_US,
    adaptation,
    contact_impedance_ohm,
    cr10,
    recruitment,
    threshold_mA,
)

from .simclass_helpers import QUADS


@pytest.mark.parametrize(("hz", "newtons"), [(10, 166), (20, 236), (50, 289), (100, 311)])
def test_ding_peak_force_of_1s_trains_matches_the_published_figures(
    hz: int, newtons: float
) -> None:
    assert train_peak_force(hz) == pytest.approx(newtons, rel=0.02)


def test_threshold_at_the_chronaxie_is_twice_the_rheobase() -> None:
    assert threshold_mA(8.0, MOTOR_CHRONAXIE_US, MOTOR_CHRONAXIE_US) == pytest.approx(16.0)
    assert threshold_mA(8.0, 460, 100) > threshold_mA(8.0, 460, 450)  # shorter pulses need more


def test_85hz_4s_on_4s_off_fatigues_by_half_within_a_minute_and_levels_off() -> None:
    peaks = fatigue_run(85, 4, 4, cycles=40)
    first, one_minute = peaks[0], peaks[7]  # contraction 8 starts at 56 s
    assert 0.4 <= one_minute / first <= 0.6
    assert np.all(np.diff(peaks[:10]) < 0)  # declines
    last_minute = peaks[-8:]
    assert last_minute.max() / last_minute.min() < 1.03  # and levels off


def test_recovery_follows_the_fatigue_time_constant() -> None:
    m = DingMuscles(1)
    for k in range(60 * 85):  # a minute of continuous 85 Hz
        m.pulse(k / 85)
        m.step(1 / 85)
    for _ in range(50):  # let the force die out
        m.step(0.01)
    m.settle_fatigue()
    deficit0 = m.p.a_rest - float(m.a[0])
    assert deficit0 > 0.3 * m.p.a_rest
    for _ in range(127):
        m.step(1.0)
    m.settle_fatigue()
    deficit1 = m.p.a_rest - float(m.a[0])
    assert deficit1 / deficit0 == pytest.approx(math.exp(-1), rel=0.02)


def test_recruitment_and_sensation() -> None:
    assert recruitment(np.array([10.0, 20.0, 40.0, 60.0, 90.0]), np.array(20.0)).tolist() == [
        0,
        0,
        0.5,
        1,
        1,
    ]
    i = np.linspace(0, 150, 200)
    rating = cr10(i, 5.0, 20.0, 80.0)
    assert rating[0] == 0 and np.all(np.diff(rating) >= 0) and rating[-1] == 10
    assert cr10(np.array(80.0), 5.0, 20.0, 80.0) == pytest.approx(8.0)
    assert adaptation(0.0) == 1.0 and adaptation(3600.0) > 1.19


def test_a_loose_electrode_raises_impedance() -> None:
    full, loose = contact_impedance_ohm(1.0, 350), contact_impedance_ohm(0.2, 350)
    assert loose > 2 * full


def class_currents(mA: float, seconds: float = 120.0, tick: float = 0.025) -> np.ndarray:
    """One client, quads only: 4 s on / 4 s off at a fixed current."""
    n = int(seconds / tick)
    t = np.arange(n) * tick
    on = (t % 8.0) < 4.0
    cur = np.zeros((n, 1, len(DEFAULT_LAYOUT)), dtype=np.float32)
    cur[on, 0, QUADS] = mA
    return cur


def run(cur: np.ndarray, first: bool = False, contact: float = 1.0) -> object:
    pop = make_population(1, DEFAULT_LAYOUT, seed=3)
    pop.contact[:] = contact
    n = cur.shape[0]
    return simulate_body(
        cur, 0.025, np.full(n, 350.0), np.full(n, 85.0), pop, DEFAULT_LAYOUT, ["Ana"], [first]
    )


def kinds(res: object) -> set[str]:
    return {w["kind"] for w in res.warnings}  # type: ignore[attr-defined]


def test_too_weak_to_recruit_is_warned() -> None:
    assert "too_weak" in kinds(run(class_currents(8.0)))
    assert "too_weak" not in kinds(run(class_currents(60.0)))


def test_a_hard_first_session_is_warned() -> None:
    res = run(class_currents(119.0), first=True)
    assert "first_session_hard" in kinds(res)
    assert res.requests and "asks for less" in res.requests[0]["message"]  # type: ignore[attr-defined]
    assert "first_session_hard" not in kinds(run(class_currents(20.0), first=True))


def test_current_density_on_a_loose_electrode_is_warned() -> None:
    assert "current_density" not in kinds(run(class_currents(100.0)))
    assert "current_density" in kinds(run(class_currents(100.0), contact=0.05))  # 9 cm² left


def test_more_than_20_minutes_of_stimulation_is_warned() -> None:
    n = int(21 * 60 / 0.025)
    cur = np.zeros((n, 1, len(DEFAULT_LAYOUT)), dtype=np.float32)
    cur[:, 0, QUADS] = 40.0
    assert "long" in kinds(run(cur))


def test_force_and_fatigue_figures_of_a_class() -> None:
    res = run(class_currents(90.0, seconds=300))
    q = QUADS
    assert res.peak_force_N[0, q] > 100  # type: ignore[attr-defined]
    assert res.force_time_Ns[0, q] > 0  # type: ignore[attr-defined]
    assert res.fatigue_end[0, q] < 0.8  # type: ignore[attr-defined]
    assert res.fatigue_end[0, 0] == pytest.approx(1.0)  # type: ignore[attr-defined]
    tl = res.timelines()  # type: ignore[attr-defined]
    assert len(tl["t"]) == 300 and np.array(tl["levels_mA"]).max() == 90.0
