"""The suit protocol (version 2): golden byte vectors, sizes, and garbage in -> protocol error out."""

import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from suit_controller.protocol import (
    CONTROL_OVERHEAD,
    POWER_ON_PROGRAM,
    REQUIRED_ATT_PAYLOAD,
    STATUS_HEADER_LEN,
    Arm,
    ControllerConnection,
    Faults,
    Heartbeat,
    LocalProtocolError,
    PulseProgram,
    RemoteProtocolError,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
    UnsupportedVersion,
    crc16,
    decode_control,
    decode_status,
    encode,
    encode_status,
    encode_status_chunks,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "protocol.json").read_text())
KEY = bytes.fromhex(VECTORS["key"])
TYPES: dict[str, Any] = {
    "SetLevels": SetLevels,
    "SetProgram": SetProgram,
    "StopAll": StopAll,
    "Heartbeat": Heartbeat,
    "Arm": Arm,
}


def frame_of(d: dict[str, Any]) -> Any:
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k != "type"}
    return TYPES[d["type"]](**kw)


def report_of(d: dict[str, Any]) -> StatusReport:
    return StatusReport(
        d["counter"],
        d["clock_ms"],
        SuitState[d["state"]],
        d["battery_pct"],
        Faults(d["faults"]),
        PulseProgram(*d["program"]),
        d["first_channel"],
        tuple(d["levels_mA"]),
        tuple(d["impedance_ohm"]),
    )


def bitwise_crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def seal(body: bytes) -> bytes:
    return body + bitwise_crc16_ccitt_false(body).to_bytes(2, "little")


def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1 == bitwise_crc16_ccitt_false(b"123456789")
    for kind in ("control", "signed", "status", "old_version"):
        for v in VECTORS[kind]:
            raw = bytes.fromhex(v["hex"])
            assert bitwise_crc16_ccitt_false(raw[:-2]) == int.from_bytes(raw[-2:], "little")


@pytest.mark.parametrize("vector", VECTORS["control"], ids=lambda v: v["name"])
def test_control_golden_vectors(vector: dict[str, Any]) -> None:
    frame = frame_of(vector["frame"])
    assert encode(frame).hex() == vector["hex"]
    assert decode_control(bytes.fromhex(vector["hex"])) == frame


@pytest.mark.parametrize("vector", VECTORS["signed"], ids=lambda v: v["name"])
def test_signed_golden_vectors(vector: dict[str, Any]) -> None:
    frame = frame_of(vector["frame"])
    raw = bytes.fromhex(vector["hex"])
    assert encode(frame, KEY, vector["key_id"]) == raw
    assert decode_control(raw, keys={vector["key_id"]: KEY}) == frame
    with pytest.raises(RemoteProtocolError, match="unknown key id"):
        decode_control(raw)
    with pytest.raises(RemoteProtocolError, match="tag mismatch"):
        decode_control(raw, keys={vector["key_id"]: b"another key"})


@pytest.mark.parametrize("vector", VECTORS["status"], ids=lambda v: v["name"])
def test_status_golden_vectors(vector: dict[str, Any]) -> None:
    report = report_of(vector["report"])
    assert encode_status(report).hex() == vector["hex"]
    assert decode_status(bytes.fromhex(vector["hex"])) == report


@pytest.mark.parametrize("vector", VECTORS["garbage"], ids=lambda v: v["name"])
def test_garbage_vectors_raise_remote_protocol_error(vector: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_control(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize("vector", VECTORS["old_version"], ids=lambda v: v["name"])
def test_a_version_1_frame_is_refused_with_a_message_for_the_trainer(
    vector: dict[str, Any],
) -> None:
    raw = bytes.fromhex(vector["hex"])
    for decode in (decode_status, decode_control):
        with pytest.raises(UnsupportedVersion) as info:
            decode(raw)
        assert info.value.version == 1
        assert str(info.value) == (
            "this suit speaks suit protocol version 1; update its firmware to version 2"
        )


def test_frame_sizes_match_the_spec() -> None:
    assert CONTROL_OVERHEAD == 16 and STATUS_HEADER_LEN == 20
    assert len(encode(SetLevels(1, 0, (120.0,) * 12))) == 30
    assert len(encode(SetLevels(1, 0, (120.0,) * 32))) == 50 <= REQUIRED_ATT_PAYLOAD
    assert len(encode(SetProgram(1, 1, 85, 350))) == 20
    assert {len(encode(f)) for f in (StopAll(1), Heartbeat(1), Arm(1))} == {16}


def test_level_layout_byte_by_byte() -> None:
    raw = encode(SetLevels(0x01020304, 9, (0.5, 1.0, 120.0)))
    assert raw[0] == 0x21  # version 2, type SET_LEVELS
    assert raw[1:5] == b"\x04\x03\x02\x01"  # counter, u32 little-endian
    assert raw[5] == 0  # key id: none
    assert raw[6] == 9  # program id
    assert raw[7] == 3  # channel count
    assert list(raw[8:11]) == [1, 2, 240]  # 0.5 mA units
    assert raw[11:19] == bytes(8)  # the tag: zeros without a key
    assert len(raw) == 21 and raw[19:] == crc16(raw[:19]).to_bytes(2, "little")


def test_program_and_status_layout_byte_by_byte() -> None:
    raw = encode(SetProgram(7, 3, 85, 450))
    assert raw[:6] == bytes((0x22, 7, 0, 0, 0, 0))
    assert struct.unpack("<BBH", raw[6:10]) == (3, 85, 450)
    report = StatusReport(
        9,
        70000,
        SuitState.ARMED,
        55,
        Faults.CHARGE_CLAMPED,
        PulseProgram(3, 85, 450),
        1,
        (2.5,),
        (None,),
    )
    raw = encode_status(report)
    assert raw[0] == 0x28
    assert struct.unpack("<IIBBBBBHBB", raw[1:18]) == (9, 70000, 1, 55, 0x40, 3, 85, 450, 1, 1)
    assert raw[18:20] == bytes((5, 255)) and len(raw) == 22


def test_levels_are_floored_never_rounded_up() -> None:
    assert decode_control(encode(SetLevels(1, 0, (10.49, 0.4)))) == SetLevels(1, 0, (10.0, 0.0))


@pytest.mark.parametrize(
    "frame",
    [
        SetLevels(1, 0, (120.5,)),
        SetLevels(1, 0, (-1.0,)),
        SetLevels(1, 0, (float("nan"),)),
        SetLevels(1, 0, ()),
        SetLevels(1, 256, (1.0,)),
        SetLevels(1 << 32, 0, (1.0,)),
        SetLevels(-1, 0, (1.0,)),
        SetProgram(1, 1, 200, 350),
        SetProgram(1, 0, 85, 350),  # id 0 is the suit's own default
        SetProgram(1, 1, 85, 451),
        SetProgram(1, 1, 85, 376.56),  # type: ignore[arg-type]
    ],
)
def test_values_the_protocol_cannot_carry_are_local_errors(frame: Any) -> None:
    with pytest.raises(LocalProtocolError):
        encode(frame)


def test_a_key_needs_its_id() -> None:
    with pytest.raises(LocalProtocolError):
        encode(Arm(1), KEY, 0)
    with pytest.raises(LocalProtocolError):
        encode(Arm(1), None, 3)


def test_status_is_split_to_fit_the_payload() -> None:
    report = StatusReport(
        1, 5, SuitState.ARMED, 90, Faults.NONE, POWER_ON_PROGRAM, 0, (1.0,) * 32, (800.0,) * 32
    )
    chunks = encode_status_chunks(report, REQUIRED_ATT_PAYLOAD)
    assert [len(c) for c in chunks] == [64, 40]  # channels 0-21, 22-31
    assert [decode_status(c).first_channel for c in chunks] == [0, 22]
    big = encode_status_chunks(report, 244)
    assert len(big) == 1 and len(big[0]) == 84
    conn = ControllerConnection(32)
    conn.connected()
    for c in chunks:
        conn.receive_data(c, 0.0)
    assert conn.view.levels_mA == [1.0] * 32
    assert conn.view.state is SuitState.ARMED and conn.view.program == POWER_ON_PROGRAM


VALID_STATUS = bytes.fromhex(VECTORS["status"][0]["hex"])


@given(st.binary(max_size=96))
@example(b"")
@example(VALID_STATUS[:-3] + crc16(VALID_STATUS[:-3]).to_bytes(2, "little"))
@example(seal(bytes.fromhex("28")))
@example(seal(bytes.fromhex("2801000000")))
@example(seal(VALID_STATUS[:17]))
@example(seal(VALID_STATUS[:-2] + b"\x00"))
def test_decoding_anything_only_raises_remote_protocol_error(data: bytes) -> None:
    """A malformed notification is RemoteProtocolError, never IndexError or struct.error."""
    for decode in (decode_control, decode_status):
        with contextlib.suppress(RemoteProtocolError):
            decode(data)


@given(st.sampled_from(range(len(VALID_STATUS) - 2)), st.binary(min_size=1, max_size=8))
def test_truncated_or_padded_status_with_a_valid_crc_is_a_protocol_error(
    cut: int, pad: bytes
) -> None:
    for body in (VALID_STATUS[:cut], VALID_STATUS[:-2] + pad):
        with pytest.raises(RemoteProtocolError):
            decode_status(seal(body))


@given(
    st.sampled_from([v["hex"] for v in VECTORS["control"] + VECTORS["status"]]),
    st.integers(0, 1000),
    st.integers(0, 7),
)
def test_any_single_bit_flip_is_caught(hexstr: str, pos: int, bit: int) -> None:
    raw = bytearray(bytes.fromhex(hexstr))
    raw[pos % len(raw)] ^= 1 << bit
    with pytest.raises(RemoteProtocolError):
        decode_control(bytes(raw))
    with pytest.raises(RemoteProtocolError):
        decode_status(bytes(raw))


def test_what_a_broken_frame_is_told_apart_by() -> None:
    from suit_controller.protocol.codec import level_code

    # a frame type nobody defined names its nibble (not the CRC's, not the counter's)
    with pytest.raises(RemoteProtocolError, match=r"^unknown frame type 0x7$"):
        decode_control(seal(bytes([0x27, 0x05, 0, 0, 0, 0])))
    # too short: before the CRC is read, then for its type
    with pytest.raises(RemoteProtocolError, match=r"^frame of 0 bytes is too short$"):
        decode_status(b"")
    with pytest.raises(RemoteProtocolError, match=r"^frame of 2 bytes is too short$"):
        decode_status(b"\xff\xff")  # the CRC of nothing: still too short, never an IndexError
    with pytest.raises(RemoteProtocolError, match=r"^STATUS frame of 3 bytes is too short$"):
        decode_status(seal(bytes([0x28])))
    # another version, newer as well as older, is refused as such
    with pytest.raises(UnsupportedVersion):
        decode_control(seal(bytes([0x35, 1, 0, 0, 0, 0]) + bytes(16)))
    # a level is floored to 0.5 mA, but 1 mA summed in floating point is 1 mA
    one_mA = sum([0.1] * 10)
    assert one_mA < 1.0 and level_code(one_mA) == 2
    with pytest.raises(LocalProtocolError, match=r"above the protocol's 120\.0 mA$"):
        level_code(120.5)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_a_frame_decodes_the_same_from_bytes_bytearray_or_memoryview(kind: type) -> None:
    """A link may hand over any bytes-like buffer: the frame and its levels are the same."""
    frame = SetLevels(9, 3, (0.5, 20.0, 120.0))
    data = encode(frame)
    assert decode_control(kind(bytearray(data))) == frame
    levels = decode_control(kind(bytearray(data)))
    assert isinstance(levels, SetLevels) and levels.levels_mA == (0.5, 20.0, 120.0)


def test_the_same_level_codes_decode_to_one_shared_tuple() -> None:
    """A suit mostly gets the same few frames again: their levels are not rebuilt each time
    (another frame in between does not empty the cache; it is emptied only when full)."""
    from suit_controller.protocol import codec

    codec._LEVELS.clear()  # another test may have left it one short of full
    a, b = SetLevels(1, 1, (10.0, 20.0)), SetLevels(2, 1, (30.0, 40.0))
    first = decode_control(encode(a))
    assert isinstance(first, SetLevels) and decode_control(encode(b)) == b
    again = decode_control(encode(SetLevels(3, 1, (10.0, 20.0))))
    assert isinstance(again, SetLevels) and again.levels_mA is first.levels_mA


def test_the_levels_cache_is_emptied_when_full_and_never_grows_past_its_bound() -> None:
    from suit_controller.protocol import codec

    codec._LEVELS.clear()
    for n in range(codec._LEVELS_KEPT + 1):
        codes = bytes([n % 240, n // 240])
        assert codec._levels_mA(codes) == (0.5 * (n % 240), 0.5 * (n // 240))
        assert len(codec._LEVELS) <= codec._LEVELS_KEPT
    assert len(codec._LEVELS) == 1  # emptied when full, then the new one kept


def test_status_channel_caches_repeat_bytes_and_errors_and_follow_new_values() -> None:
    """The codec caches a status's channel bytes both ways (a suit repeats itself five
    times a second): a repeat gives the same bytes and the same report, another value
    gives other bytes, a list of levels still encodes, and a bad level raises every
    time (only what encoded is kept)."""

    def report(levels: Any, imps: Any) -> StatusReport:
        return StatusReport(
            7, 1000, SuitState.ARMED, 90, Faults.NONE, PulseProgram(3, 85, 350), 0, levels, imps
        )

    a = report((10.0, 0.0, 5.5), (800.0, None, 400.0))
    first, again = encode_status(a), encode_status(a)
    assert first == again
    assert decode_status(first) == decode_status(again) == a
    b = report((10.5, 0.0, 5.5), (800.0, None, 400.0))
    assert encode_status(b) != first and decode_status(encode_status(b)) == b
    assert encode_status(report([10.0, 0.0, 5.5], [800.0, None, 400.0])) == first
    bad = report((10.0, -1.0, 5.5), (800.0, None, 400.0))
    for _ in range(2):
        with pytest.raises(LocalProtocolError):
            encode_status(bad)
    flagged = report((10.0, 0.0, 5.5), (800.0, None, 400.0))
    flagged = StatusReport(**{**flagged.__dict__, "faults": Faults.WATCHDOG | Faults.BAD_FRAME})
    assert decode_status(encode_status(flagged)).faults == Faults.WATCHDOG | Faults.BAD_FRAME


def _channels_report(levels: Any, imps: Any) -> StatusReport:
    return StatusReport(
        7, 1000, SuitState.ARMED, 90, Faults.NONE, PulseProgram(3, 85, 350), 0, levels, imps
    )


def test_status_channel_caches_keep_what_they_made_and_stay_bounded() -> None:
    """Both status caches hand back what they made for a repeat, after another value in
    between (they are emptied only when full), and never hold more than `_LEVELS_KEPT`."""
    from suit_controller.protocol import codec

    codec._PAIRS_OUT.clear()
    codec._PAIRS_IN.clear()
    a, b = ((10.0, 0.0), (800.0, None)), ((10.5, 0.0), (800.0, None))
    made = codec._status_pairs(*a)
    assert codec._status_pairs(*b) != made
    assert codec._status_pairs(*a) is made  # kept over another value
    first = decode_status(encode_status(_channels_report(*a)))
    decode_status(encode_status(_channels_report(*b)))
    again = decode_status(encode_status(_channels_report(*a)))
    assert again.levels_mA is first.levels_mA and again.impedance_ohm is first.impedance_ohm
    for n in range(codec._LEVELS_KEPT + 1):
        levels = (0.5 * (n % 240), 0.5 * (n // 240))
        codec._status_pairs(levels, (800.0, None))
        decode_status(encode_status(_channels_report(levels, (800.0, None))))
        assert len(codec._PAIRS_OUT) <= codec._LEVELS_KEPT
        assert len(codec._PAIRS_IN) <= codec._LEVELS_KEPT
    assert len(codec._PAIRS_OUT) == 1 and len(codec._PAIRS_IN) == 1  # emptied, then kept one


@pytest.mark.parametrize(
    ("levels", "imps"),
    [([10.0, 0.0], (800.0, None)), ((10.0, 0.0), [800.0, None]), ([10.0, 0.0], [800.0, None])],
)
def test_a_status_given_lists_encodes_as_the_same_tuples_do(levels: Any, imps: Any) -> None:
    """Lists (not cached: they cannot be a key) in either field encode like tuples."""
    assert encode_status(_channels_report(levels, imps)) == encode_status(
        _channels_report(tuple(levels), tuple(imps))
    )


def test_a_status_with_more_levels_than_impedances_is_refused() -> None:
    """Refused by `encode_status`, and by the channel bytes' own zip (strict) beneath it."""
    from suit_controller.protocol import codec

    with pytest.raises(LocalProtocolError, match="do not line up"):
        encode_status(_channels_report((10.0, 0.0, 5.0), (800.0, None)))
    with pytest.raises(ValueError):
        codec._status_pairs((10.0, 0.0, 5.0), (800.0, None))


@pytest.mark.parametrize("channels", [1, 5, 6])
def test_a_status_that_fits_one_notification_is_that_one_notification(channels: int) -> None:
    """The shortcut for a report that fits (`<= per`) gives what the general split gives."""
    from suit_controller.protocol.codec import STATUS_HEADER_LEN, status_channels_per_frame

    payload = STATUS_HEADER_LEN + 2 * 6 + 1  # room for 6 channels at most
    per = status_channels_per_frame(payload)
    report = _channels_report((10.0,) * channels, (800.0,) * channels)
    assert encode_status_chunks(report, payload) == [encode_status(report)]
    general = [
        encode_status(
            _channels_report(report.levels_mA[s : s + per], report.impedance_ohm[s : s + per])
        )
        for s in range(0, channels, per)
    ]
    assert encode_status_chunks(report, payload) == general
