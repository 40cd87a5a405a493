"""bleak backends on a bumble host: the real `BleakClient`/`BleakScanner` API, no radio.

bleak 3 picks a platform backend behind its public classes and accepts
custom ones (`BleakClient(address, backend=…)`). These backends drive a
bumble central `Device` on a `LocalLink`, so tests and `sim run --link ble`
go through bleak's own client API and a real Bluetooth host stack (HCI, L2CAP,
ATT, GATT) down to the simulated suits' GATT servers — no mocks between
bleak's API and the bytes. Pass the central with `bumble_central=device`.

Pairing is served (issue 18): `connect(pair=True)` (bleak's `BleakClient(...,
pair=True)`) and `pair()` bond with LE Secure Connections, passkey entry: the
passkey is the suit's setup code, given as `bumble_passkey=` (a number, or a
function of the suit's address, as a trainer types what is printed on the
suit). A suit already bonded is re-encrypted with its bond's key instead
(bumble re-encrypts a bond after a reconnect only with
`identity_address_type=RANDOM`, measured with bumble 0.0.236). `unpair()`
forgets the bond. Writes answered with an ATT error raise `BleakError` whose
`att_error` attribute is the error code (the enrollment characteristic's
refusals).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bumble.att import ATT_CID, ATT_Error, Opcode
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import ConnectionParametersPreferences, Device, Peer
from bumble.hci import Phy
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate

_PROPERTY_NAMES = {
    0x01: "broadcast",
    0x02: "read",
    0x04: "write-without-response",
    0x08: "write",
    0x10: "notify",
    0x20: "indicate",
    0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}
DEFAULT_MTU = 23
REQUESTED_MTU = 247
#: The connection interval the central asks for, ms: the shortest LE allows (bumble's own
#: default is 15–30 ms). On real hardware an application cannot always choose: docs/radio.md.
REQUESTED_INTERVAL_MS = 7.5


def _central_of(source: Any) -> Device:
    """A bumble Device, or an object whose `.central` is one (looked up late)."""
    central = getattr(source, "central", source)
    if not isinstance(central, Device):
        raise BleakError("the bumble backend needs bumble_central=Device (or a BleRoom)")
    return central


def _uuid(u: Any) -> str:
    text = str(u).lower()
    return text if "-" in text else f"0000{text[-4:]}-0000-1000-8000-00805f9b34fb"


Passkey = int | Callable[[str], int | None] | None


class _TypesSetupCode(PairingDelegate):
    """The controller's side of pairing: it types the suit's setup code as the passkey."""

    def __init__(self, passkey: int | None) -> None:
        super().__init__(PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY)
        self.passkey = passkey

    async def get_number(self) -> int | None:
        return self.passkey  # None: a negative reply, pairing fails


def _prepare_pairing(central: Device) -> dict[str, int | None]:
    """The central's keystore and pairing config (once); the passkeys it will type, by address."""
    passkeys: dict[str, int | None] | None = getattr(central, "_suit_controller_passkeys", None)
    if passkeys is None:
        table: dict[str, int | None] = {}
        if central.keystore is None:
            central.keystore = MemoryKeyStore()
        central.pairing_config_factory = lambda conn: PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=_TypesSetupCode(table.get(str(conn.peer_address).split("/")[0])),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
        central._suit_controller_passkeys = table  # type: ignore[attr-defined]
        passkeys = table
    return passkeys


class _AdvertisementWatch:
    """Scans on one bumble central while someone waits for a suit, and remembers when each
    address last advertised.

    Like bleak on BlueZ (which scans to find the device, then stops), the central
    scans only while a connection waits for its suit's advertisement or a
    `BumbleScanner` runs: a central that scanned for the whole class received every
    suit's advertisement every 20 ms for nothing (a third of a simulated class's
    CPU, with the radio model's advertising filter).
    """

    FRESH_S = 1.0

    def __init__(self, central: Device) -> None:
        self.central = central
        self.last_seen: dict[str, float] = {}
        self.changed = asyncio.Event()
        #: Connections waiting for an advertisement, and bleak scanners running.
        self.waiters = 0
        self.scanners = 0
        self._switching = asyncio.Lock()
        central.on("advertisement", self._on_advertisement)

    @classmethod
    def of(cls, central: Device) -> _AdvertisementWatch:
        watch = getattr(central, "_suit_controller_watch", None)
        if watch is None:
            watch = cls(central)
            central._suit_controller_watch = watch  # type: ignore[attr-defined]
        return watch

    def _on_advertisement(self, adv: Any) -> None:
        self.last_seen[str(adv.address).split("/")[0]] = asyncio.get_running_loop().time()
        self.changed.set()
        self.changed = asyncio.Event()

    async def rescan(self, *, active: bool = True) -> None:
        """Scan if anyone needs it, stop if nobody does (decided under a lock, from the
        counts as they are then, so concurrent starts and stops end in the right state)."""
        async with self._switching:
            wanted = self.waiters > 0 or self.scanners > 0
            if wanted and not self.central.is_scanning:
                await self.central.start_scanning(active=active, filter_duplicates=False)
            elif not wanted and self.central.is_scanning:
                await self.central.stop_scanning()

    async def wait_for(self, address: str, within: float) -> bool:
        self.waiters += 1
        try:
            await self.rescan()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while loop.time() - self.last_seen.get(address, -1e9) > self.FRESH_S:
                left = deadline - loop.time()
                if left <= 0:
                    return False
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except TimeoutError:
                    return False
            return True
        finally:
            self.waiters -= 1
            if self.waiters == 0 and self.scanners == 0:
                with contextlib.suppress(Exception):  # bumble's: the central is going down
                    await self.rescan()


class BumbleClient(BaseBleakClient):
    """A bleak client backend over a bumble central device."""

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        source = kwargs.pop("bumble_central", None)
        self._requested_mtu = int(kwargs.pop("bumble_mtu", REQUESTED_MTU))
        self._passkey: Passkey = kwargs.pop("bumble_passkey", None)
        self._interval_ms = float(kwargs.pop("bumble_interval_ms", REQUESTED_INTERVAL_MS))
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 10.0),
        )
        if source is None:
            raise BleakError("the bumble backend needs bumble_central=Device (or a BleRoom)")
        self._central_source = source
        self._central: Device | None = None
        self._connection: Any = None
        self._peer: Peer | None = None
        self._mtu = DEFAULT_MTU

    @property
    def name(self) -> str:
        return str(self.address)

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    @property
    def connection_interval_ms(self) -> float | None:
        """The connection interval the link runs at, ms (None when not connected)."""
        conn = self._connection
        if conn is None:
            return None
        return float(conn.parameters.connection_interval)

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        # Like bleak's BlueZ backend, first find the device among advertisements, so an
        # absent suit is BleakDeviceNotFoundError after the timeout.
        if not getattr(self._central_source, "plugged", True):
            raise BleakError(f"adapter {getattr(self._central_source, 'name', '?')} is unplugged")
        self._central = _central_of(self._central_source)
        watch = _AdvertisementWatch.of(self._central)
        if not await watch.wait_for(str(self.address), self._timeout):
            raise BleakDeviceNotFoundError(str(self.address), f"{self.address}: not advertising")
        # A controller creates one LE connection at a time (as real ones do): queue up.
        lock = getattr(self._central, "_suit_controller_connect_lock", None)
        if lock is None:
            lock = asyncio.Lock()
            self._central._suit_controller_connect_lock = lock  # type: ignore[attr-defined]
        try:
            async with lock:
                preferences = ConnectionParametersPreferences(
                    connection_interval_min=self._interval_ms,
                    connection_interval_max=self._interval_ms,
                )
                conn = await asyncio.wait_for(
                    self._central.connect(
                        self.address, connection_parameters_preferences={Phy.LE_1M: preferences}
                    ),
                    self._timeout,
                )
        except TimeoutError:
            raise BleakDeviceNotFoundError(
                str(self.address), f"{self.address}: no answer"
            ) from None
        except Exception as e:  # bumble's own errors: this is bleak's boundary
            raise BleakError(f"{self.address}: {e}") from e
        self._connection = conn
        conn.on("disconnection", self._on_disconnection)
        if pair:
            await self.pair()
        peer = self._peer = Peer(conn)
        self._mtu = await peer.request_mtu(self._requested_mtu)
        services = BleakGATTServiceCollection()
        for svc in await peer.discover_services():
            service = BleakGATTService(svc, svc.handle, _uuid(svc.uuid))
            services.add_service(service)
            for ch in await svc.discover_characteristics():
                props = [n for bit, n in _PROPERTY_NAMES.items() if int(ch.properties) & bit]
                char = BleakGATTCharacteristic(
                    ch,
                    ch.handle,
                    _uuid(ch.uuid),
                    props,  # type: ignore[arg-type]
                    lambda: self._mtu - 3,
                    service,
                )
                services.add_characteristic(char)
                for d in await ch.discover_descriptors():
                    services.add_descriptor(BleakGATTDescriptor(d, d.handle, _uuid(d.type), char))
        self.services = services

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        conn = self._connection
        if conn is not None:
            await conn.disconnect()

    def _passkey_for(self, address: str) -> int | None:
        p = self._passkey
        return p(address) if callable(p) else p

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Encrypt with the suit's bond if there is one, else bond (passkey = setup code)."""
        conn = self._connection
        if conn is None or self._central is None:
            raise BleakError(f"{self.address}: not connected")
        address = str(self.address)
        passkeys = _prepare_pairing(self._central)
        passkeys[address] = self._passkey_for(address)
        keystore = self._central.keystore
        bonded = keystore is not None and await keystore.get(address) is not None
        try:
            if bonded:
                try:
                    await conn.encrypt()
                except Exception:  # the suit lost our bond (factory reset): bond again
                    if passkeys[address] is None or keystore is None:
                        raise
                    await keystore.delete(address)
                    await conn.pair()
            else:
                await conn.pair()
        except Exception as e:  # bumble's own errors: this is bleak's boundary
            why = "the passkey did not match" if "CONFIRM_VALUE" in str(e) else str(e)
            raise BleakError(f"{address}: pairing failed ({why or type(e).__name__})") from e
        if not conn.is_encrypted:
            raise BleakError(f"{address}: the link is not encrypted after pairing")

    async def unpair(self) -> None:
        """Forget the suit's bond (and disconnect, as bleak's other backends do)."""
        central = self._central or _central_of(self._central_source)
        if central.keystore is not None:
            with contextlib.suppress(KeyError):  # no bond: already forgotten
                await central.keystore.delete(str(self.address))
        await self.disconnect()

    def _need(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._need()
        return bytearray(await characteristic.obj.read_value())

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._need()
        return bytearray(await descriptor.obj.read_value())

    def _write_command_on_air(self, handle: int, value: bytes) -> bool:
        """A write without response handed to the air model at once (see `write_gatt_char`);
        False when this link cannot take the short path (then bumble's own path runs)."""
        conn = self._connection
        central = self._central
        if conn is None or central is None:
            return False
        controller = central.host.hci_sink
        link = getattr(controller, "link", None)
        if not isinstance(controller, Controller) or not getattr(link, "carries_att_writes", False):
            return False
        queue = central.host.le_acl_packet_queue
        if conn.handle not in central.host.connections or queue is None:
            return False
        # Only with nothing of the central's waiting for the controller's buffers: what is in
        # flight is already in the air model's queue for this connection, so order is kept.
        if queue._packets:
            return False
        ll = next((c for c in controller.le_connections.values() if c.handle == conn.handle), None)
        if ll is None:
            return False
        # ATT Write Command (Vol 3, Part F, 3.4.5.3) in an L2CAP basic frame on the ATT
        # channel: the bytes bumble's `GATT client` → `host.send_l2cap_pdu` would make.
        pdu = struct.pack("<HHBH", len(value) + 3, ATT_CID, Opcode.ATT_WRITE_COMMAND, handle)
        ll.on_acl_pdu(pdu + value)  # the controller's connection: to the link, in order
        return True

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """bleak's write. A write without response on the air model (sim/radio.py) takes a
        short path on this side: the ATT Write Command's bytes go straight to the central
        controller's connection, which hands them to the air at its next connection event,
        instead of through bumble's GATT client, the host's ACL queue and HCI encoded and
        parsed (nothing comes back for a write command). The suit's side is bumble's whole
        stack as before (controller, host, L2CAP, ATT, GATT server and its permissions)."""
        self._need()
        if not response and self._write_command_on_air(characteristic.handle, bytes(data)):
            return
        try:
            await characteristic.obj.write_value(bytes(data), with_response=response)
        except ATT_Error as e:
            err = BleakError(f"{self.address}: the suit answered ATT error {e.error_code:#04x}")
            err.att_error = e.error_code  # type: ignore[attr-defined]
            raise err from e

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        self._need()
        await descriptor.obj.write_value(bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._need()
        await peer.subscribe(characteristic.obj, lambda value: callback(bytearray(value)))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._need()
        await peer.unsubscribe(characteristic.obj)


class BumbleScanner(BaseBleakScanner):
    """A bleak scanner backend over a bumble central device."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        source = kwargs.get("bumble_central")
        if source is None:
            raise BleakError("the bumble backend needs bumble_central=Device")
        self._central: Device = _central_of(source)
        self._active = scanning_mode != "passive"

    def _on_advertisement(self, adv: Any) -> None:
        data: AdvertisingData = adv.data
        uuids = [
            _uuid(u)
            for u in (
                data.get(AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS) or []
            )
        ]
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME)
        service_data: dict[str, bytes] = {}
        raw = data.get(AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID, raw=True)
        if isinstance(raw, bytes) and len(raw) >= 16:
            service_data[_uuid(UUID.from_bytes(raw[:16]))] = bytes(raw[16:])
        address = str(adv.address).split("/")[0]
        ad = AdvertisementData(
            local_name=str(name) if name is not None else None,
            manufacturer_data={},
            service_data=service_data,
            service_uuids=uuids,
            tx_power=None,
            rssi=int(adv.rssi),
            platform_data=(adv,),
        )
        device = self.create_or_update_device(address, address, ad.local_name, adv, ad)
        self.call_detection_callbacks(device, ad)

    async def start(self) -> None:
        self.seen_devices = {}
        self._central.on("advertisement", self._on_advertisement)
        watch = _AdvertisementWatch.of(self._central)
        watch.scanners += 1
        await watch.rescan(active=self._active)

    async def stop(self) -> None:
        self._central.remove_listener("advertisement", self._on_advertisement)
        watch = _AdvertisementWatch.of(self._central)
        watch.scanners = max(0, watch.scanners - 1)
        await watch.rescan(active=self._active)

    def set_scanning_filter(self, **kwargs: Any) -> None:
        raise NotImplementedError("filters beyond service UUIDs are not served")
