"""Deliberately broken suit firmwares: each breaks one rule of docs/protocol.md.

They exist to prove that the conformance kit (`suit_controller.conformance`)
catches what it claims to: every variant here must fail its own check (and at
most the checks of the same rule) and pass the others
(tests/test_conformance.py). Each is `sim.firmware.SuitFirmware` with one
rule changed, named for what a careless suit maker would have done. Never a
suit to stimulate anyone with.
"""

from __future__ import annotations

import math
import struct
from typing import ClassVar

from sim.firmware import TRANSITIONS, StateTable, SuitFirmware
from sim.suit_auth import SuitAuth
from suit_controller.protocol import (
    ControlFrame,
    FrameType,
    RemoteProtocolError,
    SetLevels,
    SuitState,
    crc16,
    decode_control,
)
from suit_controller.protocol.codec import tag
from suit_controller.protocol.enrollment import Enroll, Refusal, decode_message

S, F = SuitState, FrameType


def _reseal(raw: bytes) -> bytes:
    return raw[:-2] + struct.pack("<H", crc16(raw[:-2]))


class NoWatchdog(SuitFirmware):
    """Never trips its watchdog: a lost controller leaves the outputs on."""

    def check_watchdog(self, now: float) -> bool:
        return False

    @property
    def watchdog_deadline(self) -> float | None:
        return None


class SlowWatchdog(SuitFirmware):
    """Its watchdog trips after 400 ms instead of 250 ms."""

    def __init__(self, n_channels: int = 12) -> None:
        super().__init__(n_channels, watchdog_s=0.4)


class AcceptsStaleCounters(SuitFirmware):
    """Accepts a frame whatever its counter (replays and delayed frames apply)."""

    def receive(self, data: bytes, now: float, *, stop_char: bool = False) -> ControlFrame | None:
        remembered = self.last_counter
        self.last_counter = 0  # every counter looks fresh ...
        try:
            return super().receive(data, now, stop_char=stop_char)
        finally:
            self.last_counter = max(remembered, self.last_counter)  # ... and it never falls


class LevelsBeforeArm(SuitFirmware):
    """A SET_LEVELS arms a suit that was only powered on (no ARM needed)."""

    transitions: ClassVar[StateTable] = {**TRANSITIONS, (S.IDLE, F.SET_LEVELS): S.ARMED}


class ForgetsStopLatch(SuitFirmware):
    """After STOP_ALL, the next SET_LEVELS stimulates again (no ARM needed)."""

    transitions: ClassVar[StateTable] = {**TRANSITIONS, (S.STOPPED, F.SET_LEVELS): S.ARMED}


class IgnoresCrc(SuitFirmware):
    """Never checks the CRC: a frame corrupted on the air applies."""

    def receive(self, data: bytes, now: float, *, stop_char: bool = False) -> ControlFrame | None:
        return super().receive(_reseal(data) if len(data) >= 3 else data, now, stop_char=stop_char)


class ClampsOutOfRangeLevels(SuitFirmware):
    """Takes a level code above 240 as 240 instead of dropping the frame."""

    def receive(self, data: bytes, now: float, *, stop_char: bool = False) -> ControlFrame | None:
        raw = bytearray(data)
        sealed = len(raw) > 2 and _reseal(data) == data  # a corrupt frame stays corrupt
        if sealed and len(raw) > 18 and raw[0] == 0x21 and raw[7] == len(raw) - 18:
            raw[8:-10] = bytes(min(c, 240) for c in raw[8:-10])
            data = _reseal(bytes(raw))
        return super().receive(data, now, stop_char=stop_char)


class NoChargeLimit(SuitFirmware):
    """Has no charge limit of its own: 120 mA at 450 µs (54 µC per phase) goes through."""

    def __init__(self, n_channels: int = 12) -> None:
        super().__init__(n_channels, charge_limit_uC=math.inf)


class IgnoresProgramId(SuitFirmware):
    """Applies SET_LEVELS whatever program id it carries."""

    def receive(self, data: bytes, now: float, *, stop_char: bool = False) -> ControlFrame | None:
        try:
            frame = decode_control(data, self.auth.keys)
        except RemoteProtocolError:  # corrupt: the base class drops and flags it
            frame = None
        if isinstance(frame, SetLevels) and frame.program_id != self.program.program_id:
            raw = bytearray(data)
            raw[6] = self.program.program_id  # as if it were for the active program
            data = _reseal(bytes(raw))
            key = self.auth.key
            if key is not None and raw[5] == key.key_id:  # … and its tag, re-made
                body = bytes(raw[:-10])
                data = _reseal(body + tag(key.key, body) + b"\0\0")
        return super().receive(data, now, stop_char=stop_char)


class ForgetsCounterOnDisconnect(SuitFirmware):
    """Forgets the last accepted counter when the link drops (old frames replay after it)."""

    def disconnected(self) -> None:
        self.last_counter = 0


class StatusIgnoresMtu(SuitFirmware):
    """Sends every status as one notification, whatever ATT payload was negotiated."""

    def status_frames(self, att_payload: int = 64, now: float | None = None) -> list[bytes]:
        return super().status_frames(max(att_payload, 244), now)


class AcceptsAnyTag(SuitFirmware):
    """Checks that a frame carries its key id, never its tag (a wrong key drives it)."""

    def receive(self, data: bytes, now: float, *, stop_char: bool = False) -> ControlFrame | None:
        key = self.auth.key
        if key is not None and len(data) >= 16 and data[5] == key.key_id:
            body = bytes(data[:-10])
            data = _reseal(body + tag(key.key, body) + b"\0\0")
        return super().receive(data, now, stop_char=stop_char)


class _OpenAuth(SuitAuth):
    def may_act(self, key_id: int, is_stop: bool) -> bool:
        return True


class ActsOnUnsigned(SuitFirmware):
    """Enrolled, still acts on unsigned frames (as if it were open)."""

    def __init__(self, n_channels: int = 12) -> None:
        super().__init__(n_channels)
        self.auth = _OpenAuth()


class IgnoresStopCharacteristic(SuitFirmware):
    """Has no stop characteristic handler: only its controller can stop it."""

    def receive_stop(self, data: bytes, now: float) -> bool:
        return False


class StopCharacteristicMovesCounter(SuitFirmware):
    """Lets an unsigned STOP_ALL on the stop characteristic move the counter.

    Anyone in radio range can then send a stop with counter 2^32 - 1: the suit
    stops (fine) but drops every later frame of its controller as stale.
    """

    def receive_stop(self, data: bytes, now: float) -> bool:
        stopped = super().receive_stop(data, now)
        if stopped and len(data) >= 5:
            self.last_counter = max(self.last_counter, struct.unpack_from("<I", data, 1)[0])
        return stopped


class _ReenrollingAuth(SuitAuth):
    def handle(self, data: bytes) -> Refusal | None:
        try:
            msg = decode_message(data)
        except RemoteProtocolError:  # malformed: the base class refuses it
            msg = None
        if isinstance(msg, Enroll):
            self.key = self.studio_id = None  # forgets the old studio for anyone
        return super().handle(data)


class ReenrollsAnywhere(SuitFirmware):
    """Accepts ENROLL from any studio while enrolled (whoever pairs takes the suit)."""

    def __init__(self, n_channels: int = 12) -> None:
        super().__init__(n_channels)
        self.auth = _ReenrollingAuth()


#: Every broken firmware, by the name the tests and the docs use.
BROKEN_FIRMWARES: dict[str, type[SuitFirmware]] = {
    "no watchdog": NoWatchdog,
    "watchdog at 400 ms": SlowWatchdog,
    "accepts stale counters": AcceptsStaleCounters,
    "applies levels before ARM": LevelsBeforeArm,
    "forgets the stop latch": ForgetsStopLatch,
    "ignores the CRC": IgnoresCrc,
    "clamps out-of-range levels": ClampsOutOfRangeLevels,
    "no own charge limit": NoChargeLimit,
    "ignores the program id": IgnoresProgramId,
    "forgets the counter on disconnect": ForgetsCounterOnDisconnect,
    "status ignores the MTU": StatusIgnoresMtu,
    "accepts any tag": AcceptsAnyTag,
    "acts on unsigned frames": ActsOnUnsigned,
    "ignores the stop characteristic": IgnoresStopCharacteristic,
    "stop characteristic moves the counter": StopCharacteristicMovesCounter,
    "re-enrolls anywhere": ReenrollsAnywhere,
}
