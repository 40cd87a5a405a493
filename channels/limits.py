"""Safety arithmetic and the output cap of invariant S1.

Theory of operation
-------------------
The suit delivers symmetric biphasic rectangular pulses: a phase of `I` mA
for `PW` µs, the same charge back, `f` times a second. Three physical
quantities matter for the client and each has a limit here:

* charge per phase ``Q = I·PW`` (µC), capped by :data:`CHARGE_PER_PHASE_MAX_UC`;
* rms current ``I_rms = I·sqrt(2·PW·f)`` — both phases conduct;
* current density ``J = I_rms / A`` over the electrode's contact area,
  capped at :data:`CURRENT_DENSITY_MAX_MA_CM2` (IEC 60601-2-10's level of
  attention).

:func:`channel_cap_mA` turns each limit into a peak-current bound for a given
program and takes the smallest of them, the device's maximum, the layout's
channel maximum and the client's own cap. :func:`limit_output` applies it.
Every output the engine sends goes through :func:`limit_output`; the suit
firmware enforces its own maximum again (defence in depth).

Every limit of the project is defined once, in this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: The largest peak current any suit output may ever carry, mA.
DEVICE_MAX_MA = 120.0
#: Peak current resolution of the suit protocol, mA.
LEVEL_STEP_MA = 0.5
#: Highest level code on the wire (DEVICE_MAX_MA in LEVEL_STEP_MA steps).
MAX_LEVEL_CODE = 240
#: IEC 60601-2-10 asks attention above this rms current density, mA/cm².
CURRENT_DENSITY_MAX_MA_CM2 = 2.0
#: Project policy: charge per phase never above this, µC.
CHARGE_PER_PHASE_MAX_UC = 45.0
#: DIN 33961-5: a set intensity changes in steps of at most this, mA.
INTENSITY_STEP_MAX_MA = 1.0
#: How fast a set intensity rises towards its target: one 1 mA step per this many s.
INTENSITY_RISE_STEP_S = 0.25
#: Cap on every channel in a client's first session, mA (S5: first sessions are light).
FIRST_SESSION_CAP_MA = 50.0
#: Longest stimulation a suit block may hold, s (S8).
SUIT_BLOCK_MAX_S = 25 * 60.0
#: A suit block shorter than this earns a warning, s.
SUIT_BLOCK_MIN_S = 20 * 60.0
#: Warm-up length the guidelines ask for, s.
WARMUP_RANGE_S = (5 * 60.0, 7 * 60.0)
#: The suit zeroes its outputs when no valid frame arrives for this long, s (S4).
WATCHDOG_S = 0.25

#: Program ranges: (low, high) inclusive.
FREQUENCY_RANGE_HZ = (1.0, 150.0)
PULSE_WIDTH_RANGE_US = (50.0, 450.0)


def charge_per_phase_uC(
    current_mA: float | FloatArray, pulse_width_us: float
) -> float | FloatArray:
    """Charge of one phase, µC (80 mA × 350 µs = 28 µC)."""
    return current_mA * pulse_width_us / 1000.0


def rms_factor(pulse_width_us: float, frequency_hz: float) -> float:
    """I_rms / I_peak for symmetric biphasic rectangular pulses: sqrt(2·PW·f)."""
    return math.sqrt(2.0 * pulse_width_us * 1e-6 * frequency_hz)


def rms_current_mA(
    current_mA: float | FloatArray, pulse_width_us: float, frequency_hz: float
) -> float | FloatArray:
    """RMS current of symmetric biphasic pulses, mA (80 mA, 350 µs, 85 Hz → 19.5 mA)."""
    return current_mA * rms_factor(pulse_width_us, frequency_hz)


def current_density_mA_cm2(
    current_mA: float | FloatArray, pulse_width_us: float, frequency_hz: float, area_cm2: float
) -> float | FloatArray:
    """RMS current density over an electrode's contact area, mA/cm²."""
    return rms_current_mA(current_mA, pulse_width_us, frequency_hz) / area_cm2


def channel_cap_mA(
    *,
    channel_max_mA: float,
    area_cm2: float,
    pulse_width_us: float,
    frequency_hz: float,
    client_cap_mA: float = DEVICE_MAX_MA,
) -> float:
    """The highest peak current S1 allows on one channel with one program, mA.

    The smallest of: the device's maximum, the layout's channel maximum, the
    client's cap, the current-density cap and the charge-per-phase cap.
    """
    density_cap = CURRENT_DENSITY_MAX_MA_CM2 * area_cm2 / rms_factor(pulse_width_us, frequency_hz)
    charge_cap = CHARGE_PER_PHASE_MAX_UC * 1000.0 / pulse_width_us
    cap = min(DEVICE_MAX_MA, channel_max_mA, client_cap_mA, density_cap, charge_cap)
    return max(0.0, cap)


def program_caps_mA(
    *,
    channel_max_mA: FloatArray,
    area_cm2: FloatArray,
    client_cap_mA: FloatArray,
    programs: Iterable[tuple[int, int]],
) -> FloatArray:
    """S1 caps of every channel under every program given, the lowest of them, mA.

    `programs` are (frequency Hz, pulse width µs) as the suit applies them
    (whole numbers); while a suit changes program the caller names both the
    old and the new one. No program: zero (nothing may be sent). The same
    arithmetic as `channel_cap_mA`, over arrays; the engine computes it when a
    program changes, not per tick.
    """
    ch_max = np.asarray(channel_max_mA, dtype=np.float64)
    area = np.asarray(area_cm2, dtype=np.float64)
    cap = np.minimum(np.minimum(ch_max, np.asarray(client_cap_mA, dtype=np.float64)), DEVICE_MAX_MA)
    seen = False
    for frequency_hz, pulse_width_us in programs:
        seen = True
        density_cap = CURRENT_DENSITY_MAX_MA_CM2 * area / rms_factor(pulse_width_us, frequency_hz)
        charge_cap = CHARGE_PER_PHASE_MAX_UC * 1000.0 / pulse_width_us
        cap = np.minimum(np.minimum(cap, density_cap), charge_cap)
    if not seen:
        return np.zeros_like(cap)
    return np.maximum(cap, 0.0)


def level_codes(requested_mA: FloatArray, cap_mA: FloatArray) -> npt.NDArray[np.uint8]:
    """What goes to the suits: S1-limited levels as wire codes (0.5 mA steps, rounded down).

    The one calculation shared by the engine and the planning mode.
    """
    out = limit_output(requested_mA, cap_mA)  # in [0, cap]: no lower clip needed below
    codes = np.floor(out / LEVEL_STEP_MA + 1e-9)
    np.minimum(codes, MAX_LEVEL_CODE, out=codes)
    return codes.astype(np.uint8)


def limit_output(requested_mA: FloatArray, cap_mA: FloatArray) -> FloatArray:
    """Apply S1: clip requested peak currents into [0, cap], element-wise.

    NaN (a computation gone wrong) becomes 0, never the cap.
    """
    out = np.asarray(requested_mA, dtype=np.float64)
    if not np.isfinite(out).all():  # rare: the slow, general path only then (40 Hz engine)
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    # maximum/minimum rather than np.clip: the same values, a third of the time per tick
    return np.minimum(np.maximum(out, 0.0), np.maximum(cap_mA, 0.0))
