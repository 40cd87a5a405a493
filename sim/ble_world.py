"""A room full of simulated suits on a bumble link, and the controller's adapters.

With a `Radio` (sim/radio.py) the link has connection events, bytes per event
and one capacity per adapter; each adapter is its own bumble controller and
central device, as a USB dongle is on a real controller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_asyncio
from bumble.controller import Controller
from bumble.device import Device
from bumble.link import LocalLink

from sim.ble_suit import BumbleSuit, suit_address
from sim.bleak_bumble import BumbleClient, BumbleScanner
from sim.quiet_bumble import QuietController, quiet_device
from sim.radio import AdapterController, Loss, Radio, RadioLink
from sim.suit import SimulatedSuit
from suit_controller.links.adapters import Adapter, AdapterPool
from suit_controller.links.asyncio_loop import batch_current_loop

CENTRAL_ADDRESS = "F0:5C:0E:FF:FF:01"


def central_address(i: int) -> str:
    """Public address of the controller's i-th simulated adapter (0-based)."""
    return f"F0:5C:0E:FF:FF:{i + 1:02X}"


@dataclass
class SimulatedAdapter:
    """One Bluetooth adapter of the controller: a bumble controller and its central device.

    `unplug()` is a dongle pulled out: its links drop and it connects nothing until
    `plug_in()`.
    """

    name: str
    address: str
    plugged: bool = True
    _central: Device | None = None

    @property
    def central(self) -> Device:
        if self._central is None:
            raise RuntimeError("the BLE room is not running")
        return self._central

    @property
    def connections(self) -> int:
        """LE connections the adapter holds now."""
        return 0 if self._central is None else len(self._central.connections)

    async def unplug(self) -> None:
        """Pull the adapter out: every link through it drops (needs trio-asyncio's loop)."""
        self.plugged = False
        for conn in list(self.central.connections.values()):
            with contextlib.suppress(Exception):  # already going down: bumble's errors
                await trio_asyncio.aio_as_trio(conn.disconnect)()

    def plug_in(self) -> None:
        self.plugged = True


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
    #: The controller's adapters, by name (one bumble controller each).
    adapter_names: Sequence[str] = ("sim-hci0",)
    #: The air's model; None: bumble's `LocalLink` (every packet at once, no limits).
    radio: Radio | None = None
    #: Losses on the air (needs `radio`): the radio model's own list, so a rule added
    #: before or during the run acts from then on (see `sim.radio.Loss`).
    losses: list[Loss] = field(default_factory=list)
    peripherals: list[BumbleSuit] = field(init=False, default_factory=list)
    adapters: list[SimulatedAdapter] = field(init=False, default_factory=list)
    _link: LocalLink | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not self.adapter_names:
            raise ValueError("a BLE room needs at least one adapter")
        if len(set(self.adapter_names)) != len(self.adapter_names):
            raise ValueError(f"adapter names repeat: {list(self.adapter_names)}")
        self.adapters = [
            SimulatedAdapter(name, central_address(i)) for i, name in enumerate(self.adapter_names)
        ]

    @property
    def addresses(self) -> list[str]:
        return [suit_address(i) for i in range(len(self.suits))]

    @property
    def central(self) -> Device:
        """The first adapter's bumble device (exists once `run` has started)."""
        return self.adapters[0].central

    def adapter_pool(self) -> AdapterPool:
        """The adapters as `BleLink` spreads suits over them (capacity from the radio model)."""
        capacity = None if self.radio is None else self.radio.capacity()
        return AdapterPool(
            [
                Adapter(
                    a.name,
                    {"bumble_central": a},
                    alive=lambda a=a: a.plugged,  # type: ignore[misc]
                    capacity=capacity,
                )
                for a in self.adapters
            ]
        )

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
            controller = QuietController(f"phone-{address}", link=link, public_address=address)
            device = quiet_device(f"phone-{address}", address, controller)
            await device.power_on()
            return device

        device: Device = await trio_asyncio.aio_as_trio(build)()
        return device

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Power everything on and serve the suits until cancelled (needs trio-asyncio's loop)."""
        batch_current_loop()  # bumble's callbacks in batches, not a Trio round each

        async def build() -> None:
            link: LocalLink = (
                LocalLink()  # type: ignore[no-untyped-call]
                if self.radio is None
                else RadioLink(self.radio)
            )
            if isinstance(link, RadioLink):
                link.losses = self.losses
            elif self.losses:
                raise ValueError("losses on the air need the radio model (radio=Radio())")
            self._link = link
            self.peripherals = [
                self.peripheral(s, link, a) for s, a in zip(self.suits, self.addresses, strict=True)
            ]
            for adapter in self.adapters:
                controller: Controller
                if self.radio is None:
                    controller = QuietController(
                        f"adapter-{adapter.name}", link=link, public_address=adapter.address
                    )
                else:
                    controller = AdapterController(
                        f"adapter-{adapter.name}",
                        link=link,
                        public_address=adapter.address,
                        radio=self.radio,
                    )
                adapter._central = quiet_device(
                    f"suit-controller-{adapter.name}", adapter.address, controller
                )
                await adapter._central.power_on()

        await trio_asyncio.aio_as_trio(build)()
        async with trio.open_nursery() as nursery:
            for p in self.peripherals:
                await nursery.start(p.start)
            task_status.started()
            await trio.sleep_forever()
