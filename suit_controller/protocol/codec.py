"""Encoding and decoding of suit frames: bytes in, frames out, no I/O.

Every frame: byte 0 = version << 4 | type; bytes 1-2 = sequence number
(u16 little-endian); a payload; and a CRC-16/CCITT-FALSE (poly 0x1021, init
0xFFFF) of all preceding bytes, little-endian. Decoding anything else raises
`RemoteProtocolError`, never another exception.
"""

from __future__ import annotations

import binascii
import math
import struct

from suit_controller.protocol.errors import LocalProtocolError, RemoteProtocolError
from suit_controller.protocol.frames import (
    DEFAULT_ATT_PAYLOAD,
    IMPEDANCE_OPEN,
    IMPEDANCE_UNIT_OHM,
    LEVEL_UNIT_MA,
    MAX_CHANNELS,
    MAX_LEVEL_CODE,
    SEQ_MODULO,
    VERSION,
    Arm,
    ControlFrame,
    Faults,
    FrameType,
    Heartbeat,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
)

_HEAD = struct.Struct("<BH")
_PROGRAM = struct.Struct("<BBH")
_STATUS = struct.Struct("<BBBBB")
_ALL_CHANNELS = 0xFF
STATUS_HEADER_LEN = _HEAD.size + _STATUS.size + 2  # 10 bytes; 2 more per channel


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (check value 0x29B1 for b"123456789")."""
    return binascii.crc_hqx(data, 0xFFFF)


def _seal(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def _head(kind: FrameType, seq: int) -> bytes:
    if not 0 <= seq < SEQ_MODULO:
        raise LocalProtocolError(f"sequence number {seq} out of 0..65535")
    return _HEAD.pack(VERSION << 4 | kind, seq)


def level_code(mA: float) -> int:
    """Wire code of a level: floor to 0.5 mA, so encoding never rounds a level up."""
    if not math.isfinite(mA) or mA < 0:
        raise LocalProtocolError(f"level {mA!r} mA is not a current")
    code = int(mA / LEVEL_UNIT_MA + 1e-9)
    if code > MAX_LEVEL_CODE:
        raise LocalProtocolError(
            f"level {mA} mA above the protocol's {MAX_LEVEL_CODE * LEVEL_UNIT_MA} mA"
        )
    return code


def encode_levels(seq: int, codes: bytes) -> bytes:
    """A SET_LEVELS frame from already-quantised level codes (the engine's fast path)."""
    return _seal(_head(FrameType.SET_LEVELS, seq) + bytes((len(codes),)) + codes)


def encode(frame: ControlFrame) -> bytes:
    """Bytes of a control frame. Raises LocalProtocolError for values the protocol cannot carry."""
    if isinstance(frame, SetLevels):
        if not 1 <= len(frame.levels_mA) <= MAX_CHANNELS:
            raise LocalProtocolError(
                f"a suit has 1..{MAX_CHANNELS} channels, not {len(frame.levels_mA)}"
            )
        return encode_levels(frame.seq, bytes(level_code(v) for v in frame.levels_mA))
    if isinstance(frame, SetProgram):
        ch = _ALL_CHANNELS if frame.channel is None else frame.channel
        if not (0 <= ch < MAX_CHANNELS or ch == _ALL_CHANNELS):
            raise LocalProtocolError(f"channel {frame.channel} out of range")
        if not 1 <= frame.frequency_hz <= 150 or not 50 <= frame.pulse_width_us <= 450:
            raise LocalProtocolError("program out of 1..150 Hz / 50..450 µs")
        body = _head(FrameType.SET_PROGRAM, frame.seq) + _PROGRAM.pack(
            ch, frame.frequency_hz, frame.pulse_width_us
        )
        return _seal(body)
    kind = {StopAll: FrameType.STOP_ALL, Heartbeat: FrameType.HEARTBEAT, Arm: FrameType.ARM}.get(
        type(frame)
    )
    if kind is None:
        raise LocalProtocolError(f"not a control frame: {frame!r}")
    return _seal(_head(kind, frame.seq))


def _open(data: bytes) -> tuple[FrameType, int, bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RemoteProtocolError("a frame must be bytes")
    data = bytes(data)
    if len(data) < 5:
        raise RemoteProtocolError(f"frame of {len(data)} bytes is too short")
    if crc16(data[:-2]) != int.from_bytes(data[-2:], "little"):
        raise RemoteProtocolError("CRC mismatch")
    first, seq = _HEAD.unpack_from(data)
    if first >> 4 != VERSION:
        raise RemoteProtocolError(f"protocol version {first >> 4}, expected {VERSION}")
    try:
        kind = FrameType(first & 0x0F)
    except ValueError:
        raise RemoteProtocolError(f"unknown frame type {first & 0x0F:#x}") from None
    return kind, seq, data[3:-2]


def decode_control(data: bytes) -> ControlFrame:
    """Parse a control frame (the suit's side). Raises RemoteProtocolError."""
    kind, seq, payload = _open(data)
    if kind is FrameType.SET_LEVELS:
        if not payload or payload[0] != len(payload) - 1 or not 1 <= payload[0] <= MAX_CHANNELS:
            raise RemoteProtocolError("SET_LEVELS channel count does not match its length")
        codes = payload[1:]
        if max(codes) > MAX_LEVEL_CODE:
            raise RemoteProtocolError("SET_LEVELS level code above 240")
        return SetLevels(seq, tuple(c * LEVEL_UNIT_MA for c in codes))
    if kind is FrameType.SET_PROGRAM:
        if len(payload) != _PROGRAM.size:
            raise RemoteProtocolError("SET_PROGRAM has the wrong length")
        ch, f, pw = _PROGRAM.unpack(payload)
        if (
            not (ch < MAX_CHANNELS or ch == _ALL_CHANNELS)
            or not 1 <= f <= 150
            or not 50 <= pw <= 450
        ):
            raise RemoteProtocolError("SET_PROGRAM value out of range")
        return SetProgram(seq, None if ch == _ALL_CHANNELS else ch, f, pw)
    if payload:
        raise RemoteProtocolError(f"{kind.name} carries no payload")
    if kind is FrameType.STOP_ALL:
        return StopAll(seq)
    if kind is FrameType.HEARTBEAT:
        return Heartbeat(seq)
    if kind is FrameType.ARM:
        return Arm(seq)
    raise RemoteProtocolError(f"{kind.name} is not a control frame")


def _impedance_code(ohm: float | None) -> int:
    if ohm is None:
        return IMPEDANCE_OPEN
    return max(1, min(254, round(ohm / IMPEDANCE_UNIT_OHM)))


def encode_status(report: StatusReport) -> bytes:
    """Bytes of one status notification."""
    n = len(report.levels_mA)
    if n != len(report.impedance_ohm) or not 0 <= report.first_channel < MAX_CHANNELS:
        raise LocalProtocolError("status channels do not line up")
    body = _head(FrameType.STATUS, report.seq) + _STATUS.pack(
        int(report.state),
        max(0, min(100, report.battery_pct)),
        int(report.faults),
        report.first_channel,
        n,
    )
    pairs = bytearray()
    for lvl, imp in zip(report.levels_mA, report.impedance_ohm, strict=True):
        pairs += bytes((min(level_code(lvl), MAX_LEVEL_CODE), _impedance_code(imp)))
    return _seal(body + bytes(pairs))


def status_channels_per_frame(att_payload: int = DEFAULT_ATT_PAYLOAD) -> int:
    """How many channels one status notification carries in an ATT payload of this size."""
    return max(1, (att_payload - STATUS_HEADER_LEN) // 2)


def encode_status_chunks(
    report: StatusReport, att_payload: int = DEFAULT_ATT_PAYLOAD
) -> list[bytes]:
    """Split a whole-suit status report into notifications that fit the ATT payload."""
    per = status_channels_per_frame(att_payload)
    out = []
    for start in range(0, len(report.levels_mA), per):
        out.append(
            encode_status(
                StatusReport(
                    report.seq,
                    report.state,
                    report.battery_pct,
                    report.faults,
                    report.first_channel + start,
                    report.levels_mA[start : start + per],
                    report.impedance_ohm[start : start + per],
                )
            )
        )
    return out


def decode_status(data: bytes) -> StatusReport:
    """Parse a status notification (the controller's side). Raises RemoteProtocolError."""
    kind, seq, payload = _open(data)
    if kind is not FrameType.STATUS:
        raise RemoteProtocolError(f"{kind.name} is not a status frame")
    if len(payload) < _STATUS.size:
        raise RemoteProtocolError("status frame too short")
    state, battery, faults, first, n = _STATUS.unpack_from(payload)
    pairs = payload[_STATUS.size :]
    if len(pairs) != 2 * n or first + n > MAX_CHANNELS:
        raise RemoteProtocolError("status channel count does not match its length")
    try:
        st = SuitState(state)
    except ValueError:
        raise RemoteProtocolError(f"unknown suit state {state}") from None
    if battery > 100 or faults & ~0x1F:
        raise RemoteProtocolError("status battery or fault flags out of range")
    levels = tuple(min(pairs[2 * i], MAX_LEVEL_CODE) * LEVEL_UNIT_MA for i in range(n))
    imps = tuple(
        None if pairs[2 * i + 1] == IMPEDANCE_OPEN else pairs[2 * i + 1] * IMPEDANCE_UNIT_OHM
        for i in range(n)
    )
    return StatusReport(seq, st, battery, Faults(faults), first, levels, imps)
