"""The controller's end of one suit's protocol: every rule in one state table, no I/O.

Theory of operation
-------------------
`ControllerConnection` is to a suit what h11's `Connection` is to an HTTP
peer: it never touches a link. The driver tells it what happened
(`connected`, `lost`, `receive_data`, the engine's `set_program`, `hold`,
`release`) and asks it what to send (`frames_to_send`, `stop_frame`); it
answers with bytes and with small frozen event dataclasses for the engine.

The link-level rules are `TRANSITIONS`, one table of (state, event) -> state:

* after connecting it sends nothing but STOP_ALL until the suit's first
  status, then numbers its frames from the counter the suit reports + 1
  (and never below its own: the counter only grows);
* a version 1 status, or a link whose ATT payload is too small for
  version 2, refuses the suit: nothing at all is sent to it;
* ARM before levels; a fresh status (its counter at or after our last ARM)
  reporting WATCHDOG or IDLE means the suit stopped by itself: ARM again,
  and the engine ramps the client up from zero (`SuitStoppedItself`).

Two latches sit beside the table:

* **hold** (a stop): only STOP_ALL goes out, across reconnects, until
  `release`, after which the suit is armed again before any level;
* **program confirmation**: `set_program` assigns the next program id; its
  SET_PROGRAM is re-sent every `PROGRAM_RESEND_S` until a status reports
  that id, frequency and pulse width. Until then level frames carry the id
  the suit last confirmed and `cap_programs` names both programs, so the
  engine caps at the lower of the two. After `PROGRAM_CONFIRM_TIMEOUT_S`
  unconfirmed, `ProgramUnconfirmed` is emitted once and `program_overdue`
  is true: the engine holds the client at zero until the suit confirms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from suit_controller.protocol.codec import decode_status, encode, encode_levels
from suit_controller.protocol.errors import LocalProtocolError, UnsupportedVersion
from suit_controller.protocol.frames import (
    COUNTER_MAX,
    REQUIRED_ATT_MTU,
    REQUIRED_ATT_PAYLOAD,
    Arm,
    Faults,
    PulseProgram,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
)

#: SET_PROGRAM is re-sent this often until the suit's status confirms it, s.
PROGRAM_RESEND_S = 0.1
#: A program not confirmed within this time holds the client at zero, s.
PROGRAM_CONFIRM_TIMEOUT_S = 1.0
#: The most frames one turn numbers (ARM, SET_PROGRAM, SET_LEVELS): a suit that leaves
#: the counter less room than that is refused (its counter is used up).
TURN_FRAMES = 3


class ConnectionState(Enum):
    """Where the controller stands with one suit."""

    DISCONNECTED = "disconnected"  # no link
    AWAITING_STATUS = "awaiting status"  # linked; only STOP_ALL until the first status
    NEEDS_ARM = "needs arm"  # the suit's counter is known; ARM goes before any level
    ARMED = "armed"  # levels go out
    REFUSED = "refused"  # a suit we cannot speak to: nothing goes out


class Input(Enum):
    """What can happen to a connection (the columns of `TRANSITIONS`)."""

    CONNECTED = "connected"
    LOST = "lost"
    STATUS = "status"  # a version 2 status
    OLD_VERSION = "old version"  # a status of another protocol version
    NOT_HEARD = "not heard"  # the suit's status shows it refuses our frames (another key)
    LINK_TOO_SMALL = "link too small"  # ATT payload below version 2's minimum
    ARM_SENT = "arm sent"
    STOPPED_ITSELF = "stopped itself"  # a fresh WATCHDOG or IDLE report while armed
    RELEASED = "released"  # a stop reset: arm again
    COUNTER_USED_UP = "counter used up"  # no room left for a turn's frames


C, On = ConnectionState, Input
#: (state, input) -> next state. A missing entry means: stay.
TRANSITIONS: dict[tuple[ConnectionState, Input], ConnectionState] = {
    (C.DISCONNECTED, On.CONNECTED): C.AWAITING_STATUS,
    (C.DISCONNECTED, On.LINK_TOO_SMALL): C.REFUSED,
    (C.AWAITING_STATUS, On.STATUS): C.NEEDS_ARM,
    (C.AWAITING_STATUS, On.OLD_VERSION): C.REFUSED,
    (C.AWAITING_STATUS, On.NOT_HEARD): C.REFUSED,
    (C.AWAITING_STATUS, On.COUNTER_USED_UP): C.REFUSED,
    (C.AWAITING_STATUS, On.LOST): C.DISCONNECTED,
    (C.NEEDS_ARM, On.ARM_SENT): C.ARMED,
    (C.NEEDS_ARM, On.OLD_VERSION): C.REFUSED,
    (C.NEEDS_ARM, On.NOT_HEARD): C.REFUSED,
    (C.NEEDS_ARM, On.LOST): C.DISCONNECTED,
    (C.ARMED, On.STOPPED_ITSELF): C.NEEDS_ARM,
    (C.ARMED, On.RELEASED): C.NEEDS_ARM,
    (C.ARMED, On.OLD_VERSION): C.REFUSED,
    (C.ARMED, On.NOT_HEARD): C.REFUSED,
    (C.ARMED, On.LOST): C.DISCONNECTED,
    (C.REFUSED, On.LOST): C.DISCONNECTED,
}


#: Why a suit that does not hear this controller is refused (the driver's event message).
KEY_MISMATCH_TEXT = (
    "the suit does not accept this studio's key: it was factory reset, enrolled in another "
    "studio, or this studio's records of it are lost or old"
)
NOT_ENROLLED_HERE_TEXT = (
    "the suit is enrolled (it holds a key) but this studio's records have no key for it"
)


# -- events for the engine ----------------------------------------------------------------
@dataclass(frozen=True)
class SuitReady:
    """The suit's first status since connecting: its counter is known, frames may go out."""

    counter: int


@dataclass(frozen=True)
class SuitRefused:
    """The suit cannot be driven (old protocol version, too small a link): nothing is sent."""

    reason: str


@dataclass(frozen=True)
class SuitKeyMismatch:
    """The suit does not act on this controller's frames: reports the suit made (by its own
    clock) well after our ARM could reach it keep a counter below that ARM (and flag
    BAD_FRAME when our frames are signed). It holds another key (reset, enrolled elsewhere,
    or the records lost or restored from an old copy): nothing is sent."""

    signed: bool


@dataclass(frozen=True)
class ControllerLate:
    """The controller, not the suit, is falling behind (an overloaded computer): it read a
    status report `late_s` seconds after the suit made it (its clock says so; once per
    spell of lateness), or (`sending`) the suit stopped by itself (WATCHDOG) after the
    controller had sent it nothing for `late_s` seconds, longer than its watchdog."""

    late_s: float
    sending: bool = False


#: Status reports after an ARM that still do not count it before the suit is taken as
#: not hearing this controller (at least 400 ms: status comes at least every 200 ms).
NOT_HEARD_REPORTS = 3
#: How long after it is made an ARM may take to reach the suit (a write may take up to the
#: driver's send timeout, 0.5 s, before the link counts as lost), s. A report the suit made
#: (by its own clock) sooner than this after our ARM is no evidence against the ARM.
ARM_ARRIVAL_S = 0.5
#: A report read this long after the suit made it means the controller is behind, s: twice
#: the suit's watchdog (250 ms), so the suits are already stopping by themselves.
CONTROLLER_LATE_S = 0.5
#: The suit's watchdog (protocol.md: 250 ms): a longer gap between our turns stops it, s.
SUIT_WATCHDOG_S = 0.25


@dataclass(frozen=True)
class SuitStoppedItself:
    """A fresh status reports WATCHDOG or IDLE: the suit is re-armed; ramp the client from zero."""

    state: SuitState


@dataclass(frozen=True)
class ProgramConfirmed:
    """The suit's status confirms the program it now applies: recompute its caps."""

    program: PulseProgram


@dataclass(frozen=True)
class ProgramUnconfirmed:
    """A program unconfirmed after PROGRAM_CONFIRM_TIMEOUT_S: hold the client at zero."""

    program: PulseProgram
    waited_s: float


@dataclass(frozen=True)
class SuitClamped:
    """The suit's own limits acted (LEVEL_CLAMPED / CHARGE_CLAMPED newly set): it was asked
    for more than it allows. Defence in depth held; the controller's caps did not."""

    faults: Faults


Event = (
    SuitReady
    | SuitRefused
    | SuitKeyMismatch
    | ControllerLate
    | SuitStoppedItself
    | ProgramConfirmed
    | ProgramUnconfirmed
    | SuitClamped
)
#: Fault flags that mean the suit's own limits had to act.
CLAMPS = Faults.LEVEL_CLAMPED | Faults.CHARGE_CLAMPED


@dataclass
class SuitView:
    """What the controller last heard from a suit, merged from status notifications."""

    n_channels: int
    state: SuitState | None = None
    battery_pct: int | None = None
    faults: Faults = Faults.NONE
    counter: int | None = None
    clock_ms: int | None = None
    program: PulseProgram | None = None
    levels_mA: list[float] = field(default_factory=list)
    impedance_ohm: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.levels_mA = [0.0] * self.n_channels
        self.impedance_ohm = [None] * self.n_channels

    def merge(self, report: StatusReport) -> None:
        """Fold one (possibly partial) status report in; channels beyond the suit are ignored."""
        self.state, self.battery_pct, self.faults = report.state, report.battery_pct, report.faults
        self.counter, self.clock_ms, self.program = report.counter, report.clock_ms, report.program
        for i, (lvl, imp) in enumerate(zip(report.levels_mA, report.impedance_ohm, strict=True)):
            ch = report.first_channel + i
            if ch < self.n_channels:
                self.levels_mA[ch] = lvl
                self.impedance_ohm[ch] = imp


class ControllerConnection:
    """The controller's side of one suit: the rules, the counter, the program handshake."""

    def __init__(self, n_channels: int, *, key: bytes | None = None, key_id: int = 0) -> None:
        """`key`/`key_id`: the suit's enrolled key; every control frame is signed with it."""
        self.view = SuitView(n_channels)
        self._key, self._key_id = key, key_id
        self.state = ConnectionState.DISCONNECTED
        #: A stop holds the suit: nothing but STOP_ALL until `release`.
        self.held = False
        #: The program the suit's status last confirmed (None before the first status).
        self.confirmed: PulseProgram | None = None
        #: The program asked for and not yet confirmed.
        self.pending: PulseProgram | None = None
        #: The pulses the engine wants, (frequency Hz, pulse width µs); None before any.
        self.wanted: tuple[int, int] | None = None
        self.refusal: str | None = None
        self._next_counter = 1
        self._arm_counter: int | None = None
        self._pending_since: float | None = None
        self._program_sent_at: float | None = None
        self._overdue_told = False
        self._last_id = 0
        self._unheard = 0
        self._arm_at = 0.0
        #: The least (time read - suit clock) of this link's reports: the suit's clock in
        #: controller time, as of a report read at once (None before the first report).
        self._clock_offset: float | None = None
        #: The suit took one of our unsigned frames on this link: it holds no key.
        self._took_unsigned = False
        self._late = False
        #: The controller's last turn that sent frames, and the longest gap between turns
        #: while armed since the last ARM (a suit's WATCHDOG then is our lateness; a hold,
        #: a reconnect or a restart leads to an ARM first, so their pauses never count).
        self._last_turn: float | None = None
        self._longest_gap = 0.0

    # -- the table ------------------------------------------------------------------------
    def _go(self, what: Input) -> None:
        self.state = TRANSITIONS.get((self.state, what), self.state)

    @property
    def last_counter(self) -> int:
        """The counter of the last frame numbered (the suit's status echoes it once taken)."""
        return self._next_counter - 1

    def _counter(self) -> int:
        counter = self._next_counter
        if counter > COUNTER_MAX:
            raise LocalProtocolError("the frame counter is used up")  # 3.4 years at 40 Hz
        self._next_counter += 1
        return counter

    # -- what happened --------------------------------------------------------------------
    def connected(self, att_payload: int = REQUIRED_ATT_PAYLOAD) -> list[Event]:
        """The link is up (with this ATT payload). Refuses a link too small for version 2.

        A connection that was not told of the old link's loss takes it as lost first.
        """
        if self.state is not ConnectionState.DISCONNECTED:
            self._go(Input.LOST)
        self.refusal = None
        if att_payload < REQUIRED_ATT_PAYLOAD:
            self._go(Input.LINK_TOO_SMALL)
            self.refusal = (
                f"the link negotiated an ATT payload of {att_payload} bytes; suit protocol "
                f"version 2 needs an ATT MTU of at least {REQUIRED_ATT_MTU}"
            )
            return [SuitRefused(self.refusal)]
        self._go(Input.CONNECTED)
        self._unheard = 0
        self._clock_offset = self._arm_counter = None  # an ARM of this link counts, no other
        self._took_unsigned = self._late = False
        return []

    def lost(self) -> None:
        """The link dropped."""
        self._go(Input.LOST)

    def hold(self) -> None:
        """A stop: from now on only STOP_ALL goes out, until `release`."""
        self.held = True

    def release(self) -> None:
        """The stop was reset: ARM again before the next levels."""
        self.held = False
        self._go(Input.RELEASED)

    def set_program(self, frequency_hz: int, pulse_width_us: int, now: float) -> None:
        """The engine wants these pulses (whole hertz and microseconds) from now on."""
        if type(frequency_hz) is not int or type(pulse_width_us) is not int:
            raise LocalProtocolError("a program on the wire is whole hertz and microseconds")
        self.wanted = (frequency_hz, pulse_width_us)
        self._ask(now)

    def _ask(self, now: float) -> None:
        """Start a SET_PROGRAM handshake if the suit does not apply (or await) what is wanted."""
        want = self.wanted
        if want is None:
            return
        if self.confirmed is not None and self.confirmed.pulses == want:
            if self.pending is not None:
                self._confirm()  # back to what the suit applies: nothing to change
            return
        if self.pending is not None and self.pending.pulses == want:
            return
        avoid = {self._last_id, self.confirmed.program_id if self.confirmed else 0}
        pid = self._last_id
        while pid in avoid or pid == 0:
            pid = pid % 255 + 1
        self._last_id = pid
        self.pending = PulseProgram(pid, *want)
        self._pending_since = now
        self._program_sent_at = None
        self._overdue_told = False

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """A status notification. Raises RemoteProtocolError for a malformed one.

        A status of another protocol version refuses the suit (`SuitRefused`)
        instead of raising.
        """
        if self.state in (ConnectionState.DISCONNECTED, ConnectionState.REFUSED):
            return []  # nothing to hear from a suit we are not connected to or refused
        try:
            report = decode_status(data)
        except UnsupportedVersion as e:
            self._go(Input.OLD_VERSION)
            self.refusal = str(e)
            return [SuitRefused(self.refusal)]
        clamped_before = self.view.faults & CLAMPS
        self.view.merge(report)
        events: list[Event] = []
        made = self._made_at(report, now)
        if now - made >= CONTROLLER_LATE_S:
            if not self._late:
                self._late = True
                events.append(ControllerLate(now - made))
        else:
            self._late = False
        if report.faults & CLAMPS & ~clamped_before:
            events.append(SuitClamped(report.faults & CLAMPS))
        if self.state is ConnectionState.AWAITING_STATUS:
            self._next_counter = max(self._next_counter, report.counter + 1)
            if self._next_counter + TURN_FRAMES - 1 > COUNTER_MAX:
                # e.g. anyone's STOP_ALL numbered 0xFFFFFFFF on an unenrolled suit: the suit
                # drops every frame but STOP_ALL from now on (replay refusal holds); say so
                self._go(Input.COUNTER_USED_UP)
                self.refusal = (
                    f"its frame counter is used up (it last accepted frame {report.counter}, "
                    "perhaps one that did not come from this controller): it obeys nothing but "
                    "a stop until it is switched off and on"
                )
                return [*events, SuitRefused(self.refusal)]
            self._go(Input.STATUS)
            if self.pending is not None:
                self._pending_since = now  # the confirmation clock runs while linked
                self._program_sent_at = None
            events.append(SuitReady(report.counter))
        changed = report.program != self.confirmed
        self.confirmed = report.program
        if self.pending is not None and report.program == self.pending:
            self._confirm()
            changed = True
        if changed:
            events.append(ProgramConfirmed(report.program))
        self._ask(now)  # a suit that lost its program (power cycle) is asked again
        fresh = self._arm_counter is not None and report.counter >= self._arm_counter
        if fresh and self._key is None:
            self._took_unsigned = True
        mismatch = self._not_heard(report, fresh, made)
        if mismatch is not None:
            return [*events, mismatch]
        if (
            self.state is ConnectionState.ARMED
            and fresh
            and report.state in (SuitState.WATCHDOG, SuitState.IDLE)
        ):
            self._go(Input.STOPPED_ITSELF)
            events.append(SuitStoppedItself(report.state))
            if report.state is SuitState.WATCHDOG and self._longest_gap > SUIT_WATCHDOG_S:
                events.append(ControllerLate(self._longest_gap, sending=True))
        return events

    def _made_at(self, report: StatusReport, now: float) -> float:
        """When the suit made this report, in controller time, from its own clock.

        The suit's clock plus the least (read - clock) of this link's reports: exact
        up to the quickest report's travel time; never later than `now`. A report that
        waited to be read (the controller behind) is dated when the suit made it. (A
        clock that wraps, after 49.7 days, dates reports early: no evidence, never false.)
        """
        lag = now - report.clock_ms / 1000
        if self._clock_offset is None or lag < self._clock_offset:
            self._clock_offset = lag
        return report.clock_ms / 1000 + self._clock_offset

    def _not_heard(self, report: StatusReport, fresh: bool, made: float) -> SuitKeyMismatch | None:
        """Count reports after our ARM that do not count it; refuse the suit after a few.

        Only evidence of a key counts: a report the suit made after our ARM could reach
        it (`ARM_ARRIVAL_S`, by the suit's clock, however late the controller reads it),
        flagging BAD_FRAME when our frames are signed; and never on a link where the
        suit already took our unsigned frames (it holds no key: an ARM only late).
        """
        if self.state is not ConnectionState.ARMED or fresh:
            self._unheard = 0
            return None
        signed = self._key is not None
        if self._took_unsigned or made < self._arm_at + ARM_ARRIVAL_S:
            return None  # the suit holds no key, or made this before our ARM could arrive
        if signed and Faults.BAD_FRAME not in report.faults:
            return None  # a signed frame refused is flagged: this one was only late
        self._unheard += 1
        if self._unheard < NOT_HEARD_REPORTS:
            return None
        self._go(Input.NOT_HEARD)
        self.refusal = KEY_MISMATCH_TEXT if signed else NOT_ENROLLED_HERE_TEXT
        return SuitKeyMismatch(signed)

    def _confirm(self) -> None:
        self.pending = None
        self._pending_since = self._program_sent_at = None
        self._overdue_told = False

    def tick(self, now: float) -> list[Event]:
        """Time passes: a program unconfirmed for too long is reported (once)."""
        if (
            self.pending is None
            or self._pending_since is None
            or self._overdue_told
            or self.state not in (ConnectionState.NEEDS_ARM, ConnectionState.ARMED)
            or now - self._pending_since < PROGRAM_CONFIRM_TIMEOUT_S
        ):
            return []
        self._overdue_told = True
        return [ProgramUnconfirmed(self.pending, now - self._pending_since)]

    # -- what to send -----------------------------------------------------------------------
    @property
    def can_send(self) -> bool:
        """True when level frames go out (the suit is known and nothing holds it)."""
        return not self.held and self.state in (ConnectionState.NEEDS_ARM, ConnectionState.ARMED)

    @property
    def program_overdue(self) -> bool:
        """True once the pending program went unconfirmed too long: hold the client at zero."""
        return self._overdue_told and self.pending is not None

    def cap_programs(self) -> tuple[PulseProgram, ...]:
        """The programs S1 caps must respect now: the confirmed one and the pending one."""
        return tuple(p for p in (self.confirmed, self.pending) if p is not None)

    def frames_to_send(self, codes: bytes | None, now: float) -> list[bytes]:
        """The frames for this turn: ARM if due, SET_PROGRAM if due, then `codes` as levels.

        `codes` are level codes computed for `cap_programs()`; they go out tagged
        with the confirmed program's id, so a suit applying another program drops them.
        """
        if not self.can_send or self.confirmed is None:
            return []
        out = []
        if self.state is ConnectionState.ARMED and self._last_turn is not None:
            self._longest_gap = max(self._longest_gap, now - self._last_turn)
        self._last_turn = now
        if self.state is ConnectionState.NEEDS_ARM:
            counter = self._counter()
            out.append(encode(Arm(counter), self._key, self._key_id))
            self._arm_counter = counter
            self._arm_at = now
            self._longest_gap = 0.0
            self._go(Input.ARM_SENT)
        p = self.pending
        if p is not None and (
            self._program_sent_at is None or now - self._program_sent_at >= PROGRAM_RESEND_S - 1e-9
        ):
            self._program_sent_at = now
            out.append(
                encode(
                    SetProgram(self._counter(), p.program_id, p.frequency_hz, p.pulse_width_us),
                    self._key,
                    self._key_id,
                )
            )
        if codes is not None:
            out.append(
                encode_levels(
                    self._counter(), self.confirmed.program_id, codes, self._key, self._key_id
                )
            )
        return out

    def stop_frame(self) -> bytes | None:
        """A STOP_ALL frame (None for a refused suit: nothing is sent to it, except a suit
        refused for holding another key: it gets an unsigned one).

        Allowed in every other state, even before the first status: a suit
        honours STOP_ALL whatever its counter.
        """
        if self.state is ConnectionState.REFUSED:
            if self._unheard < NOT_HEARD_REPORTS:
                return None
            # it holds another key: an unsigned STOP_ALL, which any suit honours
            return encode(StopAll(self._counter()))
        return encode(StopAll(self._counter()), self._key, self._key_id)
