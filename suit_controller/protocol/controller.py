"""The controller's end of one suit's protocol: sequence numbers out, status in."""

from __future__ import annotations

from dataclasses import dataclass, field

from suit_controller.protocol.codec import decode_status, encode, encode_levels
from suit_controller.protocol.frames import (
    SEQ_MODULO,
    Arm,
    Faults,
    Heartbeat,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
)


@dataclass
class SuitView:
    """What the controller last heard from a suit, merged from status notifications."""

    n_channels: int
    state: SuitState | None = None
    battery_pct: int | None = None
    faults: Faults = Faults.NONE
    last_seq: int | None = None
    levels_mA: list[float] = field(default_factory=list)
    impedance_ohm: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.levels_mA = [0.0] * self.n_channels
        self.impedance_ohm = [None] * self.n_channels

    def merge(self, report: StatusReport) -> None:
        """Fold one (possibly partial) status report in; channels beyond the suit are ignored."""
        self.state, self.battery_pct, self.faults = report.state, report.battery_pct, report.faults
        self.last_seq = report.seq
        for i, (lvl, imp) in enumerate(zip(report.levels_mA, report.impedance_ohm, strict=True)):
            ch = report.first_channel + i
            if ch < self.n_channels:
                self.levels_mA[ch] = lvl
                self.impedance_ohm[ch] = imp


class ControllerEndpoint:
    """Builds the frames for one suit with consecutive sequence numbers; parses its status."""

    def __init__(self, n_channels: int) -> None:
        self.view = SuitView(n_channels)
        self._seq = 0

    def _next(self) -> int:
        self._seq = (self._seq + 1) % SEQ_MODULO
        return self._seq

    def levels(self, codes: bytes) -> bytes:
        """A SET_LEVELS frame from level codes (see `level_code`)."""
        return encode_levels(self._next(), codes)

    def stop_all(self) -> bytes:
        return encode(StopAll(self._next()))

    def arm(self) -> bytes:
        return encode(Arm(self._next()))

    def heartbeat(self) -> bytes:
        return encode(Heartbeat(self._next()))

    def program(self, channel: int | None, frequency_hz: float, pulse_width_us: float) -> bytes:
        return encode(SetProgram(self._next(), channel, round(frequency_hz), round(pulse_width_us)))

    def receive(self, data: bytes) -> StatusReport:
        """Parse a status notification and merge it into `view`. Raises RemoteProtocolError."""
        report = decode_status(data)
        self.view.merge(report)
        return report
