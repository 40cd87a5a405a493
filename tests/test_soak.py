"""The fault soak: a short run finds no violation, and a broken engine is caught."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.soak import soak
from suit_controller import session as session_module
from suit_controller.driver import SuitDriver
from suit_controller.intensity import IntensityBoard


def test_a_short_soak_finds_no_violation() -> None:
    tally = soak(runs=20, seed=2026)
    assert tally.runs == 20
    assert sum(tally.faults.values()) > 100
    assert {"drop", "estop", "burst", "detach"} <= set(tally.faults)
    # a subscriber raising on every event ("ended" too), loss at program changes
    assert {"exception_in_subscriber", "loss_at_program_change"} <= set(tally.faults)
    assert tally.violations == []


def test_the_soak_catches_a_missing_output_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    def uncapped(requested: Any, cap: Any) -> Any:
        out = np.floor(np.maximum(requested, 0.0) / 0.5 + 1e-9)
        return np.clip(out, 0, 240).astype(np.uint8)

    monkeypatch.setattr(session_module, "level_codes", uncapped)
    tally = soak(runs=10, seed=1)
    assert any(v.startswith("run") and "S1" in v for v in tally.violations)


def test_the_soak_catches_intensity_jumps(monkeypatch: pytest.MonkeyPatch) -> None:
    def jumpy(self: IntensityBoard, now: float) -> None:
        self.set_mA[:] = self.target_mA

    monkeypatch.setattr(IntensityBoard, "step", jumpy)
    tally = soak(runs=5, seed=1)
    assert any("S2" in v for v in tally.violations)


def test_the_soak_catches_a_stop_that_does_not_reach_the_suits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_stop(self: SuitDriver) -> bool:
        self.connection.hold()
        return False

    monkeypatch.setattr(SuitDriver, "send_stop_now", no_stop)
    tally = soak(runs=10, seed=1)
    assert any("estop" in v or "end:" in v for v in tally.violations)


def test_the_soak_catches_ended_told_before_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12, class 1: "ended" emitted before STOP_ALL went to the suits."""
    from suit_controller.session import ClassSession

    close = ClassSession._close

    async def ended_first(self: ClassSession) -> None:
        self.emit("ended", "class interrupted")
        await close(self)

    monkeypatch.setattr(ClassSession, "_close", ended_first)
    tally = soak(runs=10, seed=1)
    assert any("ended before STOP_ALL" in v for v in tally.violations)


def test_the_soak_catches_a_lost_set_program_never_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 12, class 2: the old driver's SET_PROGRAM, sent once and never again, with caps
    computed for the program asked for, not the lower of it and the one the suit applies."""
    from suit_controller.protocol import connection
    from suit_controller.protocol.connection import ControllerConnection

    def newest_only(self: ControllerConnection) -> tuple[Any, ...]:
        p = self.pending or self.confirmed
        return () if p is None else (p,)

    monkeypatch.setattr(ControllerConnection, "cap_programs", newest_only)
    monkeypatch.setattr(connection, "PROGRAM_RESEND_S", float("inf"))
    tally = soak(runs=8, seed=2)
    assert tally.faults["loss_at_program_change"] > 0
    assert any("S1" in v for v in tally.violations)


def test_the_soak_catches_caps_from_another_pulse_width_than_the_wire_carries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 12, class 3: caps computed from a pulse width other than the one the suit
    applies (the file's 376.56 µs against the wire's 377; here 10 % off, so it shows)."""
    real = session_module.program_caps_mA

    def from_another_width(**kw: Any) -> Any:
        kw["programs"] = [(f, pw * 0.9) for f, pw in kw["programs"]]
        return real(**kw)

    monkeypatch.setattr(session_module, "program_caps_mA", from_another_width)
    tally = soak(runs=5, seed=1)
    assert any("S1" in v and "charge limit" in v for v in tally.violations)


def test_the_soak_catches_an_estop_that_waits_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12, class 4: an e-stop put in the queue behind the commands read before it."""
    from suit_controller.commands import CommandDesk, EmergencyStop, Request, says_estop

    take = CommandDesk.take

    def in_turn(self: CommandDesk, raw: Any, source: str) -> Request:
        if not says_estop(raw):
            return take(self, raw, source)
        request = Request(source, None, EmergencyStop())
        self.queue.append(request)
        self._work.set()
        return request

    monkeypatch.setattr(CommandDesk, "take", in_turn)
    tally = soak(runs=8, seed=2)
    assert tally.faults["estop"] > 0
    assert any("not latched as it was read" in v for v in tally.violations)


def test_soak_is_reproducible() -> None:
    a, b = soak(runs=3, seed=5), soak(runs=3, seed=5)
    assert a.faults == b.faults  # the same faults; Trio's scheduling order may differ


def test_a_short_soak_with_authentication_on_finds_no_violation() -> None:
    tally = soak(runs=8, seed=2027, authenticated=True)
    assert tally.runs == 8 and not tally.violations, tally.violations[:5]
    assert sum(tally.faults.values()) > 0 and tally.checks > 0


def test_the_authenticated_soak_catches_unsigned_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    from suit_controller.protocol import connection

    real = connection.encode

    def unsigned(frame: Any, key: Any = None, key_id: int = 0) -> bytes:
        return (
            real(frame) if not isinstance(frame, connection.StopAll) else real(frame, key, key_id)
        )

    monkeypatch.setattr(connection, "encode", unsigned)  # a controller that forgets to sign
    tally = soak(runs=2, seed=1, authenticated=True)
    assert any("refused the controller's frames" in v for v in tally.violations)


def test_the_soak_catches_rises_faster_than_the_step_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 mA steps, but one every tick instead of one every 0.25 s: caught, although the
    first step of every ramp from zero may come at once."""

    def hasty(self: IntensityBoard, now: float) -> None:
        self.set_mA += np.clip(self.target_mA - self.set_mA, -1.0, 1.0)

    monkeypatch.setattr(IntensityBoard, "step", hasty)
    tally = soak(runs=3, seed=1)
    assert any("two rises within the step time" in v for v in tally.violations)
