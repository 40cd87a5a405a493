"""A suit over Bluetooth LE, through bleak (running under trio-asyncio).

bleak is an asyncio library: every call crosses with `aio_as_trio`, and the
caller opens the loop (`trio_asyncio.open_loop()`). bleak's exceptions
become `ConnectFailed` / `LinkLost` here, at the boundary; nothing outside
this module knows asyncio exists. A disconnect is noticed at once (bleak's
disconnected callback closes the notification channel, so `receive` raises).
Frames are written without response; the driver above keeps only the newest
frame, so no queue builds up behind a slow link.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import Any

import trio
import trio_asyncio
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from suit_controller.links.adapters import Adapter, AdapterPool
from suit_controller.links.asyncio_loop import batch_current_loop
from suit_controller.links.base import ConnectFailed, LinkLost
from suit_controller.protocol import (
    CONTROL_UUID,
    DEFAULT_ATT_PAYLOAD,
    SERVICE_UUID,
    STATUS_UUID,
    FrameType,
)
from suit_controller.protocol.enrollment import STOP_UUID, SuitKey

#: What bleak raises, or lets through from the OS, when a link fails.
BLE_ERRORS = (BleakError, OSError, EOFError, asyncio.TimeoutError, TimeoutError, AttributeError)
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FoundSuit:
    """A suit seen while scanning."""

    address: str
    name: str | None
    rssi: int
    battery_pct: int | None


async def scan_suits(
    seconds: float = 5.0, *, backend: type[Any] | None = None, **backend_kwargs: Any
) -> list[FoundSuit]:
    """Suits advertising the EMS suit service, strongest signal first."""
    try:
        found = await trio_asyncio.aio_as_trio(BleakScanner.discover)(
            timeout=seconds,
            service_uuids=[SERVICE_UUID],
            return_adv=True,
            backend=backend,
            **backend_kwargs,
        )
    except BLE_ERRORS as e:
        raise ConnectFailed(f"cannot scan: {e}") from e
    out = []
    for device, adv in found.values():
        data = adv.service_data.get(SERVICE_UUID)
        out.append(
            FoundSuit(
                device.address, adv.local_name or device.name, adv.rssi, data[0] if data else None
            )
        )
    return sorted(out, key=lambda s: -s.rssi)


class BleLink:
    """`SuitLink` over bleak. `backend` and its keyword arguments select a custom bleak backend.

    With `adapters`, each connection goes through the adapter the pool picks
    (its keyword arguments added to the backend's), so suits spread over them.
    """

    def __init__(
        self,
        address: str,
        *,
        suit_key: SuitKey | None = None,
        adapters: AdapterPool | None = None,
        backend: type[Any] | None = None,
        **backend_kwargs: Any,
    ) -> None:
        self._address = address
        self._adapters = adapters
        #: The adapter of the current (or last) connection, when there is a pool.
        self.adapter: Adapter | None = None
        #: The suit's enrolled key (the driver signs every control frame with it).
        self.suit_key = suit_key
        self._backend = backend
        self._backend_kwargs = backend_kwargs
        self._client: BleakClient | None = None
        #: The control and stop characteristics as bleak found them at connect (bleak
        #: otherwise looks a UUID up among the services on every write).
        self._control: Any = CONTROL_UUID
        self._stop: Any = STOP_UUID
        self._att_payload = DEFAULT_ATT_PAYLOAD
        self._send_ch: trio.MemorySendChannel[bytes] | None = None
        self._recv_ch: trio.MemoryReceiveChannel[bytes] | None = None
        self.disconnects = 0
        #: The suit's signal, dBm, as the last scan that saw it measured it (bleak gives RSSI
        #: only at scan); None when no scan told. Its link health shows it.
        self.rssi_dbm: int | None = None

    @property
    def address(self) -> str:
        return self._address

    @property
    def att_payload(self) -> int:
        return self._att_payload

    def _on_disconnect(self, client: Any) -> None:
        self.disconnects += 1
        if self._adapters is not None:
            self._adapters.released(self._address)
        if self._send_ch is not None:
            self._send_ch.close()
            self._send_ch = None

    def _on_notify(self, _char: Any, data: bytearray) -> None:
        if self._send_ch is not None:
            with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                self._send_ch.send_nowait(bytes(data))

    async def connect(self) -> None:
        batch_current_loop()  # bleak's callbacks in batches, not a Trio round each
        await self.aclose()
        send, recv = trio.open_memory_channel[bytes](math.inf)
        self._send_ch, self._recv_ch = send, recv
        kwargs = dict(self._backend_kwargs)
        adapter = None
        if self._adapters is not None:
            adapter = self.adapter = self._adapters.pick(self._address, trio.current_time())
            kwargs.update(adapter.client_kwargs)
        client = BleakClient(
            self._address,
            disconnected_callback=self._on_disconnect,
            timeout=CONNECT_TIMEOUT_S,
            pair=True,  # the control characteristic needs an encrypted, bonded link
            backend=self._backend,
            **kwargs,
        )
        try:
            await trio_asyncio.aio_as_trio(client.connect)()
            self._att_payload = max(DEFAULT_ATT_PAYLOAD, client.mtu_size - 3)
            await trio_asyncio.aio_as_trio(client.start_notify)(STATUS_UUID, self._on_notify)
        except BLE_ERRORS as e:
            self._send_ch = None
            if self._adapters is not None and adapter is not None:
                self._adapters.failed(self._address, adapter, trio.current_time())
            via = f" via {adapter.name}" if adapter is not None else ""
            raise ConnectFailed(f"{self._address}{via}: {e or type(e).__name__}") from e
        self._client = client
        services = client.services
        self._control = services.get_characteristic(CONTROL_UUID) or CONTROL_UUID
        self._stop = services.get_characteristic(STOP_UUID) or STOP_UUID
        if self._adapters is not None and adapter is not None:
            self._adapters.connected(self._address, adapter)

    def characteristics(self) -> dict[str, frozenset[str]]:
        """The suit service's characteristics: UUID -> properties (bleak's names).

        Empty when the connected device has no EMS suit service. Raises LinkLost
        when not connected.
        """
        client = self._client
        if client is None:
            raise LinkLost(f"{self._address}: not connected")
        service = client.services.get_service(SERVICE_UUID)
        if service is None:
            return {}
        return {
            str(ch.uuid).lower(): frozenset(str(p) for p in ch.properties)
            for ch in service.characteristics
        }

    async def send(self, frame: bytes) -> None:
        client = self._client
        if client is None or self._send_ch is None:
            await trio.lowlevel.checkpoint()
            raise LinkLost(f"{self._address}: not connected")
        try:
            await trio_asyncio.aio_as_trio(client.write_gatt_char)(
                self._control, frame, response=False
            )
            if len(frame) > 0 and frame[0] & 0x0F == FrameType.STOP_ALL:
                # also on the stop characteristic: it needs no bond and no key, so the stop
                # arrives even if this controller's control writes would not be heard
                await trio_asyncio.aio_as_trio(client.write_gatt_char)(
                    self._stop, frame, response=False
                )
        except BLE_ERRORS as e:
            raise LinkLost(f"{self._address}: {e or type(e).__name__}") from e

    async def receive(self) -> bytes:
        if self._recv_ch is None:
            await trio.lowlevel.checkpoint()
            raise LinkLost(f"{self._address}: not connected")
        try:
            return await self._recv_ch.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise LinkLost(f"{self._address}: disconnected") from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if self._adapters is not None and client is not None:
            self._adapters.released(self._address)
        if self._send_ch is not None:
            self._send_ch.close()
            self._send_ch = None
        if client is not None:
            with trio.move_on_after(2.0):
                with contextlib.suppress(*BLE_ERRORS):
                    await trio_asyncio.aio_as_trio(client.disconnect)()
        await trio.lowlevel.checkpoint()
