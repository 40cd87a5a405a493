"""The suit protocol: golden byte vectors, sizes, and garbage in -> protocol error out."""

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suit_controller.protocol import (
    Arm,
    ControllerEndpoint,
    Faults,
    Heartbeat,
    LocalProtocolError,
    RemoteProtocolError,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
    crc16,
    decode_control,
    decode_status,
    encode,
    encode_status,
    encode_status_chunks,
    seq_newer,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "protocol.json").read_text())
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
        d["seq"],
        SuitState[d["state"]],
        d["battery_pct"],
        Faults(d["faults"]),
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


def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1
    for v in VECTORS["control"]:
        raw = bytes.fromhex(v["hex"])
        assert bitwise_crc16_ccitt_false(raw[:-2]) == int.from_bytes(raw[-2:], "little")


@pytest.mark.parametrize("vector", VECTORS["control"], ids=lambda v: v["name"])
def test_control_golden_vectors(vector: dict[str, Any]) -> None:
    frame = frame_of(vector["frame"])
    assert encode(frame).hex() == vector["hex"]
    assert decode_control(bytes.fromhex(vector["hex"])) == frame


@pytest.mark.parametrize("vector", VECTORS["status"], ids=lambda v: v["name"])
def test_status_golden_vectors(vector: dict[str, Any]) -> None:
    report = report_of(vector["report"])
    assert encode_status(report).hex() == vector["hex"]
    assert decode_status(bytes.fromhex(vector["hex"])) == report


@pytest.mark.parametrize("vector", VECTORS["garbage"], ids=lambda v: v["name"])
def test_garbage_vectors_raise_remote_protocol_error(vector: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_control(bytes.fromhex(vector["hex"]))


def test_a_12_channel_level_frame_fits_the_default_att_payload() -> None:
    assert len(encode(SetLevels(1, (120.0,) * 12))) == 18 <= 20


def test_level_layout_byte_by_byte() -> None:
    raw = encode(SetLevels(0x0102, (0.5, 1.0, 120.0)))
    assert raw[0] == 0x11  # version 1, type SET_LEVELS
    assert raw[1:3] == b"\x02\x01"  # seq, little-endian
    assert raw[3] == 3  # channel count
    assert list(raw[4:7]) == [1, 2, 240]  # 0.5 mA units
    assert len(raw) == 9


def test_levels_are_floored_never_rounded_up() -> None:
    assert decode_control(encode(SetLevels(1, (10.49, 0.4)))) == SetLevels(1, (10.0, 0.0))


@pytest.mark.parametrize(
    "frame",
    [
        SetLevels(1, (120.5,)),
        SetLevels(1, (-1.0,)),
        SetLevels(1, (float("nan"),)),
        SetLevels(1, ()),
        SetLevels(70000, (1.0,)),
        SetProgram(1, None, 200, 350),
        SetProgram(1, 40, 85, 350),
    ],
)
def test_values_the_protocol_cannot_carry_are_local_errors(frame: Any) -> None:
    with pytest.raises(LocalProtocolError):
        encode(frame)


def test_status_is_split_to_fit_the_mtu() -> None:
    report = StatusReport(1, SuitState.ARMED, 90, Faults.NONE, 0, (1.0,) * 12, (800.0,) * 12)
    chunks = encode_status_chunks(report, 20)
    assert [len(c) for c in chunks] == [20, 20, 14]
    big = encode_status_chunks(report, 244)
    assert len(big) == 1 and len(big[0]) == 34
    end = ControllerEndpoint(12)
    for c in chunks:
        end.receive(c)
    assert end.view.levels_mA == [1.0] * 12
    assert end.view.state is SuitState.ARMED


@given(st.binary(max_size=64))
def test_decoding_garbage_only_raises_protocol_error(data: bytes) -> None:
    for decode in (decode_control, decode_status):
        with contextlib.suppress(RemoteProtocolError):
            decode(data)


@given(
    st.sampled_from([v["hex"] for v in VECTORS["control"]]), st.integers(0, 1000), st.integers(0, 7)
)
def test_any_single_bit_flip_is_caught(hexstr: str, pos: int, bit: int) -> None:
    raw = bytearray(bytes.fromhex(hexstr))
    raw[pos % len(raw)] ^= 1 << bit
    with pytest.raises(RemoteProtocolError):
        decode_control(bytes(raw))


def test_sequence_numbers_wrap() -> None:
    assert seq_newer(1, 0) and seq_newer(0, 65535) and not seq_newer(65535, 0)
    assert not seq_newer(5, 5) and seq_newer(5, None)
    end = ControllerEndpoint(1)
    seqs = [int.from_bytes(end.heartbeat()[1:3], "little") for _ in range(3)]
    assert seqs == [1, 2, 3]
