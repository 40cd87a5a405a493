"""The suit's authentication layer without a radio (sim/suit_auth.py through the firmware)."""

from __future__ import annotations

from sim.firmware import SuitFirmware
from suit_controller.protocol import Arm, Faults, SetLevels, StopAll, SuitState, encode
from suit_controller.protocol.enrollment import (
    Refusal,
    SuitKey,
    decode_message,
    encode_enroll,
    encode_forget,
    encode_rotate,
)

KEY = SuitKey(1, bytes(range(32)))
STUDIO = bytes(16)


def enrolled() -> SuitFirmware:
    fw = SuitFirmware()
    assert fw.auth.handle(encode_enroll(STUDIO, KEY)) is None
    return fw


def test_an_open_suit_takes_unsigned_frames_an_enrolled_one_only_its_key() -> None:
    fw = SuitFirmware()
    assert fw.receive(encode(Arm(1)), 0.0) is not None and fw.state is SuitState.ARMED
    fw = enrolled()
    assert fw.receive(encode(Arm(1)), 0.0) is None and fw.auth.refused_frames == 1
    wrong = SuitKey(1, bytes(32))
    assert fw.receive(encode(Arm(2), wrong.key, 1), 0.0) is None
    assert fw.faults & Faults.BAD_FRAME and fw.last_counter == 0 and fw.state is SuitState.IDLE
    assert fw.receive(encode(Arm(3), KEY.key, 1), 0.0) is not None
    fw.receive(encode(SetLevels(4, 0, (10.0,) * 12), KEY.key, 1), 0.0)
    assert fw.state is SuitState.ARMED and fw.applied_mA[0] == 10.0 and fw.last_counter == 4
    # replaying an accepted frame does nothing
    assert fw.receive(encode(Arm(3), KEY.key, 1), 0.01) is None and fw.stale_frames == 1


def test_anyones_stop_is_honoured_and_never_moves_the_counter() -> None:
    fw = enrolled()
    fw.receive(encode(Arm(5), KEY.key, 1), 0.0)
    assert not fw.receive_stop(encode(Arm(6)), 0.0)  # only STOP_ALL acts there
    assert fw.state is SuitState.ARMED
    assert fw.receive_stop(encode(StopAll(2**32 - 1)), 0.01)
    assert fw.state is SuitState.STOPPED and fw.last_counter == 5
    assert fw.receive(encode(StopAll(0)), 0.02) is not None  # on control too, any counter
    assert fw.last_counter == 5
    assert fw.receive(encode(StopAll(9), KEY.key, 1), 0.03) is not None and fw.last_counter == 9
    assert not fw.receive_stop(b"\x00" * 16, 0.04) and fw.faults & Faults.BAD_FRAME
    fw.receive(encode(Arm(10), KEY.key, 1), 0.05)
    assert fw.state is SuitState.ARMED
    assert fw.receive_stop(encode(StopAll(11), bytes(32), 7), 0.06)  # a key it does not hold
    assert fw.state is SuitState.STOPPED and fw.last_counter == 10


def test_enrollment_messages_rotation_forget_and_factory_reset() -> None:
    fw = enrolled()
    other = SuitKey(1, bytes(range(1, 33)))
    assert fw.auth.handle(encode_enroll(bytes(range(16)), other)) is Refusal.ENROLLED_ELSEWHERE
    assert fw.auth.handle(encode_enroll(STUDIO, other)) is Refusal.ALREADY_ENROLLED_HERE
    new = SuitKey(2, bytes(range(2, 34)))
    assert fw.auth.handle(encode_rotate(other, new)) is Refusal.BAD_PROOF
    assert fw.auth.key == KEY
    assert fw.auth.handle(encode_rotate(KEY, new)) is None and fw.auth.key == new
    assert fw.receive(encode(Arm(1), KEY.key, 1), 0.0) is None  # the old key is gone
    assert fw.auth.handle(encode_forget(KEY, STUDIO)) is Refusal.BAD_PROOF
    assert fw.auth.handle(encode_forget(new, STUDIO)) is None and not fw.auth.enrolled
    assert fw.auth.handle(encode_forget(new, STUDIO)) is Refusal.NOT_ENROLLED
    assert fw.auth.handle(b"\x01" + bytes(10)) is Refusal.MALFORMED
    assert fw.auth.handle(encode_enroll(STUDIO, KEY)[:-1] + b"") is Refusal.MALFORMED
    fw = enrolled()
    fw.auth.factory_reset()
    assert not fw.auth.enrolled and fw.auth.keys == {}
    msg = decode_message(encode_enroll(STUDIO, KEY))
    assert repr(msg).count("bytes>") == 1 and KEY.key.hex() not in repr(msg)


def test_an_open_suits_counter_moves_on_the_control_characteristic_never_on_the_stop_one() -> None:
    """Anyone may write the stop characteristic: a stop there must not lock the studio out
    of an open suit by numbering itself 0xFFFFFFFF (as the C core)."""
    fw = SuitFirmware()
    fw.receive(encode(Arm(5)), 0.0)
    assert fw.receive_stop(encode(StopAll(2**32 - 1)), 0.01)
    assert fw.state is SuitState.STOPPED and fw.last_counter == 5
    assert fw.receive(encode(Arm(6)), 0.02) is not None and fw.state is SuitState.ARMED
    assert fw.receive(encode(StopAll(9)), 0.03) is not None  # on control, unsigned: it counts
    assert fw.state is SuitState.STOPPED and fw.last_counter == 9
    fw = enrolled()  # a signed stop on the stop characteristic counts
    assert fw.receive_stop(encode(StopAll(4), KEY.key, 1), 0.0) and fw.last_counter == 4
