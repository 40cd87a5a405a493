"""The simulated suit's firmware (protocol version 2): a table-driven state machine, pure.

Theory of operation
-------------------
The suit trusts nothing. Outputs are non-zero only in state ARMED, and only
after a valid SET_LEVELS frame for the active program. A control frame is
accepted only if its counter is greater than the last one accepted (the
suit remembers it across connections, until power-off); STOP_ALL is the
exception, honoured whatever its counter. Every level is clamped to the
suit's own maximum current and to its own charge limit at the pulse width it
applies (45 µC per phase, `channels.limits`): defence in depth, independent
of the controller's S1 caps, flagged LEVEL_CLAMPED / CHARGE_CLAMPED. A
SET_PROGRAM zeroes the outputs until levels for the new program id arrive;
levels for another program are dropped and flagged PROGRAM_MISMATCH. A
watchdog (S4) zeroes every output and enters WATCHDOG when no valid
SET_LEVELS, HEARTBEAT or ARM frame arrived for `watchdog_s`; STOP_ALL
zeroes every output and latches (S3). Both need an explicit ARM to
stimulate again. A corrupt frame is dropped and flagged; it never changes
an output.

All state transitions are in `TRANSITIONS`, so the rules can be read in one
place. The firmware also integrates what it delivered per channel (charge,
time on, peak, contractions), which the simulator reports as measured "at
the suit", and keeps its own clock (ms since power-on) for the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from channels.limits import CHARGE_PER_PHASE_MAX_UC, DEVICE_MAX_MA, LEVEL_STEP_MA, WATCHDOG_S
from sim.suit_auth import SuitAuth
from suit_controller.protocol import (
    POWER_ON_PROGRAM,
    REQUIRED_ATT_PAYLOAD,
    Arm,
    ControlFrame,
    Faults,
    FrameType,
    Heartbeat,
    PulseProgram,
    RemoteProtocolError,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
    crc16,
    decode_control,
    encode_status_chunks,
)
from suit_controller.protocol.frames import TAG_LEN, VERSION

#: A STOP_ALL frame's length: head 6, tag 8, CRC 2.
STOP_FRAME_LEN = 16

S, F = SuitState, FrameType
WATCHDOG_EXPIRED = "watchdog"
#: (state, event) -> next state. Events are frame types and the watchdog expiring.
#: A missing entry means: stay, ignore the frame. SET_PROGRAM never changes the state
#: (it changes the active program and zeroes the outputs, in any state).
StateTable = Mapping[tuple[SuitState, FrameType | str], SuitState]
TRANSITIONS: StateTable = {
    (S.IDLE, F.ARM): S.ARMED,
    (S.IDLE, F.STOP_ALL): S.STOPPED,
    (S.ARMED, F.SET_LEVELS): S.ARMED,
    (S.ARMED, F.STOP_ALL): S.STOPPED,
    (S.ARMED, F.ARM): S.ARMED,
    (S.ARMED, WATCHDOG_EXPIRED): S.WATCHDOG,
    (S.STOPPED, F.ARM): S.ARMED,
    (S.WATCHDOG, F.ARM): S.ARMED,
    (S.WATCHDOG, F.STOP_ALL): S.STOPPED,
}
#: Frames that feed the watchdog.
FEEDS_WATCHDOG = frozenset({F.SET_LEVELS, F.HEARTBEAT, F.ARM})
LOW_BATTERY_PCT = 15
#: Flags a status clears once it has reported them.
REPORTED_ONCE = Faults.BAD_FRAME | Faults.PROGRAM_MISMATCH
#: Flags cleared by ARM.
CLEARED_BY_ARM = Faults.WATCHDOG | Faults.LEVEL_CLAMPED | Faults.CHARGE_CLAMPED

_FRAME_TYPE: dict[type, FrameType] = {
    SetLevels: F.SET_LEVELS,
    SetProgram: F.SET_PROGRAM,
    StopAll: F.STOP_ALL,
    Heartbeat: F.HEARTBEAT,
    Arm: F.ARM,
}


def charge_limit_mA(pulse_width_us: float, limit_uC: float = CHARGE_PER_PHASE_MAX_UC) -> float:
    """The highest level the suit applies at this pulse width, on its 0.5 mA grid."""
    return (
        float(np.floor(limit_uC * 1000.0 / pulse_width_us / LEVEL_STEP_MA + 1e-9)) * LEVEL_STEP_MA
    )


def _unsigned_stop(data: bytes) -> bytes | None:
    """A well-formed STOP_ALL whose tag did not verify, as the same frame unsigned; else None."""
    raw = bytes(data)
    if len(raw) != STOP_FRAME_LEN or crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        return None
    if raw[0] != (VERSION << 4 | FrameType.STOP_ALL):
        return None
    body = raw[:5] + b"\x00" + bytes(TAG_LEN)
    return body + crc16(body).to_bytes(2, "little")


@dataclass
class ChannelTotals:
    """What one channel delivered, as measured by the suit."""

    charge_uC: float = 0.0
    stim_s: float = 0.0
    max_mA: float = 0.0
    contractions: int = 0


class SuitFirmware:
    """The device side of the protocol for one suit.

    `max_mA` and `charge_limit_uC` are the suit's own limits; `ignores_programs`
    simulates a broken firmware that accepts SET_PROGRAM but never applies it.
    """

    #: The state table this firmware runs (`sim.broken_firmware` changes it on purpose).
    transitions: ClassVar[StateTable] = TRANSITIONS

    def __init__(
        self,
        n_channels: int = 12,
        *,
        max_mA: float = DEVICE_MAX_MA,
        charge_limit_uC: float = CHARGE_PER_PHASE_MAX_UC,
        watchdog_s: float = WATCHDOG_S,
        contact_ohm: float = 800.0,
        power_on_s: float = 0.0,
        ignores_programs: bool = False,
    ) -> None:
        self.n_channels = n_channels
        self.max_mA = max_mA
        self.charge_limit_uC = charge_limit_uC
        self.watchdog_s = watchdog_s
        self.power_on_s = power_on_s
        self.ignores_programs = ignores_programs
        self.state = SuitState.IDLE
        self.applied_mA = np.zeros(n_channels)
        self.program = POWER_ON_PROGRAM
        self.impedance_ohm: list[float | None] = [contact_ohm] * n_channels
        self.battery_pct = 100
        self.faults = Faults.NONE
        #: The last control frame counter accepted (remembered across connections).
        self.last_counter = 0
        self.last_feed: float | None = None
        self.bad_frames = 0
        self.stale_frames = 0
        self.mismatched_frames = 0
        self.charge_clamps = 0
        self.watchdog_trips = 0
        self.charge_uC = np.zeros(n_channels)
        self.stim_s = np.zeros(n_channels)
        self.max_seen_mA = np.zeros(n_channels)
        #: the highest charge of one phase each output applied, at the active pulse width, µC
        self.max_uC_per_phase = np.zeros(n_channels)
        self.contractions = np.zeros(n_channels, dtype=np.int64)
        self._since = power_on_s
        self._last_levels: tuple[float, ...] | None = None  # the frame behind applied_mA
        self._last_clamped = False  # whether applying _last_levels was clamped
        #: Authentication (issue 18): the enrolled key; see sim/suit_auth.py.
        self.auth = SuitAuth()

    @property
    def frequency_hz(self) -> int:
        """Active frequency, Hz."""
        return self.program.frequency_hz

    @property
    def pulse_width_us(self) -> int:
        """Active pulse width, µs."""
        return self.program.pulse_width_us

    @property
    def charge_limit_mA(self) -> float:
        """The highest level the suit applies at its active pulse width, mA."""
        return charge_limit_mA(self.pulse_width_us, self.charge_limit_uC)

    # -- time and accounting -------------------------------------------------------------
    @property
    def watchdog_deadline(self) -> float | None:
        """When the watchdog trips if no frame feeds it (None when it cannot trip)."""
        if self.state is not SuitState.ARMED or self.last_feed is None:
            return None
        return self.last_feed + self.watchdog_s

    def clock_ms(self, now: float) -> int:
        """The suit's own clock: ms since power-on, u32.

        Whole ms, rounded down from µs (as the C core's binding does), so 1.941 s
        held as 1.94099999… is 1941 ms, not 1940.
        """
        return (round((now - self.power_on_s) * 1_000_000) // 1000) & 0xFFFFFFFF

    def _account(self, now: float) -> None:
        dt = now - self._since
        if dt > 0 and self.applied_mA.any():  # outputs at zero add nothing: skip the arithmetic
            on = self.applied_mA > 0
            self.stim_s += on * dt
            self.charge_uC += (
                self.applied_mA * self.pulse_width_us / 1000.0 * self.frequency_hz * dt
            )
        self._since = max(self._since, now)

    def _set_outputs(self, levels: np.ndarray, now: float) -> None:
        self._account(now)
        rising = (levels > 0) & (self.applied_mA <= 0)
        self.contractions += rising
        self.applied_mA = levels
        np.maximum(self.max_seen_mA, levels, out=self.max_seen_mA)
        phase_uC = levels * (self.pulse_width_us / 1000.0)
        np.maximum(self.max_uC_per_phase, phase_uC, out=self.max_uC_per_phase)

    def _zero(self, now: float) -> None:
        self._last_levels = None
        self._account(now)
        if self.applied_mA.any():  # zeros start no contraction and raise no peak
            self.applied_mA = np.zeros(self.n_channels)

    def check_watchdog(self, now: float) -> bool:
        """Trip the watchdog if its time is up; True if it tripped now."""
        deadline = self.watchdog_deadline
        if deadline is None or now < deadline:
            return False
        self._transition(WATCHDOG_EXPIRED, deadline)  # a hardware timer fires on time
        self.faults |= Faults.WATCHDOG
        self.watchdog_trips += 1
        return True

    def totals(self, now: float) -> list[ChannelTotals]:
        """Per-channel totals up to `now`."""
        self._account(now)
        return [
            ChannelTotals(
                float(self.charge_uC[i]),
                float(self.stim_s[i]),
                float(self.max_seen_mA[i]),
                int(self.contractions[i]),
            )
            for i in range(self.n_channels)
        ]

    # -- frames --------------------------------------------------------------------------
    def receive(self, data: bytes, now: float, *, stop_char: bool = False) -> ControlFrame | None:
        """Handle one control frame's bytes; the frame if it was accepted, else None.

        A corrupt frame is dropped and flagged; a stale one (counter not above the
        last accepted) is dropped silently, except STOP_ALL, which is always honoured.
        `stop_char`: the bytes came on the stop characteristic, where only a frame
        signed with the suit's key moves the counter (as the C core: an open suit's
        counter is never moved there, so anyone's stop cannot lock the studio out).
        """
        self.check_watchdog(now)
        try:
            frame = decode_control(data, self.auth.keys)
        except RemoteProtocolError:
            self.bad_frames += 1
            self.faults |= Faults.BAD_FRAME
            return None
        kind = _FRAME_TYPE[type(frame)]
        signed = data[5] != 0  # the key id (decode_control verified its tag)
        if not self.auth.may_act(data[5], kind is FrameType.STOP_ALL):
            self.auth.refused_frames += 1
            return None  # an enrolled suit acts only on its studio's frames
        fresh = frame.counter > self.last_counter
        if not fresh and kind is not FrameType.STOP_ALL:
            self.stale_frames += 1
            return None  # delayed or replayed: a newer frame already arrived
        if fresh and (signed or not (self.auth.enrolled or stop_char)):
            self.last_counter = frame.counter  # an unsigned STOP_ALL never moves it
        if kind in FEEDS_WATCHDOG:
            self.last_feed = now
        if isinstance(frame, SetProgram):
            self._set_program(frame.program, now)
            return frame
        before = self.state
        self._transition(kind, now)
        if kind is FrameType.ARM and before is not SuitState.ARMED:
            self.faults &= ~CLEARED_BY_ARM
        if isinstance(frame, SetLevels) and self.state is SuitState.ARMED:
            if frame.program_id != self.program.program_id:
                self.mismatched_frames += 1
                self.faults |= Faults.PROGRAM_MISMATCH
            elif frame.levels_mA != self._last_levels:
                self._last_levels = frame.levels_mA
                self._apply_levels(frame.levels_mA, now)
            elif self._last_clamped:  # the same levels again: clamped again, counted per frame
                self.charge_clamps += 1
        return frame

    def receive_stop(self, data: bytes, now: float) -> bool:
        """Bytes written to the stop characteristic (anyone may): True if they stopped the suit.

        Only a well-formed STOP_ALL acts, whatever its counter, key id and tag
        (anyone may stop: a tag under a key the suit does not hold still stops);
        it never moves the counter unless signed with the suit's key.
        """
        try:
            frame = decode_control(data, self.auth.keys)
        except RemoteProtocolError:
            unsigned = _unsigned_stop(data)
            if unsigned is None:
                self.bad_frames += 1
                self.faults |= Faults.BAD_FRAME
                return False
            data, frame = unsigned, decode_control(unsigned)
        if not isinstance(frame, StopAll):
            self.auth.refused_frames += 1
            return False
        return self.receive(data, now, stop_char=True) is not None

    def _set_program(self, program: PulseProgram, now: float) -> None:
        if self.ignores_programs or program == self.program:
            return  # a repeat of the active program changes nothing
        self._zero(now)  # zero until levels for the new program
        self.program = program

    def _transition(self, event: FrameType | str, now: float) -> None:
        self.state = self.transitions.get((self.state, event), self.state)
        if self.state is not SuitState.ARMED:
            self._zero(now)

    def _apply_levels(self, levels_mA: tuple[float, ...], now: float) -> None:
        req = np.zeros(self.n_channels)
        n = min(len(levels_mA), self.n_channels)
        req[:n] = levels_mA[:n]
        if (req > self.max_mA).any():  # methods, not np.any: this runs per level change
            self.faults |= Faults.LEVEL_CLAMPED
        out = np.minimum(req, self.max_mA)
        limit = self.charge_limit_mA
        self._last_clamped = bool((out > limit).any())
        if self._last_clamped:
            self.faults |= Faults.CHARGE_CLAMPED
            self.charge_clamps += 1
            out = np.minimum(out, limit)
        for ch, imp in enumerate(self.impedance_ohm):
            if imp is None:
                out[ch] = 0.0  # no contact: the current cannot flow
        self._set_outputs(out, now)

    def disconnected(self) -> None:
        """The link dropped: nothing changes by itself (the watchdog stops the outputs)."""

    # -- the body and the hardware -------------------------------------------------------
    def detach(self, channel: int, now: float) -> None:
        """An electrode comes loose: no current on that channel, shown in the status."""
        self.impedance_ohm[channel] = None
        self._last_levels = None
        self.faults |= Faults.ELECTRODE_OPEN
        out = self.applied_mA.copy()
        out[channel] = 0.0
        self._set_outputs(out, now)

    def attach(self, channel: int, ohm: float = 800.0) -> None:
        """The electrode has contact again (levels resume with the next frame)."""
        self.impedance_ohm[channel] = ohm
        self._last_levels = None
        if all(i is not None for i in self.impedance_ohm):
            self.faults &= ~Faults.ELECTRODE_OPEN

    def set_battery(self, pct: int) -> None:
        self.battery_pct = max(0, min(100, pct))
        if self.battery_pct < LOW_BATTERY_PCT:
            self.faults |= Faults.LOW_BATTERY
        else:
            self.faults &= ~Faults.LOW_BATTERY

    def status(self, now: float | None = None) -> StatusReport:
        """A whole-suit status report (the clock read at `now`, else at the last event)."""
        return StatusReport(
            self.last_counter,
            self.clock_ms(self._since if now is None else now),
            self.state,
            self.battery_pct,
            self.faults,
            self.program,
            0,
            tuple(self.applied_mA.tolist()),  # Python floats, as float(v) each
            tuple(self.impedance_ohm),
        )

    def status_frames(
        self, att_payload: int = REQUIRED_ATT_PAYLOAD, now: float | None = None
    ) -> list[bytes]:
        """Status notifications that fit the link's ATT payload; clears the report-once flags."""
        frames = encode_status_chunks(self.status(now), att_payload)
        self.faults &= ~REPORTED_ONCE
        return frames
