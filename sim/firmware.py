"""The simulated suit's firmware: a table-driven state machine, pure (no I/O, no clock).

Theory of operation
-------------------
The suit trusts nothing. Outputs are non-zero only in state ARMED, and only
after a valid SET_LEVELS frame with a newer sequence number. Every level is
clamped to the suit's own maximum (defence in depth, independent of the
controller's S1 limits). A watchdog (S4) zeroes every output and enters
WATCHDOG when no valid SET_LEVELS or HEARTBEAT frame arrived for
`watchdog_s`; STOP_ALL zeroes every output and latches (S3). Both need an
explicit ARM to stimulate again. A corrupt frame is dropped and flagged; it
never changes an output.

All transitions are in `TRANSITIONS`, so the rules can be read in one place.
The firmware also integrates what it delivered per channel (charge, time on,
peak, contractions), which the simulator reports as measured "at the suit".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channels.limits import DEVICE_MAX_MA, WATCHDOG_S
from suit_controller.protocol import (
    DEFAULT_ATT_PAYLOAD,
    Arm,
    ControlFrame,
    Faults,
    FrameType,
    Heartbeat,
    RemoteProtocolError,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
    decode_control,
    encode_status_chunks,
    seq_newer,
)

S, F = SuitState, FrameType
WATCHDOG_EXPIRED = "watchdog"
#: (state, event) -> next state. Events are frame types and the watchdog expiring.
#: A missing entry means: stay, ignore the frame.
TRANSITIONS: dict[tuple[SuitState, FrameType | str], SuitState] = {
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

_FRAME_TYPE: dict[type, FrameType] = {
    SetLevels: F.SET_LEVELS,
    SetProgram: F.SET_PROGRAM,
    StopAll: F.STOP_ALL,
    Heartbeat: F.HEARTBEAT,
    Arm: F.ARM,
}


@dataclass
class ChannelTotals:
    """What one channel delivered, as measured by the suit."""

    charge_uC: float = 0.0
    stim_s: float = 0.0
    max_mA: float = 0.0
    contractions: int = 0


class SuitFirmware:
    """The device side of the protocol for one suit."""

    def __init__(
        self,
        n_channels: int = 12,
        *,
        max_mA: float = DEVICE_MAX_MA,
        watchdog_s: float = WATCHDOG_S,
        contact_ohm: float = 800.0,
    ) -> None:
        self.n_channels = n_channels
        self.max_mA = max_mA
        self.watchdog_s = watchdog_s
        self.state = SuitState.IDLE
        self.applied_mA = np.zeros(n_channels)
        self.frequency_hz = np.full(n_channels, 85.0)
        self.pulse_width_us = np.full(n_channels, 350.0)
        self.impedance_ohm: list[float | None] = [contact_ohm] * n_channels
        self.battery_pct = 100
        self.faults = Faults.NONE
        self.last_seq: int | None = None
        self.last_feed: float | None = None
        self.bad_frames = 0
        self.watchdog_trips = 0
        self.charge_uC = np.zeros(n_channels)
        self.stim_s = np.zeros(n_channels)
        self.max_seen_mA = np.zeros(n_channels)
        self.contractions = np.zeros(n_channels, dtype=np.int64)
        self._since = 0.0
        self._last_levels: tuple[float, ...] | None = None  # the frame behind applied_mA

    # -- time and accounting -------------------------------------------------------------
    @property
    def watchdog_deadline(self) -> float | None:
        """When the watchdog trips if no frame feeds it (None when it cannot trip)."""
        if self.state is not SuitState.ARMED or self.last_feed is None:
            return None
        return self.last_feed + self.watchdog_s

    def _account(self, now: float) -> None:
        dt = now - self._since
        if dt > 0:
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

    def _zero(self, now: float) -> None:
        if np.any(self.applied_mA):
            self._set_outputs(np.zeros(self.n_channels), now)
        else:
            self._account(now)

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
    def receive(self, data: bytes, now: float) -> ControlFrame | None:
        """Handle one control frame's bytes. A corrupt frame is dropped and flagged."""
        self.check_watchdog(now)
        try:
            frame = decode_control(data)
        except RemoteProtocolError:
            self.bad_frames += 1
            self.faults |= Faults.BAD_FRAME
            return None
        kind = _FRAME_TYPE[type(frame)]
        if kind is FrameType.SET_LEVELS and not seq_newer(frame.seq, self.last_seq):
            return None  # stale or repeated: a newer frame already arrived
        self.last_seq = frame.seq
        if kind in FEEDS_WATCHDOG:
            self.last_feed = now
        if isinstance(frame, SetProgram):
            chans = range(self.n_channels) if frame.channel is None else [frame.channel]
            for ch in chans:
                if ch < self.n_channels:
                    self._account(now)
                    self.frequency_hz[ch] = frame.frequency_hz
                    self.pulse_width_us[ch] = frame.pulse_width_us
            return frame
        before = self.state
        self._transition(kind, now)
        if kind is FrameType.ARM and before is not SuitState.ARMED:
            self.faults &= ~Faults.WATCHDOG
        changed = frame.levels_mA != self._last_levels if isinstance(frame, SetLevels) else False
        if isinstance(frame, SetLevels) and self.state is SuitState.ARMED and changed:
            self._last_levels = frame.levels_mA
            self._apply_levels(frame.levels_mA, now)
        return frame

    def _transition(self, event: FrameType | str, now: float) -> None:
        self.state = TRANSITIONS.get((self.state, event), self.state)
        if self.state is not SuitState.ARMED:
            self._last_levels = None
            self._zero(now)

    def _apply_levels(self, levels_mA: tuple[float, ...], now: float) -> None:
        req = np.zeros(self.n_channels)
        n = min(len(levels_mA), self.n_channels)
        req[:n] = levels_mA[:n]
        if np.any(req > self.max_mA):
            self.faults |= Faults.LEVEL_CLAMPED
        out = np.minimum(req, self.max_mA)
        for ch, imp in enumerate(self.impedance_ohm):
            if imp is None:
                out[ch] = 0.0  # no contact: the current cannot flow
        self._set_outputs(out, now)

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

    def status(self) -> StatusReport:
        """A whole-suit status report."""
        return StatusReport(
            self.last_seq or 0,
            self.state,
            self.battery_pct,
            self.faults,
            0,
            tuple(float(v) for v in self.applied_mA),
            tuple(self.impedance_ohm),
        )

    def status_frames(self, att_payload: int = DEFAULT_ATT_PAYLOAD) -> list[bytes]:
        """Status notifications that fit the link's ATT payload; clears the BAD_FRAME flag."""
        frames = encode_status_chunks(self.status(), att_payload)
        self.faults &= ~Faults.BAD_FRAME
        return frames
