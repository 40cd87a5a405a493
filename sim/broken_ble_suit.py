"""Deliberately broken BLE suits: each breaks one link rule of docs/security.md.

The link rules live in the suit's BLE layer (`sim/ble_suit.py`), not in its
firmware, so these are `BumbleSuit` with one rule changed, for a `BleRoom`
(`BleRoom(suits, peripheral=...)`). They prove that the conformance kit's
link checks catch a suit that breaks them (tests/test_conformance.py). Never a
suit to stimulate anyone with.
"""

from __future__ import annotations

from typing import Any

from bumble import gatt
from bumble.link import LocalLink

from sim.ble_suit import BumbleSuit
from sim.suit import SimulatedSuit


class NoLinkSecurity(BumbleSuit):
    """Takes control writes on any link: no bond with the setup code needed (its control
    characteristic is plain WRITEABLE, and it never asks whether the link is bonded)."""

    def __init__(self, suit: SimulatedSuit, link: LocalLink, address: str) -> None:
        super().__init__(suit, link, address)
        self.control.permissions = gatt.Characteristic.Permissions.WRITEABLE

    def _secure(self, connection: Any) -> bool:
        return True


class KeepsIdleLinks(BumbleSuit):
    """Never drops a connection that has not authenticated."""

    def _deadline(self, connection: Any) -> None:
        pass


class ManyControllers(BumbleSuit):
    """Takes control writes from every bonded connection at once."""

    def _authenticated(self, connection: Any) -> None:
        pass  # no connection ever becomes *the* controller: none is refused


class OneSlot(BumbleSuit):
    """Has one link slot and keeps it for whoever came first: a new connection while one is
    up is dropped at once (so a phone connected first keeps the studio out)."""

    def _on_connection(self, connection: Any) -> None:
        if self._connections:
            self._spawn(connection.disconnect())
            return
        super()._on_connection(connection)


#: Every broken BLE suit, by the name the tests and the docs use.
BROKEN_BLE_SUITS: dict[str, type[BumbleSuit]] = {
    "no link security": NoLinkSecurity,
    "keeps idle links": KeepsIdleLinks,
    "many controllers": ManyControllers,
    "one slot": OneSlot,
}
