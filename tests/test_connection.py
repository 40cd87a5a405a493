"""The controller's protocol rules (`ControllerConnection`), without Trio: bytes and events only."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import pytest

from suit_controller.protocol import (
    COUNTER_MAX,
    POWER_ON_PROGRAM,
    PROGRAM_CONFIRM_TIMEOUT_S,
    PROGRAM_RESEND_S,
    Arm,
    ConnectionState,
    ControllerConnection,
    ControllerLate,
    Faults,
    LocalProtocolError,
    ProgramConfirmed,
    ProgramUnconfirmed,
    PulseProgram,
    RemoteProtocolError,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitClamped,
    SuitKeyMismatch,
    SuitReady,
    SuitRefused,
    SuitState,
    SuitStoppedItself,
    decode_control,
    encode_status,
)
from suit_controller.protocol.connection import (
    ARM_ARRIVAL_S,
    CONTROLLER_LATE_S,
    NOT_HEARD_REPORTS,
)

V1_STATUS = bytes.fromhex("18070001570000051428283200ff0b14f0fe56a3")
C = ConnectionState


def status(
    counter: int = 5,
    state: SuitState = SuitState.IDLE,
    program: PulseProgram = POWER_ON_PROGRAM,
    levels: tuple[float, ...] = (0.0, 0.0),
) -> bytes:
    return encode_status(
        StatusReport(
            counter, 1000, state, 90, Faults.NONE, program, 0, levels, (800.0,) * len(levels)
        )
    )


def frames(conn: ControllerConnection, now: float = 0.0, codes: bytes | None = b"\0\0") -> list:
    return [decode_control(f) for f in conn.frames_to_send(codes, now)]


# -- the table, every (state, input) pair through the public methods ---------------------
def in_state(state: ConnectionState) -> ControllerConnection:
    conn = ControllerConnection(2)
    if state is C.DISCONNECTED:
        return conn
    conn.connected()
    if state is C.REFUSED:
        conn.receive_data(V1_STATUS, 0.0)
    elif state in (C.NEEDS_ARM, C.ARMED):
        conn.receive_data(status(5), 0.0)
        if state is C.ARMED:
            conn.frames_to_send(None, 0.0)
    assert conn.state is state
    return conn


ACTIONS: dict[str, Callable[[ControllerConnection], object]] = {
    "connect": lambda c: c.connected(),
    "connect over a small link": lambda c: c.connected(20),
    "lose the link": lambda c: c.lost(),
    "status ARMED": lambda c: c.receive_data(status(100, SuitState.ARMED), 0.0),
    "fresh status WATCHDOG": lambda c: c.receive_data(status(100, SuitState.WATCHDOG), 0.0),
    "version 1 status": lambda c: c.receive_data(V1_STATUS, 0.0),
    "a turn to send": lambda c: c.frames_to_send(None, 0.0),
    "release a stop": lambda c: c.release(),
}
D, AW, NA, AR, RF = C.DISCONNECTED, C.AWAITING_STATUS, C.NEEDS_ARM, C.ARMED, C.REFUSED
#: Written out by hand (not derived from the code's table): state -> next state per action,
#: in the order of ACTIONS.
EXPECTED = {
    D: [AW, RF, D, D, D, D, D, D],
    AW: [AW, RF, D, NA, NA, RF, AW, AW],
    NA: [AW, RF, D, NA, NA, RF, AR, NA],
    AR: [AW, RF, D, AR, NA, RF, AR, NA],
    RF: [AW, RF, D, RF, RF, RF, RF, RF],
}


@pytest.mark.parametrize(
    ("state", "action"),
    list(itertools.product(list(C), list(ACTIONS))),
    ids=lambda v: v.value if isinstance(v, ConnectionState) else v,
)
def test_every_transition(state: ConnectionState, action: str) -> None:
    conn = in_state(state)
    ACTIONS[action](conn)
    assert conn.state is EXPECTED[state][list(ACTIONS).index(action)]


# -- the rules ------------------------------------------------------------------------------
def test_nothing_but_stop_before_the_first_status_then_numbered_from_the_suits_counter() -> None:
    conn = ControllerConnection(2)
    assert conn.frames_to_send(b"\1\1", 0.0) == []
    conn.connected()
    assert conn.frames_to_send(b"\1\1", 0.0) == []
    stop = conn.stop_frame()
    assert stop is not None and isinstance(decode_control(stop), StopAll)
    assert conn.receive_data(status(41), 0.0)[0] == SuitReady(41)
    sent = frames(conn)
    assert [type(f) for f in sent] == [Arm, SetLevels]
    assert [f.counter for f in sent] == [42, 43]


def test_the_counter_only_grows_even_if_a_suit_reports_an_older_one() -> None:
    conn = in_state(C.ARMED)
    before = [f.counter for f in frames(conn)][-1]
    conn.lost()
    conn.connected()
    conn.receive_data(status(2), 0.0)  # a suit that forgot (or a stale report)
    assert frames(conn)[0].counter == before + 1


def test_arm_before_levels_and_hold_after_a_stop() -> None:
    conn = in_state(C.NEEDS_ARM)
    assert [type(f) for f in frames(conn)] == [Arm, SetLevels]
    assert [type(f) for f in frames(conn)] == [SetLevels]
    conn.hold()
    assert conn.frames_to_send(b"\1\1", 0.0) == [] and not conn.can_send
    assert conn.stop_frame() is not None
    conn.lost()
    conn.connected()
    conn.receive_data(status(100, SuitState.STOPPED), 0.0)
    assert conn.frames_to_send(b"\1\1", 0.0) == []  # still held after a reconnect
    conn.release()
    assert [type(f) for f in frames(conn)] == [Arm, SetLevels]


def test_a_fresh_watchdog_or_idle_report_re_arms_a_stale_one_does_not() -> None:
    conn = in_state(C.NEEDS_ARM)
    arm = frames(conn)[0]
    assert conn.receive_data(status(arm.counter - 1, SuitState.WATCHDOG), 0.0) == []
    assert conn.state is C.ARMED
    events = conn.receive_data(status(arm.counter, SuitState.WATCHDOG), 0.0)
    assert events == [SuitStoppedItself(SuitState.WATCHDOG)]
    assert type(frames(conn)[0]) is Arm
    later = frames(conn)[-1].counter
    assert conn.receive_data(status(later, SuitState.IDLE), 0.0) == [
        SuitStoppedItself(SuitState.IDLE)
    ]


def test_a_version_1_suit_is_refused_and_sent_nothing() -> None:
    conn = ControllerConnection(2)
    conn.connected()
    events = conn.receive_data(V1_STATUS, 0.0)
    assert events == [
        SuitRefused("this suit speaks suit protocol version 1; update its firmware to version 2")
    ]
    assert conn.frames_to_send(b"\1\1", 0.0) == [] and conn.stop_frame() is None
    assert conn.receive_data(V1_STATUS, 0.1) == []  # said once


def test_a_link_too_small_for_version_2_is_refused() -> None:
    conn = ControllerConnection(2)
    [event] = conn.connected(att_payload=20)
    assert isinstance(event, SuitRefused) and "at least 67" in event.reason
    assert conn.stop_frame() is None


def test_a_malformed_status_raises_remote_protocol_error_and_changes_nothing() -> None:
    conn = in_state(C.ARMED)
    for junk in (b"", b"\x28garbage", bytes(40), status()[:-3] + b"\0\0"):
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(junk, 0.0)
    assert conn.state is C.ARMED and conn.view.counter == 5


def test_program_is_re_sent_until_confirmed_and_levels_carry_the_confirmed_id() -> None:
    conn = in_state(C.ARMED)
    conn.set_program(85, 450, now=10.0)
    new = PulseProgram(1, 85, 450)
    assert conn.pending == new
    assert conn.cap_programs() == (POWER_ON_PROGRAM, new)  # the engine takes the lower cap
    sent = frames(conn, 10.0)
    assert sent[0] == SetProgram(sent[0].counter, 1, 85, 450)
    assert isinstance(sent[1], SetLevels) and sent[1].program_id == 0
    assert [type(f) for f in frames(conn, 10.0 + PROGRAM_RESEND_S / 2)] == [SetLevels]
    assert [type(f) for f in frames(conn, 10.0 + PROGRAM_RESEND_S)] == [SetProgram, SetLevels]
    # a status with the id but other pulses confirms nothing
    conn.receive_data(status(50, SuitState.ARMED, PulseProgram(1, 85, 350)), 10.15)
    assert conn.pending == new
    events = conn.receive_data(status(51, SuitState.ARMED, new), 10.2)
    assert events == [ProgramConfirmed(new)]
    assert conn.pending is None and conn.cap_programs() == (new,)
    assert [(type(f), getattr(f, "program_id", None)) for f in frames(conn, 10.5)] == [
        (SetLevels, 1)
    ]


def test_the_program_the_suit_already_applies_is_not_sent_again() -> None:
    conn = in_state(C.ARMED)
    conn.set_program(85, 350, 0.0)
    assert conn.pending is None and [type(f) for f in frames(conn)] == [SetLevels]


def test_an_unconfirmed_program_is_reported_once_after_a_second() -> None:
    conn = in_state(C.ARMED)
    conn.set_program(85, 450, now=3.0)
    for t in (3.0, 3.5, 3.0 + PROGRAM_CONFIRM_TIMEOUT_S - 0.01):
        frames(conn, t)
        assert conn.tick(t) == [] and not conn.program_overdue
    [event] = conn.tick(4.0)
    assert event == ProgramUnconfirmed(PulseProgram(1, 85, 450), 1.0)
    assert conn.program_overdue and conn.tick(4.5) == []
    assert isinstance(frames(conn, 4.5)[0], SetProgram)  # still asking
    conn.receive_data(status(99, SuitState.ARMED, PulseProgram(1, 85, 450)), 4.6)
    assert not conn.program_overdue


def test_program_ids_skip_zero_and_the_confirmed_one() -> None:
    conn = in_state(C.ARMED)
    ids = []
    for i in range(300):
        conn.set_program(85, 100 + i % 2 * 300, float(i))
        assert conn.pending is not None
        ids.append(conn.pending.program_id)
    assert 0 not in ids and set(ids) == set(range(1, 256))
    assert all(a != b for a, b in itertools.pairwise(ids))


def test_a_program_is_whole_hertz_and_microseconds() -> None:
    conn = in_state(C.ARMED)
    with pytest.raises(LocalProtocolError):
        conn.set_program(85, 376.56, 0.0)  # type: ignore[arg-type]


def test_a_suit_that_comes_back_on_another_program_is_asked_again() -> None:
    conn = in_state(C.ARMED)
    conn.set_program(85, 450, 0.0)
    conn.receive_data(status(50, SuitState.ARMED, PulseProgram(1, 85, 450)), 0.1)
    assert conn.pending is None
    conn.lost()
    conn.connected()
    conn.receive_data(status(0, SuitState.IDLE, POWER_ON_PROGRAM), 5.0)  # it was power-cycled
    assert conn.pending is not None and conn.pending.pulses == (85, 450)
    assert conn.cap_programs() == (POWER_ON_PROGRAM, conn.pending)
    assert [type(f) for f in frames(conn, 5.0)] == [Arm, SetProgram, SetLevels]


def test_asking_for_the_program_the_suit_applies_ends_a_pending_change() -> None:
    conn = in_state(C.ARMED)
    conn.set_program(85, 450, 0.0)
    conn.tick(2.0)
    assert conn.program_overdue
    conn.set_program(85, 350, 2.0)  # the next exercise uses the suit's own program
    assert conn.pending is None and not conn.program_overdue
    assert conn.cap_programs() == (POWER_ON_PROGRAM,)


def test_the_suits_own_clamp_acting_is_reported_once() -> None:
    conn = in_state(C.ARMED)
    clamped = encode_status(
        StatusReport(
            9, 0, SuitState.ARMED, 90, Faults.CHARGE_CLAMPED, POWER_ON_PROGRAM, 0, (1.0,), (800.0,)
        )
    )
    assert SuitClamped(Faults.CHARGE_CLAMPED) in conn.receive_data(clamped, 0.0)
    assert not any(isinstance(e, SuitClamped) for e in conn.receive_data(clamped, 0.2))


def test_a_suit_whose_counter_is_used_up_is_refused_with_a_reason_not_an_exception() -> None:
    # room for one more turn (ARM, SET_PROGRAM, levels): driven as usual, to the last counter
    conn = ControllerConnection(2)
    conn.connected()
    conn.receive_data(status(COUNTER_MAX - 3), 0.0)
    conn.set_program(90, 300, 0.0)
    assert [f.counter for f in frames(conn)] == [COUNTER_MAX - 2, COUNTER_MAX - 1, COUNTER_MAX]
    with pytest.raises(LocalProtocolError, match=r"^the frame counter is used up$"):
        frames(conn)  # (years of frames later) never a wrapped or out-of-range counter
    # no room left: refused at its first status, with the reason, and nothing raises
    for last in (COUNTER_MAX - 2, COUNTER_MAX):
        conn = ControllerConnection(2)
        conn.connected()
        events = conn.receive_data(status(last), 0.0)
        assert conn.state is C.REFUSED and not conn.can_send
        (refused,) = [e for e in events if isinstance(e, SuitRefused)]
        assert "frame counter is used up" in refused.reason
        assert "switched off and on" in refused.reason
        assert frames(conn) == [] and conn.stop_frame() is None


def test_a_suit_that_reports_another_program_is_reported_once() -> None:
    conn = in_state(C.ARMED)
    other = PulseProgram(9, 50, 200)
    assert ProgramConfirmed(other) in conn.receive_data(status(100, SuitState.ARMED, other), 0.0)
    assert conn.confirmed == other
    again = conn.receive_data(status(101, SuitState.ARMED, PulseProgram(9, 50, 200)), 0.1)
    assert not [e for e in again if isinstance(e, ProgramConfirmed)]


def test_after_a_reconnect_the_confirmation_clock_starts_again_and_the_program_goes_at_once() -> (
    None
):
    conn = in_state(C.ARMED)
    conn.set_program(85, 450, now=3.0)
    assert SetProgram in [type(f) for f in frames(conn, 3.0)]
    conn.lost()
    conn.connected()
    conn.receive_data(status(50), 3.02)  # linked again 20 ms later
    assert SetProgram in [type(f) for f in frames(conn, 3.03)]  # at once, not after 0.1 s
    assert conn.tick(3.02 + PROGRAM_CONFIRM_TIMEOUT_S - 0.01) == []  # counted from the status
    assert conn.tick(3.03 + PROGRAM_CONFIRM_TIMEOUT_S) != []


def test_last_counter_is_the_counter_of_the_last_frame_numbered() -> None:
    conn = ControllerConnection(2)
    conn.connected()
    conn.receive_data(status(5), 0.0)  # numbered from 6 on
    assert conn.last_counter == 5  # nothing numbered yet: the suit's own counter
    sent = frames(conn)  # ARM 6, SET_LEVELS 7
    assert [f.counter for f in sent] == [6, 7] and conn.last_counter == 7
    stop = conn.stop_frame()
    assert stop is not None and decode_control(stop).counter == conn.last_counter == 8


# -- a slow controller is not a suit holding another key (review 5, M1) ------------------
def made(
    counter: int, at: float, state: SuitState = SuitState.IDLE, faults: Faults = Faults.NONE
) -> bytes:
    """A status the suit made at `at` s by its own clock (its clock = the controller's here)."""
    return encode_status(
        StatusReport(
            counter, round(at * 1000), state, 90, faults, POWER_ON_PROGRAM, 0, (0.0,), (800.0,)
        )
    )


KEY = bytes(range(32))


def linked(signed: bool) -> ControllerConnection:
    conn = ControllerConnection(1, key=KEY, key_id=1) if signed else ControllerConnection(1)
    conn.connected()
    assert SuitReady(7) in conn.receive_data(made(7, 0.0), 0.0)  # read at once
    return conn


@pytest.mark.parametrize("signed", [False, True])
def test_a_late_arm_with_reports_queued_meanwhile_is_not_taken_for_a_key(signed: bool) -> None:
    """The controller stalls 1 s: its ARM goes out late, at 1.0, and the reports the suit
    made meanwhile (before the ARM could arrive) are read after it. They say nothing of a
    key (they were made before the ARM); the trainer is told the controller is late."""
    conn = linked(signed)
    arm = decode_control(conn.frames_to_send(bytes([20]), 1.0)[0], {1: KEY})
    assert isinstance(arm, Arm) and conn.state is C.ARMED
    flag = Faults.BAD_FRAME if signed else Faults.NONE  # e.g. a corrupt frame long ago
    told = []
    for i, at in enumerate((0.2, 0.4, 0.6, 0.8, 1.0)):
        told += conn.receive_data(made(7, at, faults=flag), 1.05 + 0.01 * i)
    assert told == [ControllerLate(pytest.approx(0.85))]  # once for the spell, not per report
    assert conn.state is C.ARMED and conn.refusal is None
    assert conn.receive_data(made(arm.counter, 1.2, SuitState.ARMED), 1.2) == []
    assert conn.state is C.ARMED and conn.stop_frame() is not None


def test_reports_made_after_the_arm_could_arrive_are_the_evidence() -> None:
    """Only reports the suit made ARM_ARRIVAL_S or more after our ARM count, however late
    they are read; one made just before does not."""
    conn = linked(signed=False)
    frames(conn, 0.0)
    t0 = ARM_ARRIVAL_S
    assert conn.receive_data(made(7, t0 - 0.01), t0 - 0.01) == []
    for i in range(NOT_HEARD_REPORTS - 1):
        assert conn.receive_data(made(7, t0 + 0.2 * i), t0 + 0.2 * i) == []
    last = t0 + 0.2 * (NOT_HEARD_REPORTS - 1)
    events = conn.receive_data(made(7, last), last + 2 * CONTROLLER_LATE_S)  # read late
    assert events == [ControllerLate(pytest.approx(2 * CONTROLLER_LATE_S)), SuitKeyMismatch(False)]
    assert conn.state is C.REFUSED


def test_a_suit_that_took_our_unsigned_frames_holds_no_key_on_that_link() -> None:
    """An enrolled suit never takes an unsigned frame: one that counted our unsigned ARM
    holds no key, and later reports that miss a re-ARM only mean it is late. A new link
    starts again from nothing (the suit may have been enrolled meanwhile)."""
    conn = linked(signed=False)
    arm = frames(conn, 0.0)[0]
    assert conn.receive_data(made(arm.counter, 0.1, SuitState.WATCHDOG), 0.1) == [
        SuitStoppedItself(SuitState.WATCHDOG)
    ]
    rearm = frames(conn, 0.2)[0]
    assert isinstance(rearm, Arm)
    for i in range(NOT_HEARD_REPORTS + 3):  # made long after the re-ARM, still not counting it
        t = 1.0 + 0.2 * i
        assert conn.receive_data(made(rearm.counter - 1, t, SuitState.WATCHDOG), t) == []
    assert conn.state is C.ARMED
    conn.lost()
    conn.connected()
    assert SuitReady(rearm.counter + 1) in conn.receive_data(made(rearm.counter + 1, 10.0), 10.0)
    frames(conn, 10.0)
    events: list = []
    for i in range(NOT_HEARD_REPORTS):
        t = 10.0 + ARM_ARRIVAL_S + 0.2 * i
        events += conn.receive_data(made(rearm.counter + 1, t), t)
    assert events == [SuitKeyMismatch(False)]


def test_the_controller_is_late_from_a_half_second_and_told_once_per_spell() -> None:
    conn = linked(signed=False)
    assert conn.receive_data(made(7, 1.0), 1.0 + CONTROLLER_LATE_S - 0.001) == []
    assert conn.receive_data(made(7, 2.0), 2.0 + CONTROLLER_LATE_S) == [
        ControllerLate(pytest.approx(CONTROLLER_LATE_S))
    ]
    assert conn.receive_data(made(7, 2.2), 3.0) == []  # the same spell: told once
    assert conn.receive_data(made(7, 3.2), 3.2) == []  # on time: the spell is over
    assert conn.receive_data(made(7, 3.4), 4.0) == [ControllerLate(pytest.approx(0.6))]
    conn.lost()
    conn.connected()  # a new link: its clock is measured again (the suit may have restarted)
    assert ControllerLate not in map(type, conn.receive_data(made(7, 0.1), 9.0))


def test_a_suit_stopped_by_a_gap_in_our_frames_is_told_as_the_controller_late() -> None:
    """The suit's WATCHDOG after the controller sent nothing for longer than the suit's
    watchdog (250 ms) is the controller's lateness; after regular turns it is the radio's."""
    conn = linked(signed=False)
    arm = frames(conn, 0.0)[0]
    for t in (0.025, 0.05, 0.3):  # a gap of exactly the watchdog: not more than it
        frames(conn, t)
    assert conn.receive_data(made(arm.counter + 3, 0.35, SuitState.WATCHDOG), 0.35) == [
        SuitStoppedItself(SuitState.WATCHDOG)
    ]
    rearm = frames(conn, 0.4)[0]
    assert isinstance(rearm, Arm)
    frames(conn, 0.425)
    frames(conn, 0.8)  # the engine stalled 375 ms
    frames(conn, 0.825)
    events = conn.receive_data(made(rearm.counter + 3, 0.85, SuitState.WATCHDOG), 0.85)
    assert events == [
        SuitStoppedItself(SuitState.WATCHDOG),
        ControllerLate(pytest.approx(0.375), sending=True),
    ]
    again = frames(conn, 0.9)[0]  # the re-ARM starts the watch again
    conn.hold()
    conn.release()
    assert isinstance(frames(conn, 5.0)[0], Arm)  # held for seconds on purpose: an ARM first
    frames(conn, 5.025)
    late = conn.receive_data(made(again.counter + 3, 5.05, SuitState.WATCHDOG), 5.05)
    assert late == [SuitStoppedItself(SuitState.WATCHDOG)]  # the hold's pause does not count


def test_a_report_is_dated_by_the_suits_clock_from_its_quickest_report() -> None:
    """`_made_at`: the suit's clock (ms, not whole seconds) plus the least (read - clock)
    of the link's reports; a later report read quicker moves that offset down."""
    conn = ControllerConnection(1)
    conn.connected()
    at = conn._made_at
    assert at(
        StatusReport(
            7, 100_000, SuitState.IDLE, 90, Faults.NONE, POWER_ON_PROGRAM, 0, (0.0,), (800.0,)
        ),
        5.0,
    ) == pytest.approx(5.0)
    late = StatusReport(
        7, 100_300, SuitState.IDLE, 90, Faults.NONE, POWER_ON_PROGRAM, 0, (0.0,), (800.0,)
    )
    assert at(late, 5.9) == pytest.approx(5.3)  # read 0.6 s late: dated when made
    quick = StatusReport(
        7, 100_600, SuitState.IDLE, 90, Faults.NONE, POWER_ON_PROGRAM, 0, (0.0,), (800.0,)
    )
    assert at(quick, 5.55) == pytest.approx(5.55)  # quicker than the first: the new offset
    assert at(late, 9.0) == pytest.approx(5.25)  # dated by that offset from now on


def test_a_report_made_six_tenths_of_a_second_after_the_arm_is_evidence() -> None:
    """The ARM may take up to half a second to arrive: reports the suit made 0.6, 0.8 and
    1.0 s after it that still do not count it refuse the suit (the number itself, not the
    constant, so a longer allowance is noticed)."""
    conn = linked(signed=False)
    frames(conn, 0.0)
    events: list = []
    for t in (0.6, 0.8, 1.0):
        events += conn.receive_data(made(7, t), t)
    assert events == [SuitKeyMismatch(False)]


def test_a_suit_that_went_idle_after_a_gap_in_our_frames_is_not_our_lateness() -> None:
    """Only a WATCHDOG after a gap longer than the suit's watchdog is the controller's
    lateness; a suit that reports IDLE (restarted) after the same gap is not."""
    conn = linked(signed=False)
    arm = frames(conn, 0.0)[0]
    frames(conn, 0.025)
    frames(conn, 0.6)  # a 575 ms gap
    events = conn.receive_data(made(arm.counter + 2, 0.65, SuitState.IDLE), 0.65)
    assert events == [SuitStoppedItself(SuitState.IDLE)]


def test_the_controller_late_event_is_a_fixed_record_of_reading_late_by_default() -> None:
    late = ControllerLate(0.6)
    assert late.sending is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        late.late_s = 0.0  # type: ignore[misc]
