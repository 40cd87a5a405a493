"""A room full of simulated suits on a bumble `LocalLink`, and the controller's central."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio
import trio_asyncio
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.link import LocalLink

from sim.ble_suit import BumbleSuit, suit_address
from sim.bleak_bumble import BumbleClient, BumbleScanner
from sim.suit import SimulatedSuit

CENTRAL_ADDRESS = "F0:5C:0E:FF:FF:01"


@dataclass
class BleRoom:
    """Simulated suits served over BLE, and a central for bleak's bumble backend.

    bumble's objects need a running asyncio loop, so they are built in `run`;
    `client_kwargs()` hands bleak the room itself, and the backend looks the
    central up when it connects.
    """

    suits: list[SimulatedSuit]
    #: The suits' BLE layer (a broken one from sim/broken_ble_suit.py in the kit's tests).
    peripheral: type[BumbleSuit] = BumbleSuit
    peripherals: list[BumbleSuit] = field(init=False, default_factory=list)
    _central: Device | None = field(init=False, default=None)
    _link: LocalLink | None = field(init=False, default=None)

    @property
    def addresses(self) -> list[str]:
        return [suit_address(i) for i in range(len(self.suits))]

    @property
    def central(self) -> Device:
        """The controller's bumble device (exists once `run` has started)."""
        if self._central is None:
            raise RuntimeError("the BLE room is not running")
        return self._central

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `BleLink`/`BleakClient` to use this room's bumble central.

        The central pairs with each suit using the setup code printed on it (as a
        trainer would type it).
        """
        return {"backend": BumbleClient, "bumble_central": self, "bumble_passkey": self.passkey}

    def passkey(self, address: str) -> int | None:
        """The setup code printed on the suit at `address`, as a pairing passkey."""
        for suit, a in zip(self.suits, self.addresses, strict=True):
            if a == address:
                return int(suit.setup_code)
        return None

    def scanner_kwargs(self) -> dict[str, Any]:
        return {"backend": BumbleScanner, "bumble_central": self}

    async def phone(self, address: str) -> Device:
        """Another central in radio range (a phone in the gym), powered on, for bleak's
        bumble backend as `bumble_central=`."""
        if self._link is None:
            raise RuntimeError("the BLE room is not running")
        link = self._link

        async def build() -> Device:
            controller = Controller(f"phone-{address}", link=link, public_address=address)
            device = Device.with_hci(f"phone-{address}", Address(address), controller, controller)
            await device.power_on()
            return device

        device: Device = await trio_asyncio.aio_as_trio(build)()
        return device

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Power everything on and serve the suits until cancelled (needs trio-asyncio's loop)."""

        async def build() -> None:
            link = self._link = LocalLink()  # type: ignore[no-untyped-call]
            self.peripherals = [
                self.peripheral(s, link, a) for s, a in zip(self.suits, self.addresses, strict=True)
            ]
            controller = Controller("controller-central", link=link, public_address=CENTRAL_ADDRESS)
            self._central = Device.with_hci(
                "suit-controller", Address(CENTRAL_ADDRESS), controller, controller
            )
            await self._central.power_on()

        await trio_asyncio.aio_as_trio(build)()
        async with trio.open_nursery() as nursery:
            for p in self.peripherals:
                await nursery.start(p.start)
            task_status.started()
            await trio.sleep_forever()
