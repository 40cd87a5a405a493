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
    """Simulated suits served over BLE, and a central for bleak's bumble backend."""

    suits: list[SimulatedSuit]
    link: LocalLink = field(default_factory=LocalLink)
    peripherals: list[BumbleSuit] = field(init=False)
    central: Device = field(init=False)

    def __post_init__(self) -> None:
        self.peripherals = [
            BumbleSuit(s, self.link, suit_address(i)) for i, s in enumerate(self.suits)
        ]
        controller = Controller(
            "controller-central", link=self.link, public_address=CENTRAL_ADDRESS
        )
        self.central = Device.with_hci(
            "suit-controller", Address(CENTRAL_ADDRESS), controller, controller
        )

    @property
    def addresses(self) -> list[str]:
        return [p.address for p in self.peripherals]

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `BleLink`/`BleakClient` to use this room's bumble central."""
        return {"backend": BumbleClient, "bumble_central": self.central}

    def scanner_kwargs(self) -> dict[str, Any]:
        return {"backend": BumbleScanner, "bumble_central": self.central}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Power everything on and serve the suits until cancelled (needs trio-asyncio's loop)."""
        await trio_asyncio.aio_as_trio(self.central.power_on)()
        async with trio.open_nursery() as nursery:
            for p in self.peripherals:
                await nursery.start(p.start)
            task_status.started()
            await trio.sleep_forever()
