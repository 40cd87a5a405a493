"""The simulated suit's authentication layer: its enrolled key, enrollment messages, reset.

Kept apart from the firmware's state machine (`sim/firmware.py` calls it in
two places: which keys verify a control frame, and whether an unsigned frame
may act). The rules (docs/protocol.md, "Security"):

* a suit with no key (factory state) is *open*: it accepts unsigned frames, so
  simulations without a studio run; it can be enrolled by anyone who pairs
  with its setup code;
* an enrolled suit acts on a control frame only if it is signed with its key;
  an unsigned or wrongly signed frame changes nothing, not even the counter —
  except STOP_ALL, honoured from anyone (it can only make the suit safer), and
  even then the counter moves only for a signed one, so nobody can push the
  counter up and lock the studio out;
* the enrollment characteristic's messages: ENROLL (only without a key),
  ROTATE and FORGET (each proven with the current key);
* a factory reset clears the key (the BLE layer clears its bonds too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suit_controller.protocol import RemoteProtocolError
from suit_controller.protocol.enrollment import (
    Enroll,
    Forget,
    Message,
    Refusal,
    Rotate,
    SuitKey,
    decode_message,
    proof_ok,
)


@dataclass
class SuitAuth:
    """What the suit keeps about its studio (in flash on a real suit)."""

    key: SuitKey | None = None
    studio_id: bytes | None = None
    #: Frames refused: unsigned while enrolled, or signed with a key the suit does not hold.
    refused_frames: int = 0
    #: Enrollment messages refused, by reason.
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def enrolled(self) -> bool:
        return self.key is not None

    @property
    def keys(self) -> dict[int, bytes]:
        """Key id -> key, for `decode_control`."""
        return {} if self.key is None else {self.key.key_id: self.key.key}

    def may_act(self, key_id: int, is_stop: bool) -> bool:
        """May a verified frame with this key id act? Unsigned ones only on an open suit,
        or a STOP_ALL."""
        return key_id != 0 or not self.enrolled or is_stop

    def handle(self, data: bytes) -> Refusal | None:
        """An enrollment message; None if done, else why it was refused (nothing changed)."""
        refusal = self._handle(data)
        if refusal is not None:
            self.refusals.append(refusal)
        return refusal

    def _handle(self, data: bytes) -> Refusal | None:
        try:
            msg = decode_message(data)
        except RemoteProtocolError:
            return Refusal.MALFORMED
        if isinstance(msg, Enroll):
            if self.key is not None:
                return (
                    Refusal.ALREADY_ENROLLED_HERE
                    if msg.studio_id == self.studio_id
                    else Refusal.ENROLLED_ELSEWHERE
                )
            self.key, self.studio_id = msg.key, msg.studio_id
            return None
        if self.key is None or self.studio_id is None:
            return Refusal.NOT_ENROLLED
        if isinstance(msg, Rotate):
            if msg.key.key_id == self.key.key_id:
                return Refusal.MALFORMED
            if not proof_ok(self.key.key, msg.signed, msg.proof):
                return Refusal.BAD_PROOF
            self.key = msg.key
            return None
        assert isinstance(msg, Forget)
        if not proof_ok(self.key.key, bytes([Message.FORGET]) + self.studio_id, msg.proof):
            return Refusal.BAD_PROOF
        self.key = self.studio_id = None
        return None

    def factory_reset(self) -> None:
        """The suit's reset button: forget the studio and its key."""
        self.key = self.studio_id = None
