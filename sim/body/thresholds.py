"""Strength-duration thresholds, recruitment, sensation (Borg CR10) and electrode contact.

Theory of operation
-------------------
* Threshold (Lapicque): I_th(PW) = I_rh·(1 + c/PW); at PW = c it is twice the
  rheobase. Motor chronaxie at the skin ≈ 460 µs, sensory ≈ 665 µs
  (Mogyoros 1996); pain fibres have the longest chronaxie, so short pulses
  widen the gap between a contraction and pain.
* Recruitment (Veltink style): s = I/I_th(PW); r = clip((s - 1)/(s_sat - 1), 0, 1),
  s_sat = 3. Force = strength × r × F(Ding) — recruitment and frequency kept apart.
* Sensation: three curves, sensory < motor < tolerance. CR10 rises 0 → 1 up
  to the motor threshold, 1 → 8 from motor to tolerance, then 8 → 10 at
  1.25 × tolerance. What the skin feels scales with current *density*, so a
  loose electrode (contact fraction a) feels like I/a. Tolerance rises as the
  session goes on (adaptation).
* Contact: R_s in series with (R_p ∥ C_p); a contact fraction a gives R_p/a and
  a·C_p; the suit sees V_end/I = R_s + R_p·(1 - exp(-PW/(R_p·C_p))).
"""

from __future__ import annotations

import numpy as np

from channels.program import FloatArray

MOTOR_CHRONAXIE_US = 460.0
SENSORY_CHRONAXIE_US = 665.0
PAIN_CHRONAXIE_US = 900.0
S_SAT = 3.0


def threshold_mA(
    rheobase_mA: FloatArray | float,
    chronaxie_us: FloatArray | float,
    pulse_width_us: FloatArray | float,
) -> FloatArray:
    """Lapicque's strength-duration curve: the threshold current at a pulse width."""
    out: FloatArray = np.asarray(rheobase_mA, dtype=np.float64) * (
        1.0
        + np.asarray(chronaxie_us, dtype=np.float64) / np.asarray(pulse_width_us, dtype=np.float64)
    )
    return out


def recruitment(current_mA: FloatArray, motor_threshold_mA: FloatArray) -> FloatArray:
    """Fraction of the muscle recruited, 0..1."""
    s = np.asarray(current_mA) / np.maximum(motor_threshold_mA, 1e-9)
    return np.clip((s - 1.0) / (S_SAT - 1.0), 0.0, 1.0)


def cr10(
    felt_mA: FloatArray, sensory_mA: FloatArray, motor_mA: FloatArray, tolerance_mA: FloatArray
) -> FloatArray:
    """Borg CR10 rating of a felt current (piecewise linear between the thresholds)."""
    i = np.asarray(felt_mA, dtype=np.float64)
    below = np.clip((i - sensory_mA) / np.maximum(motor_mA - sensory_mA, 1e-9), 0, 1) * 1.0
    mid = np.clip((i - motor_mA) / np.maximum(tolerance_mA - motor_mA, 1e-9), 0, 1) * 7.0
    top = np.clip((i - tolerance_mA) / np.maximum(0.25 * tolerance_mA, 1e-9), 0, 1) * 2.0
    return np.where(i > 0, below + mid + top, 0.0)


def adaptation(stim_s: FloatArray | float) -> FloatArray:
    """Factor by which tolerance has risen after this much stimulation (up to +20 %)."""
    return 1.0 + 0.2 * (1.0 - np.exp(-np.asarray(stim_s) / 600.0))


def contact_impedance_ohm(
    contact: FloatArray | float,
    pulse_width_us: float,
    r_s: float = 400.0,
    r_p: float = 1500.0,
    c_p_nf: float = 300.0,
) -> FloatArray:
    """V_end / I of an electrode pair with a contact fraction (1 = full contact)."""
    a = np.clip(np.asarray(contact, dtype=np.float64), 1e-3, 1.0)
    rp = r_p / a
    cp = c_p_nf * 1e-9 * a
    return r_s + rp * (1.0 - np.exp(-pulse_width_us * 1e-6 / (rp * cp)))
