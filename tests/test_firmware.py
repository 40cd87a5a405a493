"""The simulated suit firmware: its state table, watchdog (S4), stop latch and own maximum."""

import pytest

from sim.firmware import TRANSITIONS, SuitFirmware
from suit_controller.protocol import (
    ControllerEndpoint,
    Faults,
    FrameType,
    SuitState,
    decode_status,
)


def armed(n: int = 3) -> tuple[SuitFirmware, ControllerEndpoint]:
    fw, ctl = SuitFirmware(n), ControllerEndpoint(n)
    fw.receive(ctl.arm(), 0.0)
    return fw, ctl


def test_levels_are_ignored_until_armed() -> None:
    fw, ctl = SuitFirmware(2), ControllerEndpoint(2)
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


def test_watchdog_trips_at_its_deadline_and_needs_arm() -> None:
    fw, ctl = SuitFirmware(1), ControllerEndpoint(1)
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
    ctl = ControllerEndpoint(1)
    fw.receive(ctl.arm(), 0)
    fw.receive(ctl.levels(bytes([200])), 0)
    assert fw.applied_mA[0] == 50.0
    assert Faults.LEVEL_CLAMPED in fw.faults


def test_corrupt_frames_change_nothing() -> None:
    fw, ctl = armed(1)
    fw.receive(ctl.levels(bytes([40])), 0.0)
    frame = bytearray(ctl.levels(bytes([200])))
    frame[4] ^= 0xFF
    fw.receive(bytes(frame), 0.01)
    fw.receive(b"\x00garbage", 0.02)
    assert fw.applied_mA[0] == 20.0 and fw.bad_frames == 2
    assert Faults.BAD_FRAME in fw.faults
    fw.status_frames()
    assert Faults.BAD_FRAME not in fw.faults


def test_stale_frames_are_ignored() -> None:
    fw, ctl = armed(1)
    old = ctl.levels(bytes([80]))
    fw.receive(ctl.levels(bytes([20])), 0.0)
    fw.receive(old, 0.01)
    assert fw.applied_mA[0] == 10.0


def test_a_loose_electrode_carries_no_current_and_shows_in_status() -> None:
    fw, ctl = armed(2)
    fw.receive(ctl.levels(bytes([40, 40])), 0.0)
    fw.detach(1, 0.1)
    assert fw.applied_mA.tolist() == [20.0, 0.0]
    fw.receive(ctl.levels(bytes([42, 42])), 0.2)
    assert fw.applied_mA.tolist() == [21.0, 0.0]
    report = decode_status(fw.status_frames()[0])
    assert report.impedance_ohm[1] is None and Faults.ELECTRODE_OPEN in report.faults


def test_charge_accounting() -> None:
    fw, ctl = SuitFirmware(1, watchdog_s=10.0), ControllerEndpoint(1)
    fw.receive(ctl.arm(), 0.0)
    fw.receive(ctl.program(None, 85, 350), 0.0)
    fw.receive(ctl.levels(bytes([160])), 0.0)  # 80 mA
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
