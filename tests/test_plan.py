"""The compiled plan: a pure function of time, same on scalars and arrays."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import DEFAULT_LAYOUT
from workouts import PhaseKind, builtin_names, compile_workout, load_workout, load_workout_text

from .workout_files import GOOD

GOLDEN = Path(__file__).parent / "golden" / "builtin_summaries.json"
PLAN = compile_workout(load_workout_text(GOOD))


def test_segments_and_times() -> None:
    kinds = [(s.kind, s.name, s.start_s, s.end_s) for s in PLAN.segments]
    assert kinds == [
        (PhaseKind.WARMUP, "warmup", 0, 360),
        (PhaseKind.SUIT, "Squat", 360, 960),
        (PhaseKind.SUIT, "Row", 960, 1560),
        (PhaseKind.STRETCH, "stretch", 1560, 1860),
    ]
    assert PLAN.segment_at(0).kind is PhaseKind.WARMUP  # type: ignore[union-attr]
    assert PLAN.segment_at(959.99).name == "Squat"  # type: ignore[union-attr]
    assert PLAN.segment_at(1860) is None
    assert PLAN.segment_at(-1) is None


def test_warmup_and_stretch_never_stimulate() -> None:
    t = np.concatenate([np.linspace(0, 359.999, 5000), np.linspace(1560, 1859.999, 5000)])
    assert np.all(PLAN.levels(t) == 0)


def test_weights_per_channel_during_a_contraction() -> None:
    lv = PLAN.levels(360 + 2.0)  # squat, middle of the first impulse
    names = DEFAULT_LAYOUT.names
    assert lv[names.index("quads")] == 1.0
    assert lv[names.index("abs")] == pytest.approx(0.6)
    assert lv[names.index("calves")] == 0.0
    row = PLAN.levels(960 + 2.0)
    assert row[names.index("chest_left")] == 0.5
    assert row[names.index("chest_right")] == 0.0


@given(st.lists(st.floats(-10, 2000, allow_nan=False), min_size=1, max_size=40))
def test_scalar_and_array_agree(ts: list[float]) -> None:
    arr = PLAN.levels(np.array(ts))
    assert arr.shape == (len(ts), 12)
    for i, t in enumerate(ts):
        assert np.array_equal(arr[i], PLAN.levels(t))
    assert np.all((arr >= 0) & (arr <= 1))


def test_side_specific_key_overrides_group_key() -> None:
    text = GOOD.replace("{upper_back: 1.0, chest_left: 0.5}", "{chest: 1.0, chest_left: 0.5}")
    plan = compile_workout(load_workout_text(text))
    lv = plan.levels(960 + 2.0)
    assert lv[DEFAULT_LAYOUT.index("chest_left")] == 0.5
    assert lv[DEFAULT_LAYOUT.index("chest_right")] == 1.0


def test_plan_counts_agree_with_sampling() -> None:
    dt = 0.01
    t = np.arange(0, PLAN.total_s, dt)
    on = PLAN.levels(t) > 0
    stim = on.sum(axis=0) * dt
    np.testing.assert_allclose(stim, PLAN.stim_s_per_channel(), atol=1.0)  # one sample per impulse
    edges = on[0].astype(int) + np.sum(on[1:] & ~on[:-1], axis=0)
    np.testing.assert_array_equal(edges, PLAN.contractions_per_channel())


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_workouts_load_cleanly_and_match_golden_summaries(name: str) -> None:
    w = load_workout(f"builtin:{name}")
    assert w.warnings == ()
    golden = json.loads(GOLDEN.read_text())
    assert compile_workout(w).summary().as_dict() == golden[name]


def test_library_has_the_four_kinds_of_workout() -> None:
    assert {"first_session", "classic_strength", "metabolic", "relaxation"} <= set(builtin_names())
    classic = load_workout("builtin:classic_strength").programs["strength"]
    assert (classic.frequency_hz, classic.pulse_width_us, classic.impulse_s, classic.pause_s) == (
        85,
        350,
        4,
        4,
    )
    metabolic = compile_workout(load_workout("builtin:metabolic"))
    assert all(
        s.program.continuous and s.program.frequency_hz <= 10
        for s in metabolic.segments
        if s.program
    )
