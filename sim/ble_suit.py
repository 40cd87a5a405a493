"""A simulated suit served over Bluetooth LE: the same firmware, as a bumble GATT peripheral.

bumble is a complete Bluetooth host stack in Python; its controllers share a
`LocalLink`, so a "radio" exists without hardware. Each `BumbleSuit` is a
bumble device that advertises the suit service (with its battery level in
the service data), serves the control characteristic (write without
response) and notifies status — the bytes go to and from the very
`SimulatedSuit` firmware the in-process link uses. bumble is an asyncio
library: this runs under `trio_asyncio` and crosses with `aio_as_trio`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import trio
import trio_asyncio
from bumble import gatt
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Device
from bumble.hci import Address
from bumble.link import LocalLink

from sim.suit import SimulatedSuit
from suit_controller.protocol import CONTROL_UUID, DEFAULT_ATT_PAYLOAD, SERVICE_UUID, STATUS_UUID

ADVERTISING_INTERVAL_MS = 20.0


def suit_address(i: int) -> str:
    """Public BLE address of the i-th simulated suit (0-based)."""
    return f"F0:5C:0E:00:{(i >> 8) & 0xFF:02X}:{i & 0xFF:02X}"


class BumbleSuit:
    """A `SimulatedSuit` behind a bumble GATT peripheral."""

    def __init__(self, suit: SimulatedSuit, link: LocalLink, address: str) -> None:
        self.suit = suit
        self.address = address
        self.controller = Controller(f"ctrl-{suit.address}", link=link, public_address=address)
        self.device = Device.with_hci(
            suit.address, Address(address), self.controller, self.controller
        )
        self.control: gatt.Characteristic[bytes] = gatt.Characteristic(
            CONTROL_UUID,
            gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.Permissions.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_write),
        )
        self.status = gatt.Characteristic(
            STATUS_UUID,
            gatt.Characteristic.Properties.NOTIFY | gatt.Characteristic.Properties.READ,
            gatt.Characteristic.Permissions.READABLE,
            b"",
        )
        self.device.add_service(gatt.Service(SERVICE_UUID, [self.control, self.status]))
        self.writes = 0
        self.out_of_reach_until = -math.inf
        self._notes_send, self._notes_recv = trio.open_memory_channel[bytes](1000)
        self._connection: Any = None
        self._subscribed = False

    def _advertising_data(self) -> bytes:
        battery = bytes([self.suit.firmware.battery_pct])
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.Type.FLAGS, bytes([0x06])),
                    (AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.suit.address.encode()),
                    (
                        AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        UUID(SERVICE_UUID).to_bytes(),
                    ),
                    (
                        AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
                        UUID(SERVICE_UUID).to_bytes() + battery,
                    ),
                ]
            )
        )

    async def start(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Power on, advertise, and relay the firmware's status notifications until cancelled."""
        await trio_asyncio.aio_as_trio(self.device.power_on)()
        self.device.on("connection", self._on_connection)
        self.device.on("characteristic_subscription", self._on_subscription)
        await self._advertise()
        task_status.started()
        async for frame in self._notes_recv:
            if self._connection is not None:
                await trio_asyncio.aio_as_trio(self.device.notify_subscribers)(self.status, frame)

    async def _advertise(self) -> None:
        await trio_asyncio.aio_as_trio(self.device.start_advertising)(
            advertising_data=self._advertising_data(),
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    def _on_connection(self, connection: Any) -> None:
        self._connection = connection
        self._subscribed = False
        connection.on("disconnection", self._on_disconnection)
        self.suit.att_payload = DEFAULT_ATT_PAYLOAD  # until the central asks for more
        connection.on(
            "connection_att_mtu_update",
            lambda: setattr(self.suit, "att_payload", connection.att_mtu - 3),
        )
        with contextlib.suppress(ConnectionError):
            self.suit.attach(self._notify, self._lost)

    def _on_subscription(
        self, _bearer: Any, characteristic: Any, notify: bool, _indicate: bool
    ) -> None:
        if characteristic is self.status:
            self._subscribed = notify
            if notify:
                self.suit.notify()  # a status at once when notifications are enabled

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._subscribed = False
        self.suit.detach()

    def _notify(self, frame: bytes) -> None:
        if not self._subscribed:
            return  # nothing goes out before the controller enables notifications (CCCD)
        # status is periodic: a dropped notification is replaced by the next one
        with contextlib.suppress(trio.WouldBlock):
            self._notes_send.send_nowait(frame)

    def _lost(self) -> None:
        pass

    def _on_write(self, connection: Any, value: bytes) -> None:
        self.writes += 1
        with contextlib.suppress(ConnectionError):  # out of reach: lost, as on air
            self.suit.deliver(bytes(value))

    async def drop_link(self, seconds: float) -> None:
        """The radio link drops: disconnect, and stay out of reach for `seconds`."""
        self.suit.reachable = False
        if self._connection is not None:
            await trio_asyncio.aio_as_trio(self._connection.disconnect)()
        await trio_asyncio.aio_as_trio(self.device.stop_advertising)()
        await trio.sleep(seconds)
        self.suit.reachable = True
        await self._advertise()
