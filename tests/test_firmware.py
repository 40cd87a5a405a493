"""The simulated suit firmware (protocol version 2): state table, counter, program, own limits."""

import itertools

import numpy as np
import pytest

from channels.limits import CHARGE_PER_PHASE_MAX_UC
from sim.firmware import TRANSITIONS, SuitFirmware
from suit_controller.protocol import (
    POWER_ON_PROGRAM,
    Arm,
    Faults,
    FrameType,
    Heartbeat,
    PulseProgram,
    SetProgram,
    StopAll,
    SuitState,
    decode_status,
    encode,
    encode_levels,
)


class Ctl:
    """Frames as a controller numbers them (counter from 1, growing)."""

    def __init__(self, start: int = 1) -> None:
        self.counter = itertools.count(start)

    def arm(self) -> bytes:
        return encode(Arm(next(self.counter)))

    def levels(self, codes: bytes, program_id: int = 0) -> bytes:
        return encode_levels(next(self.counter), program_id, codes)

    def stop_all(self) -> bytes:
        return encode(StopAll(next(self.counter)))

    def heartbeat(self) -> bytes:
        return encode(Heartbeat(next(self.counter)))

    def program(self, program_id: int, frequency_hz: int, pulse_width_us: int) -> bytes:
        return encode(SetProgram(next(self.counter), program_id, frequency_hz, pulse_width_us))


def armed(n: int = 3, **kw: float) -> tuple[SuitFirmware, Ctl]:
    fw, ctl = SuitFirmware(n, **kw), Ctl()  # type: ignore[arg-type]
    fw.receive(ctl.arm(), 0.0)
    return fw, ctl


def test_levels_are_ignored_until_armed() -> None:
    fw, ctl = SuitFirmware(2), Ctl()
    fw.receive(ctl.levels(bytes([20, 20])), 0.0)
    assert fw.state is SuitState.IDLE and not fw.applied_mA.any()
    fw.receive(ctl.arm(), 0.0)
    fw.receive(ctl.levels(bytes([20, 40])), 0.0)
    assert fw.applied_mA.tolist() == [10.0, 20.0]


def test_stop_all_zeroes_and_latches_until_arm() -> None:
    fw, ctl = armed(2)
    fw.receive(ctl.levels(bytes([20, 20])), 0.0)
    fw.receive(ctl.stop_all(), 0.01)
    assert fw.state is SuitState.STOPPED and not fw.applied_mA.any()
    fw.receive(ctl.levels(bytes([20, 20])), 0.02)
    assert not fw.applied_mA.any()
    fw.receive(ctl.arm(), 0.03)
    fw.receive(ctl.levels(bytes([2, 2])), 0.04)
    assert fw.applied_mA.tolist() == [1.0, 1.0]


def test_stop_all_is_honoured_whatever_its_counter() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.levels(bytes([40])), 0.0)
    last = fw.last_counter
    fw.receive(encode(StopAll(0)), 0.01)  # a stale (or replayed) stop can only make it safer
    assert fw.state is SuitState.STOPPED and not fw.applied_mA.any()
    assert fw.last_counter == last


def test_only_a_greater_counter_is_accepted_and_it_is_remembered() -> None:
    fw, ctl = armed(1)
    old = ctl.levels(bytes([80]))
    fw.receive(ctl.levels(bytes([20])), 0.0)
    fw.receive(old, 0.01)  # delayed on the radio: dropped
    assert fw.applied_mA[0] == 10.0 and fw.stale_frames == 1
    fw.receive(encode_levels(fw.last_counter, 0, bytes([60])), 0.02)  # repeated: dropped
    assert fw.applied_mA[0] == 10.0
    # a new connection's controller numbering from 1 again is refused until it catches up
    fw.receive(Ctl().arm(), 0.03)
    assert fw.stale_frames == 3
    report = decode_status(fw.status_frames()[0])
    assert report.counter == fw.last_counter == 3


def test_watchdog_trips_at_its_deadline_and_needs_arm() -> None:
    fw, ctl = SuitFirmware(1), Ctl()
    fw.receive(ctl.arm(), 0.9)
    fw.receive(ctl.levels(bytes([40])), 1.0)
    assert fw.watchdog_deadline == pytest.approx(1.25)
    assert not fw.check_watchdog(1.2499)
    assert fw.applied_mA[0] == 20.0
    assert fw.check_watchdog(1.25)
    assert fw.state is SuitState.WATCHDOG and fw.applied_mA[0] == 0
    assert Faults.WATCHDOG in fw.faults
    fw.receive(ctl.levels(bytes([40])), 1.3)
    assert fw.applied_mA[0] == 0
    assert fw.totals(2.0)[0].stim_s == pytest.approx(0.25)


def test_heartbeat_feeds_the_watchdog() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.levels(bytes([40])), 0.0)
    for t in (0.2, 0.4, 0.6):
        fw.receive(ctl.heartbeat(), t)
        assert not fw.check_watchdog(t + 0.2)
    assert fw.applied_mA[0] == 20.0
    assert fw.check_watchdog(0.85)


def test_a_late_frame_finds_the_watchdog_already_tripped() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.levels(bytes([40])), 0.0)
    fw.receive(ctl.levels(bytes([40])), 0.5)
    assert fw.state is SuitState.WATCHDOG and fw.applied_mA[0] == 0


def test_the_suit_clamps_to_its_own_maximum() -> None:
    fw = SuitFirmware(1, max_mA=50.0)
    ctl = Ctl()
    fw.receive(ctl.arm(), 0)
    fw.receive(ctl.levels(bytes([200])), 0)
    assert fw.applied_mA[0] == 50.0
    assert Faults.LEVEL_CLAMPED in fw.faults


@pytest.mark.parametrize(("pulse_width_us", "limit_mA"), [(450, 100.0), (376, 119.5), (350, 120.0)])
def test_the_suit_clamps_to_its_own_charge_limit_at_its_active_pulse_width(
    pulse_width_us: int, limit_mA: float
) -> None:
    fw, ctl = armed(2)
    fw.receive(ctl.program(4, 85, pulse_width_us), 0.0)
    fw.receive(ctl.levels(bytes([240, 100]), program_id=4), 0.01)  # 120 mA and 50 mA
    assert fw.applied_mA.tolist() == [limit_mA, 50.0]
    assert fw.applied_mA[0] * pulse_width_us / 1000 <= CHARGE_PER_PHASE_MAX_UC
    clamped = limit_mA < 120.0
    assert (Faults.CHARGE_CLAMPED in fw.faults) is clamped
    assert fw.charge_clamps == int(clamped)
    report = decode_status(fw.status_frames()[0])
    assert (Faults.CHARGE_CLAMPED in report.faults) is clamped
    assert (Faults.CHARGE_CLAMPED in fw.faults) is clamped  # stays set until the next ARM
    fw.receive(ctl.stop_all(), 0.02)
    fw.receive(ctl.arm(), 0.03)
    assert Faults.CHARGE_CLAMPED not in fw.faults


def test_set_program_zeroes_until_levels_for_the_new_program() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.levels(bytes([100])), 0.0)
    assert fw.applied_mA[0] == 50.0
    fw.receive(ctl.program(1, 85, 450), 0.01)
    assert fw.program == PulseProgram(1, 85, 450)
    assert fw.applied_mA[0] == 0.0 and fw.state is SuitState.ARMED
    fw.receive(ctl.levels(bytes([100])), 0.02)  # levels for the old program: dropped
    assert fw.applied_mA[0] == 0.0 and Faults.PROGRAM_MISMATCH in fw.faults
    assert fw.mismatched_frames == 1
    assert not fw.check_watchdog(0.2)  # a dropped level frame still feeds the watchdog
    report = decode_status(fw.status_frames()[0])
    assert Faults.PROGRAM_MISMATCH in report.faults and report.program == PulseProgram(1, 85, 450)
    assert Faults.PROGRAM_MISMATCH not in fw.faults  # cleared by the status that reported it
    fw.receive(ctl.levels(bytes([100]), program_id=1), 0.03)
    assert fw.applied_mA[0] == 50.0


def test_the_same_program_again_changes_nothing() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.program(1, 85, 450), 0.0)
    fw.receive(ctl.levels(bytes([100]), program_id=1), 0.01)
    fw.receive(ctl.program(1, 85, 450), 0.02)  # a re-sent SET_PROGRAM
    assert fw.applied_mA[0] == 50.0


def test_a_program_set_while_not_armed_applies_without_arming() -> None:
    fw, ctl = SuitFirmware(1), Ctl()
    assert fw.program == POWER_ON_PROGRAM
    fw.receive(ctl.program(2, 7, 100), 0.0)
    assert fw.state is SuitState.IDLE and fw.program == PulseProgram(2, 7, 100)


def test_a_firmware_that_ignores_programs_keeps_its_own() -> None:
    fw = SuitFirmware(1, ignores_programs=True)
    ctl = Ctl()
    fw.receive(ctl.arm(), 0.0)
    fw.receive(ctl.program(1, 85, 450), 0.0)
    assert fw.program == POWER_ON_PROGRAM


def test_corrupt_frames_change_nothing() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.levels(bytes([40])), 0.0)
    frame = bytearray(ctl.levels(bytes([200])))
    frame[8] ^= 0xFF
    fw.receive(bytes(frame), 0.01)
    fw.receive(b"\x00garbage", 0.02)
    assert fw.applied_mA[0] == 20.0 and fw.bad_frames == 2
    assert Faults.BAD_FRAME in fw.faults
    fw.status_frames()
    assert Faults.BAD_FRAME not in fw.faults


def test_a_loose_electrode_carries_no_current_and_shows_in_status() -> None:
    fw, ctl = armed(2)
    fw.receive(ctl.levels(bytes([40, 40])), 0.0)
    fw.detach(1, 0.1)
    assert fw.applied_mA.tolist() == [20.0, 0.0]
    fw.receive(ctl.levels(bytes([42, 42])), 0.2)
    assert fw.applied_mA.tolist() == [21.0, 0.0]
    report = decode_status(fw.status_frames()[0])
    assert report.impedance_ohm[1] is None and Faults.ELECTRODE_OPEN in report.faults


def test_the_status_carries_the_suits_own_clock() -> None:
    fw = SuitFirmware(1, power_on_s=10.0)
    assert decode_status(fw.status_frames(now=10.25)[0]).clock_ms == 250
    assert decode_status(fw.status_frames(now=10.0 + 2**32 / 1000 + 1)[0]).clock_ms == 1000


def test_charge_accounting() -> None:
    fw, ctl = SuitFirmware(1, watchdog_s=10.0), Ctl()
    fw.receive(ctl.arm(), 0.0)
    fw.receive(ctl.levels(bytes([160])), 0.0)  # 80 mA at the power-on 85 Hz, 350 µs
    fw.receive(ctl.levels(bytes([0])), 2.0)
    t = fw.totals(3.0)[0]
    assert t.charge_uC == pytest.approx(28.0 * 85 * 2.0)  # 28 µC per phase, 85 Hz, 2 s
    assert (t.stim_s, t.max_mA, t.contractions) == (2.0, 80.0, 1)


def test_only_armed_state_can_carry_output() -> None:
    for (_state, _event), nxt in TRANSITIONS.items():
        assert isinstance(nxt, SuitState)
    assert all(
        nxt is not SuitState.ARMED or ev in (FrameType.ARM, FrameType.SET_LEVELS)
        for (_s, ev), nxt in TRANSITIONS.items()
    )
    assert not any(ev is FrameType.SET_PROGRAM for (_s, ev) in TRANSITIONS)


def test_outputs_never_exceed_the_charge_limit_whatever_the_frames() -> None:
    rng = np.random.default_rng(5)
    fw, ctl = armed(4)
    for i in range(300):
        if rng.random() < 0.2:
            fw.receive(ctl.program(1 + i % 255, 85, int(rng.integers(50, 451))), i * 0.01)
        codes = bytes(int(c) for c in rng.integers(0, 241, 4))
        fw.receive(ctl.levels(codes, program_id=fw.program.program_id), i * 0.01)
        assert np.max(fw.applied_mA) * fw.pulse_width_us / 1000 <= CHARGE_PER_PHASE_MAX_UC


def test_an_enrolled_suit_refuses_every_unsigned_frame_but_stop_all() -> None:
    from suit_controller.protocol.enrollment import SuitKey, encode_enroll

    fw = SuitFirmware(2)
    assert fw.auth.handle(encode_enroll(bytes(16), SuitKey(1, bytes(range(32))))) is None
    for frame in (
        encode(Arm(1)),
        encode_levels(2, 0, bytes([20, 20])),
        encode(SetProgram(3, 7, 90, 300)),
        encode(Heartbeat(4)),
    ):
        assert fw.receive(frame, 0.0) is None
    assert fw.auth.refused_frames == 4 and fw.last_counter == 0
    assert fw.state is SuitState.IDLE and fw.program == POWER_ON_PROGRAM
    assert fw.receive(encode(StopAll(5)), 0.0) is not None  # anyone's stop


def test_only_an_arm_that_arms_clears_the_faults_an_arm_clears() -> None:
    fw, ctl = SuitFirmware(2), Ctl()
    some = Faults.WATCHDOG | Faults.LOW_BATTERY | Faults.PROGRAM_MISMATCH | Faults.CHARGE_CLAMPED
    fw.faults = some
    fw.receive(ctl.heartbeat(), 0.0)
    fw.receive(ctl.levels(bytes([2, 2])), 0.0)
    assert fw.faults == some  # not armed, and not an ARM: nothing cleared
    fw.receive(ctl.arm(), 0.0)
    assert fw.faults == Faults.LOW_BATTERY | Faults.PROGRAM_MISMATCH  # what an ARM clears, only
    fw.faults = some
    fw.receive(ctl.arm(), 0.01)  # already armed: clears nothing
    assert fw.faults == some


def test_levels_for_another_program_id_are_dropped_and_flagged() -> None:
    fw, ctl = armed(2)
    active = fw.program.program_id
    fw.receive(ctl.levels(bytes([20, 20]), program_id=active + 1), 0.0)
    assert not fw.applied_mA.any() and fw.mismatched_frames == 1
    assert fw.faults & Faults.PROGRAM_MISMATCH


def test_counters_count_one_each() -> None:
    fw, ctl = armed(2)
    deadline = fw.watchdog_deadline
    assert deadline is not None and fw.check_watchdog(deadline) and fw.watchdog_trips == 1
    assert not fw.check_watchdog(deadline + 1.0) and fw.watchdog_trips == 1
    assert not fw.receive_stop(b"\x00" * 16, 0.0) and fw.bad_frames == 1
    assert not fw.receive_stop(ctl.arm(), 0.0) and fw.auth.refused_frames == 1


def test_the_highest_charge_of_one_phase_is_kept_per_output() -> None:
    fw, ctl = armed(2)  # the power-on 350 µs
    fw.receive(ctl.levels(bytes([160, 40])), 0.0)  # 80 mA, 20 mA
    assert fw.max_uC_per_phase.tolist() == pytest.approx([28.0, 7.0])
    fw.receive(ctl.levels(bytes([80, 0])), 0.1)  # lower: the peaks stay
    fw.receive(ctl.stop_all(), 0.2)
    assert fw.max_uC_per_phase.tolist() == pytest.approx([28.0, 7.0])
    fw.receive(ctl.arm(), 0.3)
    fw.receive(ctl.program(4, 85, 450), 0.3)
    fw.receive(ctl.levels(bytes([160, 200]), program_id=4), 0.4)  # 80 mA, 100 mA at 450 µs
    assert fw.max_uC_per_phase.tolist() == pytest.approx([36.0, 45.0])


def test_a_clamped_frame_repeated_counts_its_clamp_again_an_unclamped_one_does_not() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.program(4, 85, 450), 0.0)
    for t in (0.01, 0.02):
        fw.receive(ctl.levels(bytes([240]), program_id=4), t)  # 120 mA: clamped to 100
    assert fw.charge_clamps == 2 and fw.applied_mA.tolist() == [100.0]
    for t in (0.03, 0.04):
        fw.receive(ctl.levels(bytes([100]), program_id=4), t)  # 50 mA: not clamped
    assert fw.charge_clamps == 2 and fw.applied_mA.tolist() == [50.0]
    fw.receive(ctl.stop_all(), 0.05)
    fw.receive(ctl.arm(), 0.06)  # clears the fault
    for t in (0.07, 0.08):
        fw.receive(ctl.levels(bytes([200]), program_id=4), t)  # exactly the 100 mA limit
    assert fw.charge_clamps == 2 and fw.applied_mA.tolist() == [100.0]
    assert Faults.CHARGE_CLAMPED not in fw.faults


def test_zero_outputs_after_a_stop_add_no_time_charge_or_contraction() -> None:
    fw, ctl = armed(1, watchdog_s=10.0)
    fw.receive(ctl.levels(bytes([40])), 0.0)  # 20 mA for 1 s
    fw.receive(ctl.stop_all(), 1.0)
    fw.receive(ctl.stop_all(), 3.0)  # zero again: nothing more
    t = fw.totals(5.0)[0]
    assert (t.stim_s, t.max_mA, t.contractions) == (1.0, 20.0, 1)
    assert t.charge_uC == pytest.approx(7.0 * 85 * 1.0)
    assert not fw.applied_mA.any()


def test_a_call_stamped_earlier_than_the_last_takes_no_time_or_charge_away() -> None:
    fw, ctl = armed(1, watchdog_s=10.0)
    fw.receive(ctl.levels(bytes([40])), 1.0)  # 20 mA from 1 s
    fw.receive(ctl.levels(bytes([80])), 0.5)  # 40 mA, by a call whose clock is behind
    t = fw.totals(2.0)[0]
    assert t.stim_s == 1.0 and t.charge_uC == pytest.approx(14.0 * 85 * 1.0)


def test_a_level_at_or_under_the_suits_maximum_is_no_clamp() -> None:
    """LEVEL_CLAMPED says the suit cut a level down: a level at its maximum, or under it,
    is applied as asked and flags nothing."""
    for code, mA in ((100, 50.0), (40, 20.0), (0, 0.0)):
        fw = SuitFirmware(1, max_mA=50.0)
        ctl = Ctl()
        fw.receive(ctl.arm(), 0)
        fw.receive(ctl.levels(bytes([code])), 0)
        assert fw.applied_mA[0] == mA
        assert Faults.LEVEL_CLAMPED not in fw.faults, code
