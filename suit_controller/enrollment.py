"""Enrolling a suit in the studio, rotating its key, forgetting it (the controller's side).

Each call connects to the suit over bleak with pairing on: the first time,
LE Secure Connections with the suit's setup code as the passkey (on bleak's
bumble backend, `bumble_passkey=`; on a real adapter the operating system asks
for it, see docs/security.md), afterwards the bond re-encrypts. Then it writes
one enrollment message (`suit_controller.protocol.enrollment`) and
disconnects. The key is random, made here, and travels only over that
encrypted link. A refusal is an `EnrollmentRefused` with a trainer's sentence.

Needs trio-asyncio's loop (bleak is an asyncio library), opened by the caller.
"""

from __future__ import annotations

import contextlib
from typing import Any

import trio
import trio_asyncio
from bleak import BleakClient

from suit_controller.links.base import ConnectFailed
from suit_controller.links.ble import BLE_ERRORS, CONNECT_TIMEOUT_S
from suit_controller.protocol.enrollment import (
    ENROLL_UUID,
    REFUSAL_TEXT,
    Refusal,
    SuitKey,
    check_setup_code,
    encode_enroll,
    encode_forget,
    encode_rotate,
    new_suit_key,
)

#: Pairing waits for a person to type the setup code on a real adapter.
PAIRING_TIMEOUT_S = 60.0


class EnrollmentRefused(Exception):
    """The suit refused (enrolled elsewhere, not enrolled, a key it does not hold)."""

    def __init__(self, refusal: Refusal | None, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal


async def _write(
    address: str,
    message: bytes,
    *,
    setup_code: str | None,
    backend: type[Any] | None,
    backend_kwargs: dict[str, Any],
) -> None:
    kwargs = dict(backend_kwargs)
    if setup_code is not None and backend is not None:
        kwargs["bumble_passkey"] = check_setup_code(setup_code)  # the simulated radio's "typing"
    client = BleakClient(address, timeout=CONNECT_TIMEOUT_S, pair=True, backend=backend, **kwargs)
    try:
        with trio.fail_after(PAIRING_TIMEOUT_S):
            await trio_asyncio.aio_as_trio(client.connect)()
            await trio_asyncio.aio_as_trio(client.write_gatt_char)(
                ENROLL_UUID, message, response=True
            )
    except trio.TooSlowError:
        raise ConnectFailed(
            f"{address}: pairing did not finish in {PAIRING_TIMEOUT_S:g} s"
        ) from None
    except BLE_ERRORS as e:
        code = getattr(e, "att_error", None)
        if code in {r.value for r in Refusal}:
            refusal = Refusal(code)
            raise EnrollmentRefused(refusal, f"{address}: {REFUSAL_TEXT[refusal]}") from e
        if code is not None:
            raise EnrollmentRefused(
                None,
                f"{address}: the suit refused the link (ATT error {code:#04x}); is the setup "
                "code right, and was the suit factory reset since this studio bonded with it?",
            ) from e
        text = str(e) or type(e).__name__
        if "pairing failed" in text:
            text += "; is the setup code the one printed on this suit?"
        raise ConnectFailed(text if text.startswith(address) else f"{address}: {text}") from e
    finally:
        with trio.move_on_after(2.0), contextlib.suppress(*BLE_ERRORS):
            await trio_asyncio.aio_as_trio(client.disconnect)()


async def enroll_suit(
    address: str,
    setup_code: str,
    studio_id: bytes,
    *,
    previous: SuitKey | None = None,
    backend: type[Any] | None = None,
    **backend_kwargs: Any,
) -> SuitKey:
    """Pair with the setup code and give the suit a new random key; returns it (store it)."""
    check_setup_code(setup_code)
    key = new_suit_key(previous)
    await _write(
        address,
        encode_enroll(studio_id, key),
        setup_code=setup_code,
        backend=backend,
        backend_kwargs=backend_kwargs,
    )
    return key


async def rotate_key(
    address: str, current: SuitKey, *, backend: type[Any] | None = None, **backend_kwargs: Any
) -> SuitKey:
    """Replace the suit's key with a new random one (proven with the current key)."""
    key = new_suit_key(current)
    await _write(
        address,
        encode_rotate(current, key),
        setup_code=None,
        backend=backend,
        backend_kwargs=backend_kwargs,
    )
    return key


async def forget_suit(
    address: str,
    current: SuitKey,
    studio_id: bytes,
    *,
    backend: type[Any] | None = None,
    **backend_kwargs: Any,
) -> None:
    """Tell the suit to drop this studio's key (it is open again, for another studio)."""
    await _write(
        address,
        encode_forget(current, studio_id),
        setup_code=None,
        backend=backend,
        backend_kwargs=backend_kwargs,
    )
