"""Enrollment: how a suit joins a studio, changes its key and leaves (sans-I/O).

Theory of operation
-------------------
A suit is driven only by the studio it is enrolled in. Enrolling gives the
suit a random 32-byte *suit key* (and a key id 1..255) that signs every
control frame (docs/protocol.md, "Security"). The key is created by the
studio, never derived from the suit's short setup code: the setup code is only
the LE Secure Connections passkey that authenticates the link the key travels
over, so an eavesdropper who captured the pairing and frames learns nothing
that a brute force of the six digits would open.

Messages go to the enrollment characteristic (write with response, over an
encrypted link bonded with the setup code as passkey). The suit answers a
refused message with an ATT application error (`Refusal`): the controller
turns it into a trainer's sentence. All three messages are small, fixed-size
and parsed here, once, for both sides.

* ENROLL  `0x01 | studio id (16) | key id (1) | key (32)` — only a suit with
  no key accepts it.
* ROTATE  `0x02 | new key id (1) | new key (32) | proof (8)` — proof: the
  first 8 bytes of HMAC-SHA-256(current key, `0x02 | new key id | new key`);
  the new key id differs from the current one.
* FORGET  `0x03 | proof (8)` — proof: HMAC-SHA-256(current key, `0x03 | studio
  id`)[:8]. The suit clears its key (and keeps its frame counter).

A factory reset (a button on the suit) clears the key and the bonds too,
for a studio that lost its records.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum

from suit_controller.protocol.codec import tag
from suit_controller.protocol.errors import RemoteProtocolError

#: Enrollment characteristic: write with response, needs an encrypted, authenticated link.
ENROLL_UUID = "5c0e0004-8d2a-4f6b-9e31-6a7b1c2d3e4f"
#: Stop characteristic: write without response, no encryption; honours STOP_ALL only.
STOP_UUID = "5c0e0005-8d2a-4f6b-9e31-6a7b1c2d3e4f"

KEY_LEN = 32
STUDIO_ID_LEN = 16
PROOF_LEN = 8
#: Digits of the setup code printed on a suit (the LE Secure Connections passkey).
SETUP_CODE_DIGITS = 6
#: A connection that has not authenticated within this time is dropped, s.
AUTH_TIMEOUT_S = 2.0


class Message(IntEnum):
    ENROLL = 0x01
    ROTATE = 0x02
    FORGET = 0x03


class Refusal(IntEnum):
    """ATT application error codes the enrollment characteristic answers with."""

    ENROLLED_ELSEWHERE = 0x80  # the suit already has a key of another studio
    ALREADY_ENROLLED_HERE = 0x81  # … of this studio (rotate instead)
    NOT_ENROLLED = 0x82  # ROTATE / FORGET on a suit with no key
    BAD_PROOF = 0x83  # the proof is not under the suit's current key
    MALFORMED = 0x84  # wrong length, unknown message, key id 0 or unchanged


#: What a trainer reads for each refusal.
REFUSAL_TEXT: dict[Refusal, str] = {
    Refusal.ENROLLED_ELSEWHERE: (
        "this suit is enrolled in another studio; that studio must forget it, or the "
        "suit must be factory reset (its button) before it can join this one"
    ),
    Refusal.ALREADY_ENROLLED_HERE: "this suit is already enrolled in this studio",
    Refusal.NOT_ENROLLED: "this suit is not enrolled (it was factory reset?): enroll it again",
    Refusal.BAD_PROOF: (
        "the suit does not hold the key this studio has for it; it was enrolled again "
        "elsewhere or factory reset: forget it here and enroll it again"
    ),
    Refusal.MALFORMED: "the suit did not understand the enrollment message",
}


@dataclass(frozen=True)
class SuitKey:
    """A suit's key as the studio keeps it: key id 1..255 and 32 random bytes."""

    key_id: int
    key: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.key_id <= 255 or len(self.key) != KEY_LEN:
            raise ValueError("a suit key has an id 1..255 and 32 bytes")

    def __repr__(self) -> str:  # never print a key
        return f"SuitKey(key_id={self.key_id}, key=<{len(self.key)} bytes>)"


def new_suit_key(previous: SuitKey | None = None) -> SuitKey:
    """A fresh random key; its id follows the previous one's (never 0, never the same)."""
    key_id = 1 if previous is None else previous.key_id % 255 + 1
    return SuitKey(key_id, secrets.token_bytes(KEY_LEN))


def new_studio_id() -> bytes:
    return secrets.token_bytes(STUDIO_ID_LEN)


def check_setup_code(code: str) -> int:
    """The setup code as the pairing passkey; ValueError with the reason if it is not one."""
    text = code.strip().replace(" ", "").replace("-", "")
    if len(text) != SETUP_CODE_DIGITS or not text.isdigit():
        raise ValueError(
            f"a suit's setup code is {SETUP_CODE_DIGITS} digits (printed on the suit), not {code!r}"
        )
    return int(text)


def encode_enroll(studio_id: bytes, key: SuitKey) -> bytes:
    if len(studio_id) != STUDIO_ID_LEN:
        raise ValueError("a studio id is 16 bytes")
    return bytes([Message.ENROLL]) + studio_id + bytes([key.key_id]) + key.key


def encode_rotate(current: SuitKey, new: SuitKey) -> bytes:
    if new.key_id == current.key_id:
        raise ValueError("a rotated key needs a new key id")
    body = bytes([Message.ROTATE, new.key_id]) + new.key
    return body + tag(current.key, body)


def encode_forget(current: SuitKey, studio_id: bytes) -> bytes:
    return bytes([Message.FORGET]) + tag(current.key, bytes([Message.FORGET]) + studio_id)


@dataclass(frozen=True)
class Enroll:
    studio_id: bytes
    key: SuitKey


@dataclass(frozen=True)
class Rotate:
    key: SuitKey
    proof: bytes
    signed: bytes


@dataclass(frozen=True)
class Forget:
    proof: bytes


_SIZES = {
    Message.ENROLL: 1 + STUDIO_ID_LEN + 1 + KEY_LEN,
    Message.ROTATE: 1 + 1 + KEY_LEN + PROOF_LEN,
    Message.FORGET: 1 + PROOF_LEN,
}


def decode_message(data: bytes) -> Enroll | Rotate | Forget:
    """Parse an enrollment message (the suit's side). Raises RemoteProtocolError."""
    raw = bytes(data)
    try:
        kind = Message(raw[0]) if raw else None
    except ValueError:
        kind = None
    if kind is None or len(raw) != _SIZES[kind]:
        raise RemoteProtocolError("not an enrollment message")
    try:
        if kind is Message.ENROLL:
            s = 1 + STUDIO_ID_LEN
            return Enroll(raw[1:s], SuitKey(raw[s], raw[s + 1 :]))
        if kind is Message.ROTATE:
            return Rotate(SuitKey(raw[1], raw[2 : 2 + KEY_LEN]), raw[-PROOF_LEN:], raw[:-PROOF_LEN])
    except ValueError as e:
        raise RemoteProtocolError(str(e)) from None
    return Forget(raw[1:])


def proof_ok(key: bytes, signed: bytes, proof: bytes) -> bool:
    return hmac.compare_digest(tag(key, signed), proof)
