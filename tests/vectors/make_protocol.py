"""Regenerate tests/vectors/protocol.json (suit protocol version 2).

Run `.venv/bin/python tests/vectors/make_protocol.py` only when the protocol
changes on purpose; the tests check the bytes against an independent bit-by-bit
CRC and a byte-by-byte layout, so a regenerated file is reviewed, not trusted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suit_controller.protocol import (
    Arm,
    Faults,
    Heartbeat,
    PulseProgram,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
    crc16,
    encode,
    encode_status,
)

TAG0 = bytes(8)
KEY = bytes(range(32))  # an example key for the signed vectors (key id 1)


def frame_dict(frame: Any) -> dict[str, Any]:
    d = {"type": type(frame).__name__}
    for k, v in vars(frame).items():
        d[k] = list(v) if isinstance(v, tuple) else v
    return d


def report_dict(r: StatusReport) -> dict[str, Any]:
    return {
        "counter": r.counter,
        "clock_ms": r.clock_ms,
        "state": r.state.name,
        "battery_pct": r.battery_pct,
        "faults": int(r.faults),
        "program": [r.program.program_id, r.program.frequency_hz, r.program.pulse_width_us],
        "first_channel": r.first_channel,
        "levels_mA": list(r.levels_mA),
        "impedance_ohm": list(r.impedance_ohm),
    }


def sealed(body: bytes) -> str:
    return (body + crc16(body).to_bytes(2, "little")).hex()


def main() -> None:
    control = [
        ("set levels, 12 channels", SetLevels(1, 0, (10.0,) * 12)),
        (
            "set levels, mixed, program 7",
            SetLevels(
                0x01020304, 7, (0.0, 0.5, 1.0, 42.5, 80.0, 120.0, 0.0, 0.0, 12.0, 60.5, 99.5, 3.0)
            ),
        ),
        ("set levels, 32 channels", SetLevels(0xFFFFFFFE, 255, tuple(float(i) for i in range(32)))),
        ("set program 450 us", SetProgram(2, 1, 85, 450)),
        ("set program 7 Hz 100 us", SetProgram(300, 255, 7, 100)),
        ("stop all", StopAll(3)),
        ("stop all, counter 0", StopAll(0)),
        ("heartbeat", Heartbeat(4)),
        ("arm", Arm(5)),
        ("arm, largest counter", Arm(0xFFFFFFFF)),
    ]
    signed = [
        ("signed set levels, key id 1", SetLevels(10, 3, (20.0, 21.0)), 1),
        ("signed stop all, key id 1", StopAll(11), 1),
    ]
    status = [
        StatusReport(
            7,
            1234,
            SuitState.ARMED,
            87,
            Faults.NONE,
            PulseProgram(1, 85, 350),
            0,
            (10.0, 20.0, 0.0, 5.5, 120.0),
            (800.0, 1000.0, None, 400.0, 5080.0),
        ),
        StatusReport(
            300,
            0xFFFFFFFF,
            SuitState.WATCHDOG,
            12,
            Faults.WATCHDOG | Faults.LOW_BATTERY,
            PulseProgram(0, 85, 350),
            10,
            (0.0, 0.0),
            (820.0, None),
        ),
        StatusReport(
            0x01020304,
            60000,
            SuitState.ARMED,
            100,
            Faults.PROGRAM_MISMATCH | Faults.CHARGE_CLAMPED | Faults.LEVEL_CLAMPED,
            PulseProgram(200, 7, 450),
            0,
            (100.0,) * 12,
            (600.0,) * 12,
        ),
        StatusReport(
            0,
            0,
            SuitState.IDLE,
            100,
            Faults.NONE,
            PulseProgram(0, 85, 350),
            0,
            (),
            (),
        ),
    ]
    names = [
        "status, 5 channels, armed",
        "status, watchdog + low battery, from channel 10, clock wrapped",
        "status, 12 channels, program 200 at 7 Hz 450 us, clamps and mismatch",
        "status, power-on, no channels",
    ]
    doc = {
        "version": 2,
        "key": KEY.hex(),
        "control": [
            {"name": n, "frame": frame_dict(f), "hex": encode(f).hex()} for n, f in control
        ],
        "signed": [
            {"name": n, "key_id": k, "frame": frame_dict(f), "hex": encode(f, KEY, k).hex()}
            for n, f, k in signed
        ],
        "status": [
            {"name": n, "report": report_dict(r), "hex": encode_status(r).hex()}
            for n, r in zip(names, status, strict=True)
        ],
        "garbage": [
            {"name": "too short", "hex": "2101"},
            {"name": "bad crc", "hex": "230300000000" + "00" * 8 + "0000"},
            {"name": "truncated with a valid crc", "hex": sealed(bytes.fromhex("2101000000"))},
            {"name": "unknown type", "hex": sealed(bytes.fromhex("2f0100000000") + TAG0)},
            {"name": "status sent as control", "hex": encode_status(status[3]).hex()},
            {
                "name": "nonzero tag with key id 0",
                "hex": sealed(bytes.fromhex("230100000000") + b"\1" * 8),
            },
            {"name": "unknown key id", "hex": encode(StopAll(3), b"other", 9).hex()},
            {"name": "level code 241", "hex": sealed(bytes.fromhex("2101000000000001f1") + TAG0)},
            {
                "name": "program id 0 in SET_PROGRAM",
                "hex": sealed(bytes.fromhex("22010000000000555e01") + TAG0),
            },
            {
                "name": "pulse width 451",
                "hex": sealed(bytes.fromhex("220100000000015dc301") + TAG0),
            },
        ],
        "old_version": [
            {
                "name": "version 1 status (a suit that needs a firmware update)",
                "hex": "18070001570000051428283200ff0b14f0fe56a3",
            },
            {"name": "version 1 set levels", "hex": "1101000c141414141414141414141414890f"},
        ],
    }
    path = Path(__file__).with_name("protocol.json")
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
