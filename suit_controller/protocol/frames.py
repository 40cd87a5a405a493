"""Suit-protocol frames as small frozen dataclasses, and the protocol's constants.

Byte layouts are in docs/protocol.md (version 2); encoding and decoding are in `codec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from channels.limits import FREQUENCY_RANGE_HZ as _FREQUENCY_RANGE_HZ
from channels.limits import LEVEL_STEP_MA
from channels.limits import MAX_LEVEL_CODE as _MAX_LEVEL_CODE
from channels.limits import PULSE_WIDTH_RANGE_US as _PULSE_WIDTH_RANGE_US

#: Protocol version carried in the high nibble of every frame's first byte.
VERSION = 2

SERVICE_UUID = "5c0e0001-8d2a-4f6b-9e31-6a7b1c2d3e4f"
CONTROL_UUID = "5c0e0002-8d2a-4f6b-9e31-6a7b1c2d3e4f"  # write without response
STATUS_UUID = "5c0e0003-8d2a-4f6b-9e31-6a7b1c2d3e4f"  # notify

#: One level unit on the wire, mA (levels are u8: 0..240 = 0..120 mA).
LEVEL_UNIT_MA = LEVEL_STEP_MA
MAX_LEVEL_CODE = _MAX_LEVEL_CODE
#: One impedance unit on the wire, Ω; code 255 means open (no contact), 0 unknown.
IMPEDANCE_UNIT_OHM = 20.0
IMPEDANCE_OPEN = 255
#: ATT payload at BLE's default MTU of 23 (too small for version 2).
DEFAULT_ATT_PAYLOAD = 20
#: Version 2 needs a negotiated ATT MTU of at least 67: an ATT payload of 64 bytes.
REQUIRED_ATT_MTU = 67
REQUIRED_ATT_PAYLOAD = REQUIRED_ATT_MTU - 3
MAX_CHANNELS = 32
#: The frame counter is a u32 that only grows; it never wraps within a class.
COUNTER_MAX = (1 << 32) - 1
#: Length of the authentication tag field (8 zero bytes with key id 0).
TAG_LEN = 8
#: Program id 0 is the suit's power-on default; the controller assigns 1..255.
DEFAULT_PROGRAM_ID = 0
#: Program ranges the wire carries, inclusive (whole hertz, whole microseconds).
FREQUENCY_RANGE_HZ = (int(_FREQUENCY_RANGE_HZ[0]), int(_FREQUENCY_RANGE_HZ[1]))
PULSE_WIDTH_RANGE_US = (int(_PULSE_WIDTH_RANGE_US[0]), int(_PULSE_WIDTH_RANGE_US[1]))


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
    PROGRAM_MISMATCH = 0x20  # levels for another program than the active one were dropped
    CHARGE_CLAMPED = 0x40  # a level above the suit's own charge limit was clamped


#: Every flag a version 2 status may carry.
KNOWN_FAULTS = 0x7F


@dataclass(frozen=True)
class PulseProgram:
    """A program as the wire carries it: an id and whole hertz and microseconds.

    The suit's power-on default is id 0 at 85 Hz, 350 µs.
    """

    program_id: int
    frequency_hz: int
    pulse_width_us: int

    @property
    def pulses(self) -> tuple[int, int]:
        """(frequency Hz, pulse width µs): what S1 caps depend on."""
        return (self.frequency_hz, self.pulse_width_us)


#: What a suit applies after power-on, before any SET_PROGRAM.
POWER_ON_PROGRAM = PulseProgram(DEFAULT_PROGRAM_ID, 85, 350)


@dataclass(frozen=True)
class SetLevels:
    """Peak current for every channel of the suit (mA), for the program `program_id`."""

    counter: int
    program_id: int
    levels_mA: tuple[float, ...]


@dataclass(frozen=True)
class SetProgram:
    """Pulse parameters for every channel of the suit, under a new program id."""

    counter: int
    program_id: int
    frequency_hz: int
    pulse_width_us: int

    @property
    def program(self) -> PulseProgram:
        return PulseProgram(self.program_id, self.frequency_hz, self.pulse_width_us)


@dataclass(frozen=True)
class StopAll:
    """Zero every output now and latch until ARM (honoured whatever its counter)."""

    counter: int


@dataclass(frozen=True)
class Heartbeat:
    """Feeds the watchdog without changing anything."""

    counter: int


@dataclass(frozen=True)
class Arm:
    """Leave IDLE, STOPPED or WATCHDOG: accept levels again (outputs stay zero until sent)."""

    counter: int


ControlFrame = SetLevels | SetProgram | StopAll | Heartbeat | Arm


@dataclass(frozen=True)
class StatusReport:
    """One status notification: the suit's state, program and a run of channels.

    `counter` is the last control frame counter the suit accepted; `clock_ms`
    the suit's own clock (ms since power-on, u32). `impedance_ohm[i]` is None
    when channel `first_channel + i` has no contact.
    """

    counter: int
    clock_ms: int
    state: SuitState
    battery_pct: int
    faults: Faults
    program: PulseProgram
    first_channel: int
    levels_mA: tuple[float, ...]
    impedance_ohm: tuple[float | None, ...]
