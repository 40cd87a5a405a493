"""The suit firmware in C (firmware/), driven from Python through ctypes.

Every frame here is built by hand from docs/protocol.md (struct.pack and
binascii.crc_hqx), not with the project's Python codec, so the C core is
checked against the spec itself.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from sim import c_firmware
from sim.c_firmware import (
    ActiveProgram,
    CSuitFirmware,
    DecodedControl,
    Reception,
    SuitFault,
    crc16,
    decode_control,
    encode_status,
    unavailable_reason,
)
from suit_controller.protocol import SuitState

_why = unavailable_reason()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"C firmware unavailable: {_why}")

VECTORS = Path(__file__).parent / "vectors" / "protocol.json"
SET_LEVELS, SET_PROGRAM, STOP_ALL, HEARTBEAT, ARM = 1, 2, 3, 4, 5


# -- frames by hand, from the spec ------------------------------------------------------------


def crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)  # CRC-16/CCITT-FALSE


def control(
    kind: int,
    counter: int,
    payload: bytes = b"",
    *,
    key_id: int = 0,
    tag: bytes = bytes(8),
    version: int = 2,
) -> bytes:
    body = struct.pack("<BIB", version << 4 | kind, counter, key_id) + payload + tag
    return body + struct.pack("<H", crc(body))


def levels(counter: int, codes: list[int], program: int = 0) -> bytes:
    return control(SET_LEVELS, counter, struct.pack("<BB", program, len(codes)) + bytes(codes))


def program(counter: int, program_id: int, hz: int, us: int) -> bytes:
    return control(SET_PROGRAM, counter, struct.pack("<BBH", program_id, hz, us))


def status(frame: bytes) -> dict[str, Any]:
    """A status frame read by hand (and its CRC checked)."""
    assert struct.unpack_from("<H", frame, len(frame) - 2)[0] == crc(frame[:-2])
    (kind, counter, clock, state, battery, faults, pid, hz, us, first, n) = struct.unpack_from(
        "<BIIBBBBBHBB", frame
    )
    assert kind == 0x28 and len(frame) == 20 + 2 * n
    pairs = frame[18:-2]
    return {
        "counter": counter,
        "clock_ms": clock,
        "state": state,
        "battery": battery,
        "faults": faults,
        "program": (pid, hz, us),
        "first": first,
        "levels": list(pairs[0::2]),
        "impedance": list(pairs[1::2]),
    }


def armed(n: int = 3, **kwargs: Any) -> CSuitFirmware:
    fw = CSuitFirmware(n, **kwargs)
    assert fw.receive(control(ARM, 1), 0.0) is Reception.APPLIED
    return fw


# -- the spec's arithmetic ---------------------------------------------------------------------


def test_the_crc_is_ccitt_false_in_c_and_by_hand() -> None:
    assert crc(b"123456789") == 0x29B1
    assert crc16(b"123456789") == 0x29B1
    assert crc16(bytes(range(256))) == crc(bytes(range(256)))


def test_a_hand_built_frame_decodes_field_by_field() -> None:
    frame = levels(0x12345678, [0, 20, 240], program=7)
    assert len(frame) == 18 + 3
    assert decode_control(frame) == DecodedControl(
        SET_LEVELS, 0x12345678, 0, 7, (0, 20, 240), 0, 0, bytes(8)
    )
    assert len(levels(1, [20] * 12)) == 30
    assert decode_control(program(2, 9, 150, 450)) == DecodedControl(
        SET_PROGRAM, 2, 0, 9, (), 150, 450, bytes(8)
    )


# -- the state machine -------------------------------------------------------------------------


def test_power_on_is_idle_with_zero_outputs() -> None:
    fw = CSuitFirmware(4)
    assert fw.state is SuitState.IDLE
    assert not fw.applied_mA.any()
    assert fw.program == ActiveProgram(0, 85, 350)
    assert fw.last_counter == 0
    assert fw.battery_pct == 100 and fw.faults == SuitFault.NONE


def test_levels_are_ignored_until_armed() -> None:
    fw = CSuitFirmware(2)
    assert fw.receive(levels(1, [20, 20]), 0.0) is Reception.IGNORED
    assert not fw.applied_mA.any()
    fw.receive(control(ARM, 2), 0.0)
    assert fw.state is SuitState.ARMED and not fw.applied_mA.any()
    fw.receive(levels(3, [20, 41]), 0.01)
    assert fw.applied_mA.tolist() == [10.0, 20.5]
    assert fw.applied_codes == (20, 41)


def test_stop_all_zeroes_and_latches_until_arm() -> None:
    fw = armed(2)
    fw.receive(levels(2, [20, 20]), 0.0)
    fw.receive(control(STOP_ALL, 3), 0.01)
    assert fw.state is SuitState.STOPPED and not fw.applied_mA.any()
    assert fw.receive(levels(4, [20, 20]), 0.02) is Reception.IGNORED
    assert not fw.applied_mA.any()
    fw.receive(control(ARM, 5), 0.03)
    fw.receive(levels(6, [2, 2]), 0.04)
    assert fw.applied_mA.tolist() == [1.0, 1.0]


def test_watchdog_trips_at_250_ms_and_needs_arm() -> None:
    fw = CSuitFirmware(1)
    fw.receive(control(ARM, 1), 0.9)
    fw.receive(levels(2, [40]), 1.0)
    assert fw.watchdog_deadline == pytest.approx(1.25)
    assert not fw.check_watchdog(1.2499)
    assert fw.applied_mA[0] == 20.0
    assert fw.check_watchdog(1.25)
    assert fw.state is SuitState.WATCHDOG and fw.applied_mA[0] == 0
    assert SuitFault.WATCHDOG in fw.faults and fw.watchdog_trips == 1
    assert fw.receive(levels(3, [40]), 1.3) is Reception.IGNORED
    assert fw.applied_mA[0] == 0
    assert fw.totals(2.0)[0].stim_s == pytest.approx(0.25)
    assert fw.totals(2.0)[0].charge_uC == pytest.approx(20.0 * 350 / 1000 * 85 * 0.25)
    fw.receive(control(ARM, 4), 2.0)
    assert SuitFault.WATCHDOG not in fw.faults


def test_heartbeat_feeds_the_watchdog_and_set_program_does_not() -> None:
    fw = armed(1)
    fw.receive(levels(2, [40]), 0.0)
    for i, t in enumerate((0.2, 0.4, 0.6)):
        fw.receive(control(HEARTBEAT, 3 + i), t)
        assert fw.state is SuitState.ARMED
    assert fw.last_feed == pytest.approx(0.6)
    fw.receive(program(10, 1, 85, 350), 0.8)
    assert fw.check_watchdog(0.85)
    assert fw.state is SuitState.WATCHDOG


def test_the_watchdog_time_is_settable() -> None:
    fw = armed(1)
    fw.watchdog_s = 10.0
    assert fw.watchdog_s == 10.0
    assert not fw.check_watchdog(9.99)
    assert fw.check_watchdog(10.0)
    with pytest.raises(ValueError, match="watchdog"):
        fw.watchdog_s = 0.0


def test_stale_and_repeated_counters_are_dropped_without_a_flag() -> None:
    fw = armed(1)
    assert fw.receive(levels(10, [40]), 0.0) is Reception.APPLIED
    assert fw.receive(levels(10, [0]), 0.01) is Reception.STALE
    assert fw.receive(levels(9, [0]), 0.02) is Reception.STALE
    assert fw.applied_mA[0] == 20.0
    assert fw.last_counter == 10 and fw.stale_frames == 2
    assert fw.faults == SuitFault.NONE and fw.bad_frames == 0


def test_stop_all_is_honoured_whatever_its_counter() -> None:
    fw = armed(2)
    fw.receive(levels(1000, [40, 40]), 0.0)
    assert fw.receive(control(STOP_ALL, 1), 0.01) is Reception.APPLIED
    assert fw.state is SuitState.STOPPED and not fw.applied_mA.any()
    assert fw.last_counter == 1000


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (levels(5, [10, 10])[:-1] + b"\x00", Reception.BAD_CRC),
        (control(STOP_ALL, 5, version=1), Reception.BAD_VERSION),
        (control(STOP_ALL, 5, version=3), Reception.BAD_VERSION),
        (control(0x7, 5), Reception.BAD_TYPE),
        (control(0x8, 5), Reception.BAD_TYPE),
        (control(STOP_ALL, 5, b"\x00"), Reception.BAD_LENGTH),
        (control(SET_LEVELS, 5, bytes([0, 3, 10, 10])), Reception.BAD_LENGTH),
        (bytes.fromhex("1304006b1a"), Reception.BAD_LENGTH),  # a version 1 STOP_ALL
        (levels(5, [10, 241]), Reception.BAD_PAYLOAD),
        (levels(5, []), Reception.BAD_PAYLOAD),
        (program(5, 0, 85, 350), Reception.BAD_PAYLOAD),
        (program(5, 1, 151, 350), Reception.BAD_PAYLOAD),
        (program(5, 1, 85, 451), Reception.BAD_PAYLOAD),
        (program(5, 1, 85, 49), Reception.BAD_PAYLOAD),
        (control(HEARTBEAT, 5, tag=b"\x01" + bytes(7)), Reception.BAD_TAG),
        (control(HEARTBEAT, 5, key_id=1, tag=b"\x01" * 8), Reception.UNAUTHENTICATED),
    ],
)
def test_corrupt_frames_are_dropped_flagged_and_change_nothing(
    frame: bytes, why: Reception
) -> None:
    fw = armed(2)
    fw.receive(levels(2, [30, 30]), 0.0)
    assert fw.receive(frame, 0.01) is why and why.corrupt
    assert fw.state is SuitState.ARMED and fw.applied_codes == (30, 30)
    assert fw.last_counter == 2 and fw.bad_frames == 1
    first, again = status(fw.status_frames()[0]), status(fw.status_frames()[0])
    assert first["faults"] & SuitFault.BAD_FRAME  # reported ...
    assert not again["faults"] & SuitFault.BAD_FRAME  # ... once


def test_extra_channels_are_ignored_and_missing_ones_are_zero() -> None:
    fw = armed(3)
    fw.receive(levels(2, [10] * 12), 0.0)
    assert fw.applied_codes == (10, 10, 10)
    fw.receive(levels(3, [10]), 0.01)
    assert fw.applied_codes == (10, 0, 0)


# -- program confirmation and the suit's own limits -------------------------------------------


def test_program_is_confirmed_in_status_before_levels_apply() -> None:
    fw = armed(2)
    fw.enable_notifications(0.0)
    fw.receive(levels(2, [60, 60]), 0.0)
    fw.take_notifications()
    fw.receive(program(3, 7, 20, 450), 0.01)
    assert not fw.applied_mA.any()  # zero at once
    assert fw.program == ActiveProgram(7, 20, 450)
    (confirmation,) = fw.take_notifications()  # at once
    seen = status(confirmation)
    assert seen["program"] == (7, 20, 450) and seen["counter"] == 3
    assert seen["clock_ms"] == 10
    # levels computed for the old program are dropped and flagged
    assert fw.receive(levels(4, [60, 60], program=0), 0.02) is Reception.PROGRAM_MISMATCH
    assert not fw.applied_mA.any()
    assert status(fw.status_frames()[0])["faults"] & SuitFault.PROGRAM_MISMATCH
    assert fw.receive(levels(5, [60, 60], program=7), 0.03) is Reception.APPLIED
    assert fw.applied_mA.tolist() == [30.0, 30.0]
    assert fw.pulse_width_us.tolist() == [450, 450] and fw.frequency_hz.tolist() == [20, 20]


def test_own_charge_limit_holds_at_the_active_pulse_width() -> None:
    fw = armed(2)
    fw.receive(levels(2, [240, 240]), 0.0)  # 120 mA x 350 µs = 42 µC: allowed
    assert fw.applied_mA.tolist() == [120.0, 120.0]
    fw.receive(program(3, 1, 85, 450), 0.01)
    fw.receive(levels(4, [240, 200], program=1), 0.02)  # 54 µC asked, 45 µC is the limit
    assert fw.applied_mA.tolist() == [100.0, 100.0]
    assert SuitFault.CHARGE_CLAMPED in fw.faults
    assert all(mA * 450 / 1000 <= 45.0 for mA in fw.applied_mA)
    fw.receive(control(ARM, 5), 0.03)  # already armed: only feeds the watchdog
    assert SuitFault.CHARGE_CLAMPED in fw.faults
    fw.receive(control(STOP_ALL, 6), 0.04)
    fw.receive(control(ARM, 7), 0.05)  # the ARM that arms the suit again clears it
    assert SuitFault.CHARGE_CLAMPED not in fw.faults


def test_own_maximum_current_and_charge_limit_are_configurable() -> None:
    fw = armed(1, max_mA=80.0)
    fw.receive(levels(2, [200]), 0.0)
    assert fw.applied_mA[0] == 80.0 and fw.faults == SuitFault.LEVEL_CLAMPED
    fw = armed(1, charge_limit_uC=30.0)
    fw.receive(levels(2, [200]), 0.0)  # 100 mA x 350 µs = 35 µC
    assert fw.applied_mA[0] * 350 / 1000 <= 30.0
    assert fw.applied_codes == (171,)  # 171 x 350 = 59850 <= 60000


# -- status --------------------------------------------------------------------------------------


def test_status_reports_the_suit_field_by_field() -> None:
    fw = armed(3, contact_ohm=1000.0)
    fw.receive(levels(2, [10, 20, 30]), 0.2)
    fw.set_battery(12)
    (frame,) = fw.status_frames()
    assert status(frame) == {
        "counter": 2,
        "clock_ms": 200,
        "state": SuitState.ARMED,
        "battery": 12,
        "faults": SuitFault.LOW_BATTERY,
        "program": (0, 85, 350),
        "first": 0,
        "levels": [10, 20, 30],
        "impedance": [50, 50, 50],
    }


def test_status_splits_to_the_att_payload_and_joins_back() -> None:
    fw = armed(32)
    codes = [i * 7 for i in range(32)]
    fw.receive(levels(2, codes), 0.0)
    frames = fw.status_frames(64)
    assert [len(f) for f in frames] == [64, 40]
    parts = [status(f) for f in frames]
    assert [p["first"] for p in parts] == [0, 22]
    assert parts[0]["counter"] == parts[1]["counter"] and parts[0]["program"] == parts[1]["program"]
    assert parts[0]["levels"] + parts[1]["levels"] == codes
    (whole,) = fw.status_frames(185)
    assert status(whole)["levels"] == codes
    with pytest.raises(ValueError, match="ATT payload of 20"):
        fw.status_frames(20)


def test_notifications_at_once_and_every_200_ms() -> None:
    fw = CSuitFirmware(2)
    (first,) = fw.enable_notifications(1.0)
    assert status(first)["state"] == SuitState.IDLE and status(first)["clock_ms"] == 1000
    fw.receive(control(ARM, 1), 1.05)
    (on_arm,) = fw.take_notifications()
    assert status(on_arm)["state"] == SuitState.ARMED
    fw.receive(control(HEARTBEAT, 2), 1.2)
    fw.tick(1.249)
    assert fw.take_notifications() == []
    fw.tick(1.25)
    (periodic,) = fw.take_notifications()
    assert status(periodic)["clock_ms"] == 1250
    fw.tick(1.5)  # the watchdog (fed at 1.2) trips at 1.45: status at once
    trip = [status(f) for f in fw.take_notifications()]
    assert trip[0]["state"] == SuitState.WATCHDOG and trip[0]["clock_ms"] == 1450
    fw.disable_notifications()
    fw.tick(5.0)
    assert fw.take_notifications() == []


def test_detach_and_attach_an_electrode() -> None:
    fw = armed(2)
    fw.receive(levels(2, [40, 40]), 0.0)
    fw.detach(1, 0.1)
    assert fw.applied_mA.tolist() == [20.0, 0.0]
    assert SuitFault.ELECTRODE_OPEN in fw.faults and fw.impedance_ohm[1] is None
    assert status(fw.status_frames()[0])["impedance"][1] == 255
    fw.receive(levels(3, [40, 40]), 0.1)
    assert fw.applied_mA[1] == 0.0  # no contact: no current
    fw.attach(1, 900.0)
    assert SuitFault.ELECTRODE_OPEN not in fw.faults and fw.impedance_ohm[1] == 900.0
    assert fw.applied_mA[1] == 0.0  # resumes with the next frame
    fw.receive(levels(4, [40, 40]), 0.2)
    assert fw.applied_mA[1] == 20.0
    with pytest.raises(ValueError, match=r"channels 0\.\.1"):
        fw.detach(2, 0.3)


def test_the_authentication_hook_takes_a_real_hmac() -> None:
    key = bytes(range(32))

    def verify(key_id: int, signed: bytes, tag: bytes) -> bool:
        if key_id != 1:
            return False
        return hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest()[:8], tag)

    def signed(kind: int, counter: int, payload: bytes = b"") -> bytes:
        head = struct.pack("<BIB", 0x20 | kind, counter, 1) + payload
        tag = hmac.new(key, head, hashlib.sha256).digest()[:8]
        return head + tag + struct.pack("<H", crc(head + tag))

    fw = CSuitFirmware(1, verify_tag=verify)
    assert fw.receive(signed(ARM, 1), 0.0) is Reception.APPLIED
    assert fw.receive(signed(SET_LEVELS, 2, bytes([0, 1, 30])), 0.01) is Reception.APPLIED
    assert fw.applied_codes == (30,)
    forged = bytearray(signed(SET_LEVELS, 3, bytes([0, 1, 240])))
    forged[8] ^= 0xFF  # the level, then a fixed-up CRC: only the tag can tell
    forged[-2:] = struct.pack("<H", crc(bytes(forged[:-2])))
    assert fw.receive(bytes(forged), 0.02) is Reception.UNAUTHENTICATED
    assert fw.receive(control(HEARTBEAT, 4), 0.03) is Reception.UNAUTHENTICATED  # key id 0
    assert fw.applied_codes == (30,) and fw.last_counter == 2
    # an unsigned STOP_ALL is the exception: anyone may stop; it never moves the counter
    assert fw.receive(control(STOP_ALL, 5), 0.04) is Reception.APPLIED
    assert fw.applied_codes == (0,) and fw.last_counter == 2 and fw.state is SuitState.STOPPED


def test_no_compiler_is_a_clear_reason_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(c_firmware, "LIBRARY", tmp_path / "build" / "libems_suit.so")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(c_firmware.FirmwareUnavailable, match=r"no C compiler.*install gcc"):
        c_firmware.build_library()
    monkeypatch.setattr(c_firmware, "FIRMWARE_DIR", tmp_path)
    with pytest.raises(c_firmware.FirmwareUnavailable, match="sources are not in"):
        c_firmware.build_library()


def test_bad_construction_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"1\.\.32 channels"):
        CSuitFirmware(33)
    with pytest.raises(ValueError, match="refused"):
        CSuitFirmware(2, att_payload=10)


# -- the golden vectors (protocol version 2) ----------------------------------------------------

_TYPES = {"SetLevels": 1, "SetProgram": 2, "StopAll": 3, "Heartbeat": 4, "Arm": 5}
_STATES = {s.name: int(s) for s in SuitState}


def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    if data.get("version") != 2:
        pytest.skip(
            f"{VECTORS.name} holds version {data.get('version', 1)} vectors; the C firmware "
            "speaks version 2 (the merge with the Python v2 codec brings its vectors)"
        )
    return data


def _field(d: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in d:
            return d[name]
    raise KeyError(f"none of {names} in {sorted(d)}: update the vector reader in this test")


def test_control_vectors_decode_in_c() -> None:
    for vec in _vectors()["control"]:
        raw, frame = bytes.fromhex(vec["hex"]), vec["frame"]
        got = decode_control(raw)
        assert isinstance(got, DecodedControl), (vec["name"], got)
        assert got.type == _TYPES[frame["type"]], vec["name"]
        assert got.counter == _field(frame, "counter", "seq"), vec["name"]
        assert got.key_id == frame.get("key_id", 0), vec["name"]
        if "levels_mA" in frame:
            assert got.levels == tuple(round(mA * 2) for mA in frame["levels_mA"]), vec["name"]
        if "levels" in frame:
            assert got.levels == tuple(frame["levels"]), vec["name"]
        for name in ("program_id", "frequency_hz", "pulse_width_us"):
            if name in frame:
                assert getattr(got, name) == frame[name], (vec["name"], name)


def test_garbage_vectors_are_refused_in_c() -> None:
    """The codec refuses each; a key id it leaves to the suit, which has no key enrolled."""
    for vec in _vectors()["garbage"]:
        raw = bytes.fromhex(vec["hex"])
        got = decode_control(raw)
        if isinstance(got, DecodedControl):  # well formed, signed with a key id
            assert got.key_id != 0, vec["name"]
            got = CSuitFirmware(2).receive(raw, 0.0)
            assert got is Reception.UNAUTHENTICATED, vec["name"]
        assert isinstance(got, Reception) and got.corrupt, vec["name"]


def test_status_vectors_encode_in_c() -> None:
    encoded = 0
    for vec in _vectors()["status"]:
        r = vec["report"]
        if not r["levels_mA"]:
            continue  # a suit has 1..32 channels: a status without any is for decoders only
        encoded += 1
        impedance = [255 if ohm is None else round(ohm / 20) for ohm in _field(r, "impedance_ohm")]
        state = _field(r, "state")
        frames = encode_status(
            counter=_field(r, "counter", "seq"),
            clock_ms=_field(r, "clock_ms", "suit_clock_ms"),
            state=_STATES[state] if isinstance(state, str) else state,
            battery_pct=r["battery_pct"],
            faults=r["faults"],
            program=ActiveProgram(*r["program"])
            if "program" in r
            else ActiveProgram(
                _field(r, "program_id"), _field(r, "frequency_hz"), _field(r, "pulse_width_us")
            ),
            levels=[round(mA * 2) for mA in _field(r, "levels_mA")],
            impedance=impedance,
            first_channel=r.get("first_channel", 0),
            att_payload=r.get("att_payload", 64),
        )
        assert frames[0] == bytes.fromhex(vec["hex"]), vec["name"]
    assert encoded


def test_the_vector_readers_work_on_hand_built_version_2_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the v2 vectors arrive, the readers above run on vectors built here by hand."""
    head = struct.pack("<BIIBBBBBHBB", 0x28, 300, 5000, 3, 12, 0x03, 7, 85, 450, 10, 2)
    body = head + bytes([0, 41, 0, 255])
    vectors = {
        "version": 2,
        "control": [
            {
                "name": "levels",
                "frame": {
                    "type": "SetLevels",
                    "counter": 70000,
                    "program_id": 7,
                    "levels_mA": [10.0, 0.5],
                },
                "hex": levels(70000, [20, 1], program=7).hex(),
            },
            {
                "name": "program",
                "frame": {
                    "type": "SetProgram",
                    "counter": 2,
                    "program_id": 7,
                    "frequency_hz": 85,
                    "pulse_width_us": 450,
                },
                "hex": program(2, 7, 85, 450).hex(),
            },
        ],
        "status": [
            {
                "name": "watchdog, from channel 10",
                "report": {
                    "counter": 300,
                    "clock_ms": 5000,
                    "state": "WATCHDOG",
                    "battery_pct": 12,
                    "faults": 3,
                    "program_id": 7,
                    "frequency_hz": 85,
                    "pulse_width_us": 450,
                    "first_channel": 10,
                    "levels_mA": [0.0, 0.0],
                    "impedance_ohm": [820.0, None],
                },
                "hex": (body + struct.pack("<H", crc(body))).hex(),
            }
        ],
        "garbage": [{"name": "version 1 arm", "hex": "150600a9ce"}],
    }
    path = tmp_path / "protocol.json"
    path.write_text(json.dumps(vectors))
    monkeypatch.setattr(sys.modules[__name__], "VECTORS", path)
    test_control_vectors_decode_in_c()
    test_garbage_vectors_are_refused_in_c()
    test_status_vectors_encode_in_c()
