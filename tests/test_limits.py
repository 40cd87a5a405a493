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
    MAX_LEVEL_CODE,
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


# -- the numbers themselves: every limit is defined once, so a changed digit changes S1-S8 --


def test_every_limit_is_the_number_of_the_standard_or_the_policy() -> None:
    from channels import limits

    assert limits.DEVICE_MAX_MA == 120.0
    assert limits.LEVEL_STEP_MA == 0.5
    assert limits.CURRENT_DENSITY_MAX_MA_CM2 == 2.0  # IEC 60601-2-10
    assert limits.CHARGE_PER_PHASE_MAX_UC == 45.0
    assert limits.INTENSITY_STEP_MAX_MA == 1.0  # DIN 33961-5
    assert limits.INTENSITY_RISE_STEP_S == 0.25
    assert limits.FIRST_SESSION_CAP_MA == 50.0  # S5
    assert limits.SUIT_BLOCK_MAX_S == 1500.0  # S8: 25 minutes
    assert limits.SUIT_BLOCK_MIN_S == 1200.0
    assert limits.WARMUP_RANGE_S == (300.0, 420.0)
    assert limits.WATCHDOG_S == 0.25  # S4
    assert limits.FREQUENCY_RANGE_HZ == (1.0, 150.0)
    assert limits.PULSE_WIDTH_RANGE_US == (50.0, 450.0)


def test_caps_with_worked_numbers_of_the_default_suit() -> None:
    # quads (180 cm², 120 mA): at 450 µs the charge cap binds: 45 µC / 450 µs = 100 mA
    assert channel_cap_mA(
        channel_max_mA=120.0, area_cm2=180.0, pulse_width_us=450.0, frequency_hz=85.0
    ) == pytest.approx(100.0)
    # at 400 µs: 112.5 mA (not rounded to a whole mA)
    assert channel_cap_mA(
        channel_max_mA=120.0, area_cm2=1000.0, pulse_width_us=400.0, frequency_hz=5.0
    ) == pytest.approx(112.5, abs=1e-9)
    # shoulders (50 cm²) at 350 µs / 85 Hz: 2 mA/cm² · 50 cm² / 0.2439 = 409.9 mA → 90 mA layout cap
    assert (
        channel_cap_mA(channel_max_mA=90.0, area_cm2=50.0, pulse_width_us=350.0, frequency_hz=85.0)
        == 90.0
    )
    # a device maximum of 120 mA even when nothing else binds
    assert (
        channel_cap_mA(channel_max_mA=500.0, area_cm2=5000.0, pulse_width_us=50.0, frequency_hz=1.0)
        == 120.0
    )
    # density at 450 µs, 150 Hz over 10 cm²: 2 · 10 / sqrt(2 · 450e-6 · 150) = 54.43 mA
    assert channel_cap_mA(
        channel_max_mA=120.0, area_cm2=10.0, pulse_width_us=450.0, frequency_hz=150.0
    ) == pytest.approx(54.433, abs=1e-3)
    assert charge_per_phase_uC(81.0, 350.0) == pytest.approx(28.35)
    assert rms_current_mA(100.0, 450.0, 150.0) == pytest.approx(100.0 * math.sqrt(0.135))


def test_a_zero_or_negative_client_cap_gives_a_zero_cap_never_more() -> None:
    kw = {"channel_max_mA": 110.0, "area_cm2": 120.0, "pulse_width_us": 350.0, "frequency_hz": 85.0}
    assert channel_cap_mA(client_cap_mA=0.0, **kw) == 0.0  # abdominal channels of a client who ate
    assert channel_cap_mA(client_cap_mA=-5.0, **kw) == 0.0


def test_limit_output_turns_every_non_finite_request_into_zero() -> None:
    req = np.array([np.nan, np.inf, -np.inf, 0.5, 119.5])
    assert limit_output(req, np.full(5, 120.0)).tolist() == [0.0, 0.0, 0.0, 0.5, 119.5]


def test_level_codes_floor_to_half_milliamps_and_stop_at_the_top_code() -> None:
    assert MAX_LEVEL_CODE == 240 == DEVICE_MAX_MA / LEVEL_STEP_MA
    requested = np.array([0.0, 0.25, 0.5, 10.0, 10.49, 10.5, 33.3, 119.9, 120.0, 130.0])
    codes = level_codes(requested, np.full(requested.shape, 130.0))
    assert codes.dtype == np.uint8
    assert codes.tolist() == [0, 0, 1, 20, 20, 21, 66, 239, 240, 240]
    one_mA = sum([0.1] * 10)  # 0.9999999999999999: 1 mA summed in floating point is 1 mA
    assert level_codes(np.array([one_mA]), np.array([130.0])).tolist() == [2]


def test_program_caps_are_the_channel_caps_over_arrays_the_lowest_of_every_program() -> None:
    ch_max = np.array([120.0, 120.0, 60.0, 120.0])
    area = np.array([50.0, 3.0, 50.0, 50.0])
    client = np.array([120.0, 120.0, 120.0, -5.0])
    programs = [(85, 350), (85, 400), (100, 100)]
    got = program_caps_mA(
        channel_max_mA=ch_max, area_cm2=area, client_cap_mA=client, programs=programs
    )
    for i in range(4):
        one_by_one = min(
            channel_cap_mA(
                channel_max_mA=ch_max[i],
                area_cm2=area[i],
                pulse_width_us=pw,
                frequency_hz=f,
                client_cap_mA=client[i],
            )
            for f, pw in programs
        )
        assert got[i] == pytest.approx(one_by_one, rel=1e-12)
    assert got[0] == pytest.approx(112.5, rel=1e-12)  # 45 µC at 400 µs, not rounded
    assert got[1] == pytest.approx(2.0 * 3.0 / math.sqrt(2 * 400e-6 * 85), rel=1e-12)  # density
    assert got[2] == 60.0  # the layout's channel maximum
    assert got[3] == 0.0  # a negative client cap gives 0, never less
    nothing = program_caps_mA(
        channel_max_mA=ch_max, area_cm2=area, client_cap_mA=client, programs=[]
    )
    assert nothing.tolist() == [0.0] * 4  # no program: nothing may be sent
