"""Encoding and decoding of suit frames (version 2): bytes in, frames out, no I/O.

Control frame: byte 0 = version << 4 | type; bytes 1-4 = frame counter (u32
little-endian); byte 5 = key id; a payload; an 8-byte authentication tag
(zeros with key id 0, else the first 8 bytes of HMAC-SHA-256 over everything
before it); a CRC-16/CCITT-FALSE of all preceding bytes, little-endian.
Status frame: byte 0, counter, the suit's clock, state, battery, faults, the
active program, a run of channels, CRC (docs/protocol.md).

Decoding anything malformed raises `RemoteProtocolError` and nothing else; a
well-formed frame of another version raises its subclass `UnsupportedVersion`.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import math
import struct
from collections.abc import Mapping

from suit_controller.protocol.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    UnsupportedVersion,
)
from suit_controller.protocol.frames import (
    COUNTER_MAX,
    FREQUENCY_RANGE_HZ,
    IMPEDANCE_OPEN,
    IMPEDANCE_UNIT_OHM,
    KNOWN_FAULTS,
    LEVEL_UNIT_MA,
    MAX_CHANNELS,
    MAX_LEVEL_CODE,
    PULSE_WIDTH_RANGE_US,
    REQUIRED_ATT_PAYLOAD,
    TAG_LEN,
    VERSION,
    Arm,
    ControlFrame,
    Faults,
    FrameType,
    Heartbeat,
    PulseProgram,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
)

_CONTROL_HEAD = struct.Struct("<BIB")  # version|type, counter, key id
_PROGRAM = struct.Struct("<BBH")  # program id, frequency, pulse width
_STATUS_HEAD = struct.Struct("<BII")  # version|type, counter, clock ms
_STATUS = struct.Struct("<BBBBBHBB")  # state, battery, faults, program, f, pw, first, n
#: A control frame without payload: head + tag + CRC (16 bytes).
CONTROL_OVERHEAD = _CONTROL_HEAD.size + TAG_LEN + 2
#: A status frame without channels (20 bytes); 2 more per channel.
STATUS_HEADER_LEN = _STATUS_HEAD.size + _STATUS.size + 2
_NO_TAG = bytes(TAG_LEN)
_NO_PAYLOAD = {FrameType.STOP_ALL, FrameType.HEARTBEAT, FrameType.ARM}
#: Frame types by their 4-bit code (a dict lookup instead of an Enum call per frame).
_FRAME_TYPES = {t.value: t for t in FrameType}
#: Levels (mA) of the level codes seen lately: a suit mostly gets the same few frames again.
_LEVELS: dict[bytes, tuple[float, ...]] = {}
_LEVELS_KEPT = 4096


def _levels_mA(codes: bytes) -> tuple[float, ...]:
    """The levels of wire codes, mA (one shared tuple per distinct codes; bounded cache)."""
    levels = _LEVELS.get(codes)
    if levels is None:
        if len(_LEVELS) >= _LEVELS_KEPT:
            _LEVELS.clear()
        levels = _LEVELS[codes] = tuple(c * LEVEL_UNIT_MA for c in codes)
    return levels


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (check value 0x29B1 for b"123456789")."""
    return binascii.crc_hqx(data, 0xFFFF)


def tag(key: bytes, signed: bytes) -> bytes:
    """Authentication tag: the first 8 bytes of HMAC-SHA-256(key, signed bytes)."""
    return hmac.new(key, signed, hashlib.sha256).digest()[:TAG_LEN]


def _seal(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def _control(
    kind: FrameType, counter: int, payload: bytes, key: bytes | None, key_id: int
) -> bytes:
    if not 0 <= counter <= COUNTER_MAX:
        raise LocalProtocolError(f"frame counter {counter} out of 0..{COUNTER_MAX}")
    if (key is None) != (key_id == 0) or not 0 <= key_id <= 255:
        raise LocalProtocolError("key id 0 goes without a key; ids 1..255 need their key")
    signed = _CONTROL_HEAD.pack(VERSION << 4 | kind, counter, key_id) + payload
    return _seal(signed + (_NO_TAG if key is None else tag(key, signed)))


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


def _check_program(program_id: int, frequency_hz: int, pulse_width_us: int, *, sent: bool) -> bool:
    lo_id = 1 if sent else 0
    return (
        lo_id <= program_id <= 255
        and FREQUENCY_RANGE_HZ[0] <= frequency_hz <= FREQUENCY_RANGE_HZ[1]
        and PULSE_WIDTH_RANGE_US[0] <= pulse_width_us <= PULSE_WIDTH_RANGE_US[1]
    )


def encode_levels(
    counter: int, program_id: int, codes: bytes, key: bytes | None = None, key_id: int = 0
) -> bytes:
    """A SET_LEVELS frame from already-quantised level codes (the engine's fast path)."""
    if not 1 <= len(codes) <= MAX_CHANNELS or not 0 <= program_id <= 255:
        raise LocalProtocolError(f"a suit has 1..{MAX_CHANNELS} channels, not {len(codes)}")
    if max(codes) > MAX_LEVEL_CODE:
        raise LocalProtocolError(f"level code above {MAX_LEVEL_CODE}")
    payload = bytes((program_id, len(codes))) + codes
    return _control(FrameType.SET_LEVELS, counter, payload, key, key_id)


def encode(frame: ControlFrame, key: bytes | None = None, key_id: int = 0) -> bytes:
    """Bytes of a control frame, signed with `key` under `key_id` (none: key id 0, zero tag).

    Raises LocalProtocolError for values the protocol cannot carry.
    """
    if isinstance(frame, SetLevels):
        if not 1 <= len(frame.levels_mA) <= MAX_CHANNELS:
            raise LocalProtocolError(
                f"a suit has 1..{MAX_CHANNELS} channels, not {len(frame.levels_mA)}"
            )
        codes = bytes(level_code(v) for v in frame.levels_mA)
        return encode_levels(frame.counter, frame.program_id, codes, key, key_id)
    if isinstance(frame, SetProgram):
        values = (frame.program_id, frame.frequency_hz, frame.pulse_width_us)
        if not all(type(v) is int for v in values) or not _check_program(*values, sent=True):
            raise LocalProtocolError(
                "a program is id 1..255, whole hertz 1..150 and whole microseconds 50..450, "
                f"not {values}"
            )
        return _control(FrameType.SET_PROGRAM, frame.counter, _PROGRAM.pack(*values), key, key_id)
    kind = {StopAll: FrameType.STOP_ALL, Heartbeat: FrameType.HEARTBEAT, Arm: FrameType.ARM}.get(
        type(frame)
    )
    if kind is None:
        raise LocalProtocolError(f"not a control frame: {frame!r}")
    return _control(kind, frame.counter, b"", key, key_id)


def _open(data: object, smallest: int) -> tuple[FrameType, bytes]:
    """Check type, length, CRC and version; the frame's type and its bytes without the CRC."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RemoteProtocolError("a frame must be bytes")
    raw = data if type(data) is bytes else bytes(data)
    if len(raw) < 3:
        raise RemoteProtocolError(f"frame of {len(raw)} bytes is too short")
    if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise RemoteProtocolError("CRC mismatch")
    version = raw[0] >> 4
    if version != VERSION:
        raise UnsupportedVersion(version)
    kind = _FRAME_TYPES.get(raw[0] & 0x0F)
    if kind is None:
        raise RemoteProtocolError(f"unknown frame type {raw[0] & 0x0F:#x}")
    if len(raw) < smallest:
        raise RemoteProtocolError(f"{kind.name} frame of {len(raw)} bytes is too short")
    return kind, raw[:-2]


def decode_control(data: bytes, keys: Mapping[int, bytes] | None = None) -> ControlFrame:
    """Parse a control frame (the suit's side). Raises RemoteProtocolError.

    `keys` maps key ids to enrolled keys: a frame signed with a key id must
    carry that key's tag. A frame with key id 0 must carry a zero tag (whether a
    suit accepts unsigned frames at all is its policy, not the codec's).
    """
    kind, body = _open(data, CONTROL_OVERHEAD)
    _, counter, key_id = _CONTROL_HEAD.unpack_from(body)
    signed, got = body[:-TAG_LEN], body[-TAG_LEN:]
    if key_id == 0:
        if got != _NO_TAG:
            raise RemoteProtocolError("a frame with key id 0 must carry a zero tag")
    else:
        key = (keys or {}).get(key_id)
        if key is None:
            raise RemoteProtocolError(f"frame signed with unknown key id {key_id}")
        if not hmac.compare_digest(got, tag(key, signed)):
            raise RemoteProtocolError("authentication tag mismatch")
    payload = signed[_CONTROL_HEAD.size :]
    if kind is FrameType.SET_LEVELS:
        if (
            len(payload) < 2
            or payload[1] != len(payload) - 2
            or not 1 <= payload[1] <= MAX_CHANNELS
        ):
            raise RemoteProtocolError("SET_LEVELS channel count does not match its length")
        codes = payload[2:]
        if max(codes) > MAX_LEVEL_CODE:
            raise RemoteProtocolError("SET_LEVELS level code above 240")
        return SetLevels(counter, payload[0], _levels_mA(codes))
    if kind is FrameType.SET_PROGRAM:
        if len(payload) != _PROGRAM.size:
            raise RemoteProtocolError("SET_PROGRAM has the wrong length")
        pid, f, pw = _PROGRAM.unpack(payload)
        if not _check_program(pid, f, pw, sent=True):
            raise RemoteProtocolError("SET_PROGRAM value out of range")
        return SetProgram(counter, pid, f, pw)
    if kind not in _NO_PAYLOAD:
        raise RemoteProtocolError(f"{kind.name} is not a control frame")
    if payload:
        raise RemoteProtocolError(f"{kind.name} carries no payload")
    if kind is FrameType.STOP_ALL:
        return StopAll(counter)
    if kind is FrameType.HEARTBEAT:
        return Heartbeat(counter)
    return Arm(counter)


#: Status channel bytes (level, impedance pairs) of the channel values seen lately, and
#: the reverse: a suit reports the same few levels and contacts again and again, five
#: times a second. Bounded like `_LEVELS`; only values that encoded (or decoded) without
#: an error are kept, so a bad value raises every time.
_PAIRS_OUT: dict[tuple[tuple[float, ...], tuple[float | None, ...]], bytes] = {}
_PAIRS_IN: dict[bytes, tuple[tuple[float, ...], tuple[float | None, ...]]] = {}
_STATES = {s.value: s for s in SuitState}
_FAULTS: dict[int, Faults] = {}


def _status_pairs(levels_mA: tuple[float, ...], impedance_ohm: tuple[float | None, ...]) -> bytes:
    """The (level code, impedance code) bytes of a status's channels."""
    cacheable = type(levels_mA) is tuple and type(impedance_ohm) is tuple
    key = (levels_mA, impedance_ohm)
    pairs = _PAIRS_OUT.get(key) if cacheable else None
    if pairs is None:
        out = bytearray()
        for lvl, imp in zip(levels_mA, impedance_ohm, strict=True):
            out += bytes((min(level_code(lvl), MAX_LEVEL_CODE), _impedance_code(imp)))
        pairs = bytes(out)
        if cacheable:
            if len(_PAIRS_OUT) >= _LEVELS_KEPT:
                _PAIRS_OUT.clear()
            _PAIRS_OUT[key] = pairs
    return pairs


def _impedance_code(ohm: float | None) -> int:
    if ohm is None:
        return IMPEDANCE_OPEN
    return max(1, min(254, round(ohm / IMPEDANCE_UNIT_OHM)))


def encode_status(report: StatusReport) -> bytes:
    """Bytes of one status notification."""
    n = len(report.levels_mA)
    p = report.program
    if (
        n != len(report.impedance_ohm)
        or not report.first_channel >= 0
        or report.first_channel + n > MAX_CHANNELS
    ):
        raise LocalProtocolError("status channels do not line up")
    if not _check_program(p.program_id, p.frequency_hz, p.pulse_width_us, sent=False):
        raise LocalProtocolError(f"status program out of range: {p}")
    if not 0 <= report.counter <= COUNTER_MAX:
        raise LocalProtocolError(f"frame counter {report.counter} out of range")
    body = _STATUS_HEAD.pack(
        VERSION << 4 | FrameType.STATUS, report.counter, report.clock_ms & 0xFFFFFFFF
    ) + _STATUS.pack(
        int(report.state),
        max(0, min(100, report.battery_pct)),
        int(report.faults) & KNOWN_FAULTS,
        p.program_id,
        p.frequency_hz,
        p.pulse_width_us,
        report.first_channel,
        n,
    )
    return _seal(body + _status_pairs(report.levels_mA, report.impedance_ohm))


def status_channels_per_frame(att_payload: int = REQUIRED_ATT_PAYLOAD) -> int:
    """How many channels one status notification carries in an ATT payload of this size."""
    return max(1, (att_payload - STATUS_HEADER_LEN) // 2)


def encode_status_chunks(
    report: StatusReport, att_payload: int = REQUIRED_ATT_PAYLOAD
) -> list[bytes]:
    """Split a whole-suit status report into notifications that fit the ATT payload."""
    per = status_channels_per_frame(att_payload)
    if len(report.levels_mA) <= per:  # one notification holds it all (ATT MTU 67 and up)
        return [encode_status(report)]
    out = []
    for start in range(0, len(report.levels_mA), per):
        out.append(
            encode_status(
                StatusReport(
                    report.counter,
                    report.clock_ms,
                    report.state,
                    report.battery_pct,
                    report.faults,
                    report.program,
                    report.first_channel + start,
                    report.levels_mA[start : start + per],
                    report.impedance_ohm[start : start + per],
                )
            )
        )
    return out


def decode_status(data: bytes) -> StatusReport:
    """Parse a status notification (the controller's side). Raises RemoteProtocolError.

    A version 1 suit's status raises `UnsupportedVersion`, whose message tells
    the trainer to update the suit's firmware.
    """
    kind, body = _open(data, STATUS_HEADER_LEN)
    if kind is not FrameType.STATUS:
        raise RemoteProtocolError(f"{kind.name} is not a status frame")
    _, counter, clock_ms = _STATUS_HEAD.unpack_from(body)
    state, battery, faults, pid, f, pw, first, n = _STATUS.unpack_from(body, _STATUS_HEAD.size)
    pairs = body[_STATUS_HEAD.size + _STATUS.size :]
    if len(pairs) != 2 * n or first + n > MAX_CHANNELS:
        raise RemoteProtocolError("status channel count does not match its length")
    st = _STATES.get(state)
    if st is None:
        raise RemoteProtocolError(f"unknown suit state {state}")
    if battery > 100 or faults & ~KNOWN_FAULTS:
        raise RemoteProtocolError("status battery or fault flags out of range")
    if not _check_program(pid, f, pw, sent=False):
        raise RemoteProtocolError(f"status program out of range: id {pid}, {f} Hz, {pw} µs")
    values = _PAIRS_IN.get(pairs)
    if values is None:
        if len(_PAIRS_IN) >= _LEVELS_KEPT:
            _PAIRS_IN.clear()
        values = _PAIRS_IN[pairs] = (
            tuple(min(pairs[2 * i], MAX_LEVEL_CODE) * LEVEL_UNIT_MA for i in range(n)),
            tuple(
                None if code == IMPEDANCE_OPEN else code * IMPEDANCE_UNIT_OHM
                for code in pairs[1::2]
            ),
        )
    levels, imps = values
    flags = _FAULTS.get(faults)
    if flags is None:  # checked above: known flags only, at most 256 values
        flags = _FAULTS[faults] = Faults(faults)
    return StatusReport(
        counter,
        clock_ms,
        st,
        battery,
        flags,
        PulseProgram(pid, f, pw),
        first,
        levels,
        imps,
    )
