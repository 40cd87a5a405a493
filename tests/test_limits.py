"""S1: the output cap, with worked numbers."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import DEFAULT_LAYOUT, channel_cap_mA, limit_output
from channels.limits import (
    CHARGE_PER_PHASE_MAX_UC,
    CURRENT_DENSITY_MAX_MA_CM2,
    DEVICE_MAX_MA,
    LEVEL_STEP_MA,
    charge_per_phase_uC,
    current_density_mA_cm2,
    level_codes,
    program_caps_mA,
    rms_current_mA,
)


def test_worked_numbers_from_the_reference() -> None:
    assert charge_per_phase_uC(80.0, 350.0) == pytest.approx(28.0)
    assert rms_current_mA(80.0, 350.0, 85.0) == pytest.approx(19.51, abs=0.01)
    # 19.51 mA rms over 10 cm² is 1.95 mA/cm²
    assert current_density_mA_cm2(80.0, 350.0, 85.0, 10.0) == pytest.approx(1.951, abs=0.001)


def test_cap_is_the_device_maximum_when_nothing_else_binds() -> None:
    cap = channel_cap_mA(
        channel_max_mA=200.0, area_cm2=500.0, pulse_width_us=100.0, frequency_hz=10.0
    )
    assert cap == DEVICE_MAX_MA


def test_cap_is_the_channel_maximum() -> None:
    assert (
        channel_cap_mA(channel_max_mA=90.0, area_cm2=500.0, pulse_width_us=350.0, frequency_hz=85.0)
        == 90.0
    )


def test_cap_is_the_client_cap() -> None:
    assert (
        channel_cap_mA(
            channel_max_mA=110.0,
            area_cm2=500.0,
            pulse_width_us=350.0,
            frequency_hz=85.0,
            client_cap_mA=42.0,
        )
        == 42.0
    )


def test_cap_is_the_current_density_cap_on_a_small_electrode() -> None:
    # 10 cm² at 350 µs / 85 Hz: 2 mA/cm² · 10 cm² / sqrt(2·350e-6·85) = 81.99 mA
    cap = channel_cap_mA(
        channel_max_mA=120.0, area_cm2=10.0, pulse_width_us=350.0, frequency_hz=85.0
    )
    assert cap == pytest.approx(2.0 * 10.0 / math.sqrt(2 * 350e-6 * 85), rel=1e-9)
    assert cap == pytest.approx(81.99, abs=0.01)
    assert current_density_mA_cm2(cap, 350.0, 85.0, 10.0) == pytest.approx(
        CURRENT_DENSITY_MAX_MA_CM2
    )


def test_cap_is_the_charge_cap_at_long_pulses() -> None:
    # 450 µs: 45 µC / 450 µs = 100 mA
    cap = channel_cap_mA(
        channel_max_mA=120.0, area_cm2=1000.0, pulse_width_us=450.0, frequency_hz=5.0
    )
    assert cap == pytest.approx(CHARGE_PER_PHASE_MAX_UC * 1000 / 450)
    assert charge_per_phase_uC(cap, 450.0) == pytest.approx(CHARGE_PER_PHASE_MAX_UC)


def test_every_default_channel_has_a_cap_below_every_limit() -> None:
    for ch in DEFAULT_LAYOUT.channels:
        for pw, f in [(50, 1), (350, 85), (450, 150), (200, 10)]:
            cap = channel_cap_mA(
                channel_max_mA=ch.max_mA, area_cm2=ch.area_cm2, pulse_width_us=pw, frequency_hz=f
            )
            assert 0 < cap <= min(ch.max_mA, DEVICE_MAX_MA)
            assert charge_per_phase_uC(cap, pw) <= CHARGE_PER_PHASE_MAX_UC + 1e-9
            assert (
                current_density_mA_cm2(cap, pw, f, ch.area_cm2) <= CURRENT_DENSITY_MAX_MA_CM2 + 1e-9
            )


def test_limit_output_clips_and_never_passes_nan() -> None:
    req = np.array([-5.0, 10.0, 150.0, np.nan, np.inf])
    cap = np.array([50.0, 50.0, 50.0, 50.0, 50.0])
    assert limit_output(req, cap).tolist() == [0.0, 10.0, 50.0, 0.0, 0.0]


def test_limit_output_with_negative_cap_gives_zero() -> None:
    assert limit_output(np.array([5.0]), np.array([-1.0])).tolist() == [0.0]


@given(
    st.lists(st.tuples(st.integers(1, 150), st.integers(50, 450)), min_size=0, max_size=3),
    st.floats(0, 120),
)
def test_program_caps_are_the_lowest_channel_cap_over_the_programs(
    programs: list[tuple[int, int]], client_cap: float
) -> None:
    """The engine's vectorised caps (a suit changing program: both programs) = channel_cap_mA."""
    chans = DEFAULT_LAYOUT.channels
    caps = program_caps_mA(
        channel_max_mA=np.array([c.max_mA for c in chans]),
        area_cm2=np.array([c.area_cm2 for c in chans]),
        client_cap_mA=np.full(len(chans), client_cap),
        programs=programs,
    )
    for j, c in enumerate(chans):
        want = min(
            (
                channel_cap_mA(
                    channel_max_mA=c.max_mA,
                    area_cm2=c.area_cm2,
                    pulse_width_us=pw,
                    frequency_hz=f,
                    client_cap_mA=client_cap,
                )
                for f, pw in programs
            ),
            default=0.0,  # no program: nothing may be sent
        )
        assert caps[j] == pytest.approx(want, rel=1e-12, abs=1e-12)
    codes = level_codes(np.full(len(chans), 200.0), caps)
    assert np.all(codes * LEVEL_STEP_MA <= caps + 1e-9)
