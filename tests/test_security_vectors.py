"""tests/vectors/security.json (for suit makers) holds on the simulated suit's firmware,
Python and C; the C core's HMAC-SHA-256 agrees with Python's (RFC 4231 and random inputs)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.c_firmware import CSuitFirmware, Reception, hmac_sha256, unavailable_reason
from sim.firmware import SuitFirmware
from suit_controller.protocol import SuitState
from suit_controller.protocol.enrollment import STOP_UUID, Refusal, encode_enroll

from .vectors.make_security import KEY, STUDIO, build

VECTORS = json.loads((Path(__file__).parent / "vectors" / "security.json").read_text())


def test_the_file_is_what_the_generator_makes() -> None:
    assert json.loads(json.dumps(build())) == VECTORS


_NO_C = unavailable_reason()
FIRMWARES = [
    pytest.param(SuitFirmware, id="python"),
    pytest.param(
        CSuitFirmware, id="c", marks=pytest.mark.skipif(_NO_C is not None, reason=_NO_C or "")
    ),
]
AnyFirmware = SuitFirmware | CSuitFirmware


@pytest.mark.parametrize("make", FIRMWARES)
def test_enrollment_vectors(make: Callable[[], AnyFirmware]) -> None:
    for vec in VECTORS["enrollment"]:
        fw = make()
        if vec["to"] == "enrolled":
            fw.auth.handle(encode_enroll(STUDIO, KEY))
        before = (fw.auth.key, fw.auth.studio_id)
        got = fw.auth.handle(bytes.fromhex(vec["hex"]))
        want = None if vec["refusal"] is None else Refusal(vec["refusal"])
        assert got is want, vec["name"]
        if want is not None:
            assert (fw.auth.key, fw.auth.studio_id) == before, vec["name"]


@pytest.mark.parametrize("make", FIRMWARES)
def test_the_script_on_an_enrolled_suit(make: Callable[[], AnyFirmware]) -> None:
    fw = make()
    fw.auth.handle(encode_enroll(STUDIO, KEY))
    assert VECTORS["key"]["key"] == KEY.key.hex()
    for i, vec in enumerate(VECTORS["script"]):
        data, now = bytes.fromhex(vec["hex"]), i * 0.01
        if vec["characteristic"] == STOP_UUID:
            acted = fw.receive_stop(data, now)
        else:
            got = fw.receive(data, now)
            acted = (
                got in (Reception.APPLIED, Reception.IGNORED)
                if isinstance(got, Reception)
                else got is not None
            )
        assert acted == vec["acts"], vec["name"]
        assert fw.state is SuitState[vec["state"]], vec["name"]
        assert fw.last_counter == vec["last_counter"], vec["name"]
        assert fw.applied_mA.max() <= 10.0, vec["name"]


RFC_4231 = [  # test cases 1, 2, 3, 4, 6, 7: key, data, HMAC-SHA-256
    ("0b" * 20, b"Hi There".hex(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)).hex(), "cd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, (b"This is a test using a larger than block-size key and a larger than "
                  b"block-size data. The key needs to be hashed before being used by the "
                  b"HMAC algorithm.").hex(),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]  # fmt: skip


@pytest.mark.skipif(_NO_C is not None, reason=_NO_C or "")
def test_the_c_hmac_is_rfc_4231_and_agrees_with_python() -> None:
    for key, data, mac in RFC_4231:
        assert hmac_sha256(bytes.fromhex(key), bytes.fromhex(data)).hex() == mac
    rng = random.Random(18)
    for n in [*range(0, 130), 200, 1000]:  # every padding boundary of a block
        key, msg = rng.randbytes(rng.choice((0, 1, 32, 64, 65, 100))), rng.randbytes(n)
        assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest(), n


@pytest.mark.skipif(_NO_C is not None, reason=_NO_C or "")
def test_the_c_suit_stores_its_key_on_every_change() -> None:
    fw = CSuitFirmware()
    assert not fw.auth.enrolled and fw.auth.stored == 0
    fw.auth.handle(encode_enroll(STUDIO, KEY))
    assert fw.auth.key == KEY and fw.auth.studio_id == STUDIO and fw.auth.stored == 1
    assert fw.auth.handle(encode_enroll(STUDIO, KEY)) is Refusal.ALREADY_ENROLLED_HERE
    assert fw.auth.stored == 1  # a refusal stores nothing
    fw.auth.factory_reset()
    assert not fw.auth.enrolled and fw.auth.key is None and fw.auth.stored == 2
