"""The studio's records of its suits' keys (issue 18): enrolled, rotated, forgotten.

A key is created at enrollment (`suit_controller.enrollment`), stored here and
read by every class that drives the suit. The studio id is made once, on first
use. Kept apart from `store.py` so the security records have one place.
"""

from __future__ import annotations

from sqlalchemy import select

from suit_controller.protocol.enrollment import SuitKey, new_studio_id
from suit_controller.studio.schema import studio_identity, suit_keys
from suit_controller.studio.store import Store, StoreError, iso, utcnow


def _address(address: str) -> str:
    return address.strip().upper()


def studio_id(store: Store) -> bytes:
    """This studio's id (16 bytes), created on first use."""
    with store.engine.begin() as c:
        row = c.execute(select(studio_identity.c.studio_id)).first()
        if row is not None:
            return bytes.fromhex(row[0])
        new = new_studio_id()
        c.execute(studio_identity.insert().values(studio_id=new.hex(), created_at=iso(utcnow())))
        return new


def suit_key(store: Store, address: str) -> SuitKey | None:
    """The key this studio holds for the suit at `address` (None: not enrolled here)."""
    with store.engine.begin() as c:
        row = c.execute(
            select(suit_keys.c.key_id, suit_keys.c.key).where(
                suit_keys.c.address == _address(address)
            )
        ).first()
    return None if row is None else SuitKey(int(row[0]), bytes.fromhex(row[1]))


def all_suit_keys(store: Store) -> dict[str, SuitKey]:
    """Every enrolled suit's key, by address."""
    with store.engine.begin() as c:
        rows = c.execute(select(suit_keys.c.address, suit_keys.c.key_id, suit_keys.c.key)).all()
    return {str(a): SuitKey(int(i), bytes.fromhex(k)) for a, i, k in rows}


def enrolled_suits(store: Store) -> list[tuple[str, int, str, str | None]]:
    """(address, key id, enrolled at, rotated at) of every enrolled suit; no keys."""
    with store.engine.begin() as c:
        rows = c.execute(
            select(
                suit_keys.c.address,
                suit_keys.c.key_id,
                suit_keys.c.enrolled_at,
                suit_keys.c.rotated_at,
            ).order_by(suit_keys.c.address)
        ).all()
    return [(str(a), int(i), str(e), r) for a, i, e, r in rows]


def save_suit_key(store: Store, address: str, key: SuitKey, *, rotated: bool = False) -> None:
    """Record a suit's new key (enrolled, or rotated from the one recorded)."""
    now = iso(utcnow())
    with store.engine.begin() as c:
        if rotated:
            done = c.execute(
                suit_keys.update()
                .where(suit_keys.c.address == _address(address))
                .values(key_id=key.key_id, key=key.key.hex(), rotated_at=now)
            )
            if done.rowcount != 1:
                raise StoreError(f"suit {address} is not enrolled in this studio")
            return
        c.execute(suit_keys.delete().where(suit_keys.c.address == _address(address)))
        c.execute(
            suit_keys.insert().values(
                address=_address(address),
                key_id=key.key_id,
                key=key.key.hex(),
                enrolled_at=now,
                rotated_at=None,
            )
        )


def forget_suit_key(store: Store, address: str) -> bool:
    """Drop the suit's key from the records; False if it was not enrolled here."""
    with store.engine.begin() as c:
        done = c.execute(suit_keys.delete().where(suit_keys.c.address == _address(address)))
    return bool(done.rowcount)
