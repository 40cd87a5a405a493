"""Programs and the impulse/pause envelope."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from channels import Program, ProgramError


def test_classic_envelope_shape() -> None:
    p = Program(85, 350, impulse_s=4, pause_s=4, ramp_up_s=0.5, ramp_down_s=0.3)
    t = np.array([-1.0, 0.0, 0.25, 0.5, 2.0, 3.85, 4.0, 6.0, 8.0, 8.25])
    assert p.envelope(t) == pytest.approx([0, 0, 0.5, 1, 1, 0.5, 0, 0, 0, 0.5])


def test_continuous_envelope_ramps_once() -> None:
    p = Program(7, 350, continuous=True, pause_s=0, ramp_up_s=2)
    assert p.envelope(np.array([0.0, 1.0, 2.0, 600.0])) == pytest.approx([0, 0.5, 1, 1])
    assert p.contractions(600) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frequency_hz": 0.5}, "frequency_hz"),
        ({"frequency_hz": 151}, "frequency_hz"),
        ({"pulse_width_us": 49}, "pulse_width_us"),
        ({"pulse_width_us": 451}, "pulse_width_us"),
        ({"impulse_s": 1, "ramp_up_s": 0.8, "ramp_down_s": 0.5}, "ramp_up_s"),
        ({"impulse_s": 0}, "impulse_s"),
        ({"continuous": True, "pause_s": 4}, "pause_s"),
    ],
)
def test_out_of_range_programs_are_refused(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ProgramError, match=field):
        Program(**kwargs)  # type: ignore[arg-type]


programs = st.builds(
    lambda imp, pause, up_frac, down_frac: Program(
        85, 350, impulse_s=imp, pause_s=pause, ramp_up_s=imp * up_frac, ramp_down_s=imp * down_frac
    ),
    st.floats(0.5, 10),
    st.floats(0.5, 10),
    st.floats(0, 0.45),
    st.floats(0, 0.45),
)


@given(programs, st.lists(st.floats(-100, 10_000, allow_nan=False), min_size=1, max_size=50))
def test_envelope_stays_in_0_1(p: Program, ts: list[float]) -> None:
    env = p.envelope(np.array(ts))
    assert np.all((env >= 0) & (env <= 1))


@given(programs, st.floats(1, 300))
def test_contractions_match_the_rising_edges_of_the_envelope(p: Program, duration: float) -> None:
    dt = min(p.impulse_s, p.pause_s) / 20
    t = np.arange(0.0, duration, dt)
    on = p.envelope(t) > 0
    edges = int(on[0]) + int(np.sum(on[1:] & ~on[:-1]))
    n = p.contractions(duration)
    assume(duration - (n - 1) * p.period_s > 2 * dt)  # the last impulse is visible on the grid
    assert edges == n


@given(
    st.floats(0.5, 10),
    st.floats(0, 10),
    st.sampled_from([0.0, 1e-10, 0.3, 0.5, 2.0]),
    st.sampled_from([0.0, 1e-10, 0.2, 0.3, 1.0]),
    st.booleans(),
    st.lists(st.floats(-5, 2000, allow_nan=False), min_size=1, max_size=20),
)
def test_level_at_is_the_envelope_bit_for_bit(
    impulse: float, pause: float, up: float, down: float, continuous: bool, times: list[float]
) -> None:
    """The tick's scalar `level_at` gives exactly `envelope`'s value (the engine's totals
    must not move by a bit when it takes the fast path)."""
    assume(up + down <= impulse)
    p = Program(
        impulse_s=impulse,
        pause_s=0.0 if continuous else pause,
        ramp_up_s=up,
        ramp_down_s=down,
        continuous=continuous,
    )
    for t in [*times, 0.0, impulse, impulse + pause, float("inf"), float("nan")]:
        with np.errstate(invalid="ignore"):  # inf mod a period: NaN, as envelope says
            fast, slow = p.level_at(t), float(p.envelope(t))
        assert fast == slow or (np.isnan(fast) and np.isnan(slow)), t
