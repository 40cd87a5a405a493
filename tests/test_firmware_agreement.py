"""The Python firmware (sim/firmware.py) and the C core (firmware/) follow the same rules.

Both are fed the same frames at the same times (valid, stale, corrupt, for
another program, re-sent programs, with gaps long enough for the watchdog)
and must report the same status, byte for byte, after every frame: state,
counter, faults, program and every applied level.
"""

from __future__ import annotations

import random
import struct

import pytest

from sim.c_firmware import CSuitFirmware, unavailable_reason
from sim.firmware import SuitFirmware
from suit_controller.protocol import (
    Arm,
    Heartbeat,
    SetProgram,
    StopAll,
    crc16,
    encode,
    encode_levels,
)

_why = unavailable_reason()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"C firmware unavailable: {_why}")

PROGRAMS = [(1, 85, 350), (2, 85, 450), (3, 7, 250), (1, 20, 400)]


def _frames(rng: random.Random, n: int) -> list[tuple[float, bytes]]:
    out: list[tuple[float, bytes]] = []
    now = 0.0
    for counter in range(1, n + 1):
        now += rng.choice((0.0, 0.001, 0.025, 0.1, 0.24, 0.26, 0.4))
        c = counter if rng.random() > 0.1 else rng.randint(0, counter)  # some stale
        kind = rng.random()
        if kind < 0.45:
            pid = rng.choice((0, 1, 2, 3))
            codes = bytes(rng.choice((0, 20, 150, 200, 240)) for _ in range(rng.randint(1, 14)))
            frame = encode_levels(c, pid, codes)
        elif kind < 0.6:
            frame = encode(SetProgram(c, *rng.choice(PROGRAMS)))
        elif kind < 0.7:
            frame = encode(StopAll(c))
        elif kind < 0.8:
            frame = encode(Heartbeat(c))
        else:
            frame = encode(Arm(c))
        if rng.random() < 0.08:  # corrupt: a flipped bit, then sometimes a fixed-up CRC
            raw = bytearray(frame)
            raw[rng.randrange(len(raw) - 2)] ^= 1 << rng.randrange(8)
            if rng.random() < 0.5:
                raw[-2:] = struct.pack("<H", crc16(bytes(raw[:-2])))
            frame = bytes(raw)
        out.append((now, frame))
    return out


def test_python_and_c_firmware_report_the_same_after_every_frame() -> None:
    seen = {"watchdog trips": 0, "mismatches": 0, "stale": 0, "corrupt": 0, "clamps": 0}
    for seed in range(12):
        rng = random.Random(seed)
        py, c = SuitFirmware(12), CSuitFirmware(12)
        for step, (now, frame) in enumerate(_frames(rng, 400)):
            assert py.check_watchdog(now) == c.check_watchdog(now), (seed, step)
            py.receive(frame, now)
            c.receive(frame, now)
            assert py.status_frames(64, now) == c.status_frames(64), (seed, step, frame.hex())
        counts = (py.watchdog_trips, py.mismatched_frames, py.stale_frames, py.bad_frames)
        assert counts == (c.watchdog_trips, c.mismatched_frames, c.stale_frames, c.bad_frames)
        assert py.charge_clamps == c.charge_clamps, seed
        for name, n in zip(seen, (*counts, py.charge_clamps), strict=True):
            seen[name] += n
    # the runs went through the rules, not past them
    assert all(seen.values()), seen


def test_the_rules_the_two_were_reconciled_on() -> None:
    """Each rule that differed once, on both firmwares."""
    for fw in (SuitFirmware(2), CSuitFirmware(2)):
        name = type(fw).__name__
        fw.receive(encode(Arm(1)), 0.0)
        fw.receive(encode(SetProgram(2, 1, 85, 450)), 0.0)
        fw.receive(encode_levels(3, 1, bytes([240, 10])), 0.0)  # charge-clamped to 100 mA
        assert fw.applied_mA.tolist() == [100.0, 5.0], name
        # levels for another program are dropped but feed the watchdog
        fw.receive(encode_levels(4, 0, bytes([20, 20])), 0.2)
        assert not fw.check_watchdog(0.449), name
        assert fw.applied_mA.tolist() == [100.0, 5.0], name
        # the active program re-sent is a no-op (outputs kept), yet raises the counter
        fw.receive(encode(SetProgram(5, 1, 85, 450)), 0.3)
        assert fw.applied_mA.tolist() == [100.0, 5.0] and fw.last_counter == 5, name
        # an ARM while ARMED feeds the watchdog and leaves the clamp flag
        fw.receive(encode(Arm(6)), 0.4)
        assert fw.faults & 0x40 and fw.applied_mA.tolist() == [100.0, 5.0], name
        assert not fw.check_watchdog(0.649) and fw.check_watchdog(0.65), name
        # levels while not ARMED are ignored, yet raise the counter
        fw.receive(encode_levels(9, 1, bytes([20, 20])), 0.7)
        assert fw.last_counter == 9 and not fw.applied_mA.any(), name
        # a key id 0 frame with a non-zero tag is corrupt
        bad = bytearray(encode(Arm(10)))
        bad[-3] = 1
        bad[-2:] = struct.pack("<H", crc16(bytes(bad[:-2])))
        fw.receive(bytes(bad), 0.8)
        assert fw.last_counter == 9 and fw.faults & 0x10, name


def test_both_count_a_charge_clamp_for_every_clamped_levels_frame() -> None:
    """`ems_suit_charge_clamps`: "SET_LEVELS frames the suit's own charge limit had to clamp".
    The controller re-sends the same levels every tick: three frames clamped are three clamps.
    (The Python firmware once counted a clamp per change of levels: 1 here.)"""
    counts = []
    for fw in (SuitFirmware(2), CSuitFirmware(2)):
        fw.receive(encode(Arm(1)), 0.0)
        fw.receive(encode(SetProgram(2, 1, 85, 450)), 0.0)
        for counter in (3, 4, 5):  # 120 mA at 450 µs, clamped to 100 mA, three ticks
            fw.receive(encode_levels(counter, 1, bytes([240, 10])), counter * 0.025)
        assert fw.applied_mA.tolist() == [100.0, 5.0]
        counts.append(fw.charge_clamps)
    assert counts == [3, 3]
