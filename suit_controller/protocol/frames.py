"""Suit-protocol frames as small frozen dataclasses, and the protocol's constants.

Byte layouts are in docs/protocol.md; encoding and decoding are in `codec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

#: Protocol version carried in the high nibble of every frame's first byte.
VERSION = 1

SERVICE_UUID = "5c0e0001-8d2a-4f6b-9e31-6a7b1c2d3e4f"
CONTROL_UUID = "5c0e0002-8d2a-4f6b-9e31-6a7b1c2d3e4f"  # write without response
STATUS_UUID = "5c0e0003-8d2a-4f6b-9e31-6a7b1c2d3e4f"  # notify

#: One level unit on the wire, mA (levels are u8: 0..240 = 0..120 mA).
LEVEL_UNIT_MA = 0.5
MAX_LEVEL_CODE = 240
#: One impedance unit on the wire, Ω; code 255 means open (no contact), 0 unknown.
IMPEDANCE_UNIT_OHM = 20.0
IMPEDANCE_OPEN = 255
#: ATT payload at the default MTU of 23.
DEFAULT_ATT_PAYLOAD = 20
MAX_CHANNELS = 32
SEQ_MODULO = 1 << 16


class FrameType(IntEnum):
    """Low nibble of a frame's first byte."""

    SET_LEVELS = 0x1
    SET_PROGRAM = 0x2
    STOP_ALL = 0x3
    HEARTBEAT = 0x4
    ARM = 0x5
    STATUS = 0x8


class SuitState(IntEnum):
    """The suit firmware's state, as reported in status frames."""

    IDLE = 0  # powered on, outputs zero, waits for ARM
    ARMED = 1  # accepts levels
    STOPPED = 2  # STOP_ALL latched: outputs zero until ARM
    WATCHDOG = 3  # no valid frame within the watchdog time: outputs zero until ARM


class Faults(IntFlag):
    """Fault flags in status frames."""

    NONE = 0
    WATCHDOG = 0x01  # the watchdog tripped since the last ARM
    LOW_BATTERY = 0x02
    ELECTRODE_OPEN = 0x04  # at least one channel has no electrode contact
    LEVEL_CLAMPED = 0x08  # a requested level was above the suit's own maximum
    BAD_FRAME = 0x10  # a corrupt frame was dropped since the last status


@dataclass(frozen=True)
class SetLevels:
    """Peak current for every channel of the suit, in one frame (mA)."""

    seq: int
    levels_mA: tuple[float, ...]


@dataclass(frozen=True)
class SetProgram:
    """Pulse parameters for one channel (`channel` None = all channels)."""

    seq: int
    channel: int | None
    frequency_hz: int
    pulse_width_us: int


@dataclass(frozen=True)
class StopAll:
    """Zero every output now and latch until ARM."""

    seq: int


@dataclass(frozen=True)
class Heartbeat:
    """Feeds the watchdog without changing anything."""

    seq: int


@dataclass(frozen=True)
class Arm:
    """Leave IDLE, STOPPED or WATCHDOG: accept levels again (outputs stay zero until sent)."""

    seq: int


ControlFrame = SetLevels | SetProgram | StopAll | Heartbeat | Arm


@dataclass(frozen=True)
class StatusReport:
    """One status notification: suit state and a run of channels from `first_channel`.

    `impedance_ohm[i]` is None when channel `first_channel + i` has no contact.
    """

    seq: int
    state: SuitState
    battery_pct: int
    faults: Faults
    first_channel: int
    levels_mA: tuple[float, ...]
    impedance_ohm: tuple[float | None, ...]


def seq_newer(seq: int, last: int | None) -> bool:
    """True if `seq` comes after `last` in 16-bit serial-number arithmetic."""
    if last is None:
        return True
    d = (seq - last) % SEQ_MODULO
    return 0 < d < SEQ_MODULO // 2
