"""tests/vectors/security.json (for suit makers) holds on the simulated suit's firmware."""

from __future__ import annotations

import json
from pathlib import Path

from sim.firmware import SuitFirmware
from suit_controller.protocol import SuitState
from suit_controller.protocol.enrollment import STOP_UUID, Refusal, encode_enroll

from .vectors.make_security import KEY, STUDIO, build

VECTORS = json.loads((Path(__file__).parent / "vectors" / "security.json").read_text())


def test_the_file_is_what_the_generator_makes() -> None:
    assert json.loads(json.dumps(build())) == VECTORS


def test_enrollment_vectors() -> None:
    for vec in VECTORS["enrollment"]:
        fw = SuitFirmware()
        if vec["to"] == "enrolled":
            fw.auth.handle(encode_enroll(STUDIO, KEY))
        before = (fw.auth.key, fw.auth.studio_id)
        got = fw.auth.handle(bytes.fromhex(vec["hex"]))
        want = None if vec["refusal"] is None else Refusal(vec["refusal"])
        assert got is want, vec["name"]
        if want is not None:
            assert (fw.auth.key, fw.auth.studio_id) == before, vec["name"]


def test_the_script_on_an_enrolled_suit() -> None:
    fw = SuitFirmware()
    fw.auth.handle(encode_enroll(STUDIO, KEY))
    assert VECTORS["key"]["key"] == KEY.key.hex()
    for i, vec in enumerate(VECTORS["script"]):
        data, now = bytes.fromhex(vec["hex"]), i * 0.01
        if vec["characteristic"] == STOP_UUID:
            acted = fw.receive_stop(data, now)
        else:
            acted = fw.receive(data, now) is not None
        assert acted == vec["acts"], vec["name"]
        assert fw.state is SuitState[vec["state"]], vec["name"]
        assert fw.last_counter == vec["last_counter"], vec["name"]
        assert fw.applied_mA.max() <= 10.0, vec["name"]
