"""The studio's suits page API (issue 18): which suits this studio may drive, enroll, rotate,
forget — managers only, every change with the CSRF header and in the audit trail.

`GET /api/v1/suit-keys` lists the enrolled suits (addresses and key ids, never keys);
`POST /api/v1/suit-keys` enrolls a suit with its setup code; `POST
/api/v1/suit-keys/{address}/rotate` gives it a new key; `POST
/api/v1/suit-keys/{address}/forget` releases it (`records_only` for a lost suit).
Over Bluetooth (`BleRack`) these do what `suitctl suits enroll | rotate-key | forget`
do; with simulated suits (`suitctl serve --simulated N`) the messages go to the
simulated suit's firmware directly, after the same setup-code check a pairing makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field
from starlette.responses import Response

from suit_controller.cli.security import (
    RecordsRefused,
    enroll_into_records,
    forget_in_records,
    rotate_in_records,
)
from suit_controller.enrollment import EnrollmentRefused
from suit_controller.links.base import ConnectFailed, LinkError
from suit_controller.protocol.enrollment import (
    REFUSAL_TEXT,
    Refusal,
    check_setup_code,
    encode_enroll,
    encode_forget,
    encode_rotate,
    new_suit_key,
)
from suit_controller.studio.problems import Problem
from suit_controller.studio.requests import _Body
from suit_controller.studio.store import StoreError
from suit_controller.studio.suit_keys import (
    enrolled_suits,
    forget_suit_key,
    in_class_message,
    save_suit_key,
    studio_id,
    suit_in_open_class,
    suit_key,
)

if TYPE_CHECKING:
    from suit_controller.studio.api import Call, Endpoint, StudioApi

Address = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z:_-]+$")]


class EnrollBody(_Body):
    """Enroll a suit: its address and the six-digit setup code printed on it."""

    address: Address
    setup_code: Annotated[str, Field(pattern=r"^[0-9]{3}[ -]?[0-9]{3}$")]


class ForgetBody(_Body):
    """Release a suit; `records_only` for a suit that is lost (it keeps its key until reset)."""

    records_only: bool = False


class SuitKeysApi:
    """The handlers, over the studio's records and its rack of suits."""

    def __init__(self, api: StudioApi) -> None:
        self.api = api
        self.store = api.store

    def endpoints(self) -> list[Endpoint]:
        from suit_controller.studio.api import Endpoint as e

        return [
            e("GET", "/api/v1/suit-keys",
              "The suits enrolled in this studio: addresses and key ids, never keys",
              self.listing, "suits", "manager"),
            e("POST", "/api/v1/suit-keys",
              "Enroll a suit with its setup code (it gets a new random key)",
              self.enroll, "suits", "manager", EnrollBody, 201, (404, 409, 503)),
            e("POST", "/api/v1/suit-keys/{address}/rotate",
              "Give an enrolled suit a new key (the old one stops working)",
              self.rotate, "suits", "manager", refusals=(404, 409, 503)),
            e("POST", "/api/v1/suit-keys/{address}/forget",
              "Release a suit so it may join another studio",
              self.forget, "suits", "manager", ForgetBody, refusals=(404, 409, 503)),
        ]  # fmt: skip

    # -- the suit, over the rack's radio or in simulation --------------------------------------
    def _simulated_suit(self, address: str) -> Any:
        rack = self.api.studio.rack
        if not rack.simulated:
            return None
        try:
            return rack.suit(address)  # type: ignore[attr-defined]
        except KeyError:
            raise Problem(404, "No such suit", f"no simulated suit {address}") from None

    def _radio(self) -> dict[str, Any]:
        return dict(getattr(self.api.studio.rack, "client_kwargs", {}))

    async def _enroll(self, address: str, setup_code: str) -> int:
        suit = self._simulated_suit(address)
        if suit is None:
            return await enroll_into_records(self.store, address, setup_code, **self._radio())
        if suit_key(self.store, address) is not None:
            raise RecordsRefused(f"suit {address} is already enrolled in this studio")
        if check_setup_code(setup_code) != int(suit.setup_code):
            raise ConnectFailed(
                f"{address}: pairing failed; is the setup code the one printed on this suit?"
            )
        key = new_suit_key()
        _refused(address, suit.firmware.auth.handle(encode_enroll(studio_id(self.store), key)))
        save_suit_key(self.store, address, key)
        return key.key_id

    async def _rotate(self, address: str) -> int:
        suit = self._simulated_suit(address)
        if suit is None:
            return await rotate_in_records(self.store, address, **self._radio())
        held = suit_key(self.store, address)
        if held is None:
            raise RecordsRefused(f"suit {address} is not enrolled in this studio")
        key = new_suit_key(held)
        _refused(address, suit.firmware.auth.handle(encode_rotate(held, key)))
        save_suit_key(self.store, address, key, rotated=True)
        return key.key_id

    async def _forget(self, address: str, records_only: bool) -> str:
        suit = self._simulated_suit(address)
        if suit is None or records_only:
            return await forget_in_records(
                self.store, address, records_only=records_only, **self._radio()
            )
        held = suit_key(self.store, address)
        if held is None:
            raise RecordsRefused(f"suit {address} is not enrolled in this studio")
        refusal = suit.firmware.auth.handle(encode_forget(held, studio_id(self.store)))
        if refusal not in (None, Refusal.NOT_ENROLLED, Refusal.BAD_PROOF):
            _refused(address, refusal)
        forget_suit_key(self.store, address)
        return f"suit {address} forgotten: it can be enrolled in any studio now"

    # -- handlers --------------------------------------------------------------------------------
    async def listing(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        rows = await self.api.db(enrolled_suits, self.store)
        return json_ok(
            {"suits": [
                {"address": a, "key_id": k, "enrolled_at": e, "rotated_at": r}
                for a, k, e, r in rows
            ]}
        )  # fmt: skip

    async def enroll(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        body: EnrollBody = call.body
        address = body.address.strip().upper()
        key_id = await _guarded(self._enroll(address, body.setup_code), "Cannot enroll the suit")
        await self.api.db(
            self.api.accounts.audit, call.who, "suit_enrolled", address, {"key_id": key_id}
        )
        return json_ok({"address": address, "key_id": key_id}, 201)

    async def rotate(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        address = call.params["address"].strip().upper()
        await self._known(address)
        await self._not_in_a_class(address, "Cannot give the suit a new key")
        key_id = await _guarded(self._rotate(address), "Cannot give the suit a new key")
        await self.api.db(
            self.api.accounts.audit, call.who, "suit_key_rotated", address, {"key_id": key_id}
        )
        return json_ok({"address": address, "key_id": key_id})

    async def forget(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        body: ForgetBody = call.body
        address = call.params["address"].strip().upper()
        await self._known(address)
        await self._not_in_a_class(address, "Cannot forget the suit")
        note = await _guarded(self._forget(address, body.records_only), "Cannot forget the suit")
        await self.api.db(
            self.api.accounts.audit,
            call.who,
            "suit_forgotten",
            address,
            {"records_only": body.records_only},
        )
        return json_ok({"address": address, "note": note})

    async def _not_in_a_class(self, address: str, title: str) -> None:
        """409 while the suit is in a class that has not ended (in this server or the records).

        A new key, or none, mid-class makes the suit refuse every frame of its class.
        """
        for k in self.api.studio.classes.values():
            if not k.done.is_set() and address in {s.strip().upper() for s in k.suits}:
                raise Problem(409, title, in_class_message(address, k.room))
        busy = await self.api.db(suit_in_open_class, self.store, address)
        if busy is not None:
            raise Problem(409, title, busy)

    async def _known(self, address: str) -> None:
        if await self.api.db(suit_key, self.store, address) is None:
            raise Problem(
                404, "Not enrolled here", f"suit {address} is not enrolled in this studio"
            )


def _refused(address: str, refusal: Refusal | None) -> None:
    if refusal is not None:
        raise EnrollmentRefused(refusal, f"{address}: {REFUSAL_TEXT[refusal]}")


async def _guarded(work: Any, title: str) -> Any:
    """The work's result, or a Problem a manager can act on (nothing changed)."""
    try:
        return await work
    except (RecordsRefused, EnrollmentRefused) as e:
        raise Problem(409, title, str(e)) from None
    except StoreError as e:
        raise Problem(409, title, str(e)) from None
    except (ConnectFailed, LinkError) as e:
        if "pairing failed" in str(e):  # the setup code typed is not this suit's
            raise Problem(409, title, str(e)) from None
        raise Problem(503, title, f"{e} (is the suit on and in reach?)") from None
