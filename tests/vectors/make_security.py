"""Regenerate tests/vectors/security.json (issue 18: enrollment and authentication).

Run `.venv/bin/python tests/vectors/make_security.py` only when the rules change
on purpose. The file holds the enrollment messages under example keys, and a
*script*: frames written in order to a suit enrolled with the example key (key
id 1, counter 0, IDLE), each with the characteristic it is written to and what
the suit must do (act or not, its state and last accepted counter after). A
suit maker replays the script against their firmware; tests/test_security_vectors.py
replays it against the simulated one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suit_controller.protocol import Arm, Heartbeat, SetLevels, StopAll, crc16, encode
from suit_controller.protocol.enrollment import (
    ENROLL_UUID,
    STOP_UUID,
    Refusal,
    SuitKey,
    encode_enroll,
    encode_forget,
    encode_rotate,
)
from suit_controller.protocol.frames import CONTROL_UUID

KEY = SuitKey(1, bytes(range(32)))
NEW_KEY = SuitKey(2, bytes(range(32, 64)))
WRONG = bytes(range(100, 132))
STUDIO = bytes(range(0x10, 0x20))
OTHER_STUDIO = bytes(range(0x40, 0x50))


def signed(frame: Any, key: bytes | None = KEY.key, key_id: int = KEY.key_id) -> str:
    return encode(frame, key, key_id if key else 0).hex()


def corrupt_tag(frame_hex: str) -> str:
    raw = bytearray(bytes.fromhex(frame_hex))
    raw[-3] ^= 0x01  # the tag's last byte; CRC fixed up
    raw[-2:] = crc16(bytes(raw[:-2])).to_bytes(2, "little")
    return raw.hex()


def build() -> dict[str, Any]:
    lv = SetLevels(6, 0, (10.0,) * 12)
    step = [
        ("unsigned ARM: refused by an enrolled suit", "control", signed(Arm(1), None), False),
        ("ARM under a wrong key", "control", signed(Arm(1), WRONG), False),
        ("ARM with its tag's last bit flipped", "control", corrupt_tag(signed(Arm(2))), False),
        ("ARM signed", "control", signed(Arm(5)), True),
        ("SET_LEVELS signed, 10 mA", "control", signed(lv), True),
        ("the same SET_LEVELS replayed", "control", signed(lv), False),
        (
            "unsigned SET_LEVELS with a higher counter",
            "control",
            signed(SetLevels(99, 0, (60.0,) * 12), None),
            False,
        ),
        ("HEARTBEAT signed", "control", signed(Heartbeat(7)), True),
        (
            "unsigned STOP_ALL, counter 2^32-1, on stop: stops, counter unchanged",
            "stop",
            signed(StopAll(2**32 - 1), None),
            True,
        ),
        ("ARM signed again", "control", signed(Arm(8)), True),
        ("unsigned ARM on stop: only STOP_ALL acts there", "stop", signed(Arm(9), None), False),
        (
            "STOP_ALL under a key id the suit does not hold, on stop: stops",
            "stop",
            signed(StopAll(10), WRONG, 9),
            True,
        ),
        ("ARM signed again", "control", signed(Arm(11)), True),
        ("stale signed STOP_ALL on control: honoured", "control", signed(StopAll(3)), True),
        (
            "unsigned STOP_ALL on control: honoured, counter unchanged",
            "control",
            signed(StopAll(2**32 - 2), None),
            True,
        ),
    ]
    after = [
        ("IDLE", 0),
        ("IDLE", 0),
        ("IDLE", 0),
        ("ARMED", 5),
        ("ARMED", 6),
        ("ARMED", 6),
        ("ARMED", 6),
        ("ARMED", 7),
        ("STOPPED", 7),
        ("ARMED", 8),
        ("ARMED", 8),
        ("STOPPED", 8),
        ("ARMED", 11),
        ("STOPPED", 11),
        ("STOPPED", 11),
    ]
    uuids = {"control": CONTROL_UUID, "stop": STOP_UUID}
    return {
        "about": __doc__.split("\n\n")[1].replace("\n", " "),
        "key": {"key_id": KEY.key_id, "key": KEY.key.hex()},
        "new_key": {"key_id": NEW_KEY.key_id, "key": NEW_KEY.key.hex()},
        "studio_id": STUDIO.hex(),
        "uuids": {"enrollment": ENROLL_UUID, "stop": STOP_UUID, "control": CONTROL_UUID},
        "enrollment": [
            {
                "name": "ENROLL a suit with no key",
                "to": "open",
                "hex": encode_enroll(STUDIO, KEY).hex(),
                "refusal": None,
            },
            {
                "name": "ENROLL by another studio",
                "to": "enrolled",
                "hex": encode_enroll(OTHER_STUDIO, NEW_KEY).hex(),
                "refusal": int(Refusal.ENROLLED_ELSEWHERE),
            },
            {
                "name": "ENROLL again by this studio",
                "to": "enrolled",
                "hex": encode_enroll(STUDIO, NEW_KEY).hex(),
                "refusal": int(Refusal.ALREADY_ENROLLED_HERE),
            },
            {
                "name": "ROTATE to key 2, proven with key 1",
                "to": "enrolled",
                "hex": encode_rotate(KEY, NEW_KEY).hex(),
                "refusal": None,
            },
            {
                "name": "ROTATE proven with a wrong key",
                "to": "enrolled",
                "hex": encode_rotate(SuitKey(1, WRONG), NEW_KEY).hex(),
                "refusal": int(Refusal.BAD_PROOF),
            },
            {
                "name": "FORGET proven with key 1",
                "to": "enrolled",
                "hex": encode_forget(KEY, STUDIO).hex(),
                "refusal": None,
            },
            {
                "name": "FORGET a suit with no key",
                "to": "open",
                "hex": encode_forget(KEY, STUDIO).hex(),
                "refusal": int(Refusal.NOT_ENROLLED),
            },
            {
                "name": "a truncated ENROLL",
                "to": "open",
                "hex": encode_enroll(STUDIO, KEY)[:-1].hex(),
                "refusal": int(Refusal.MALFORMED),
            },
        ],
        "script": [
            {
                "name": n,
                "characteristic": uuids[c],
                "hex": h,
                "acts": acts,
                "state": st,
                "last_counter": lc,
            }
            for (n, c, h, acts), (st, lc) in zip(step, after, strict=True)
        ],
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("security.json")
    out.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {out}")
