"""A simulated suit served over Bluetooth LE: the same firmware, as a bumble GATT peripheral.

bumble is a complete Bluetooth host stack in Python; its controllers share a
`LocalLink`, so a "radio" exists without hardware. Each `BumbleSuit` is a
bumble device that advertises the suit service (with its battery level in
the service data), serves the control characteristic (write without
response) and notifies status — the bytes go to and from the very
`SimulatedSuit` firmware the in-process link uses. bumble is an asyncio
library: this runs under `trio_asyncio` and crosses with `aio_as_trio`.

Security (issue 18; docs/protocol.md, "Security") is enforced here, at the
link, and in the firmware's authentication layer (`sim/suit_auth.py`):

* the control and enrollment characteristics need an encrypted link whose
  bond was made with LE Secure Connections and the suit's setup code as the
  passkey (MITM-authenticated); writes on any other link are dropped (write
  commands) or answered INSUFFICIENT_ENCRYPTION / INSUFFICIENT_AUTHENTICATION;
* the stop characteristic needs nothing and honours STOP_ALL only;
* status goes only to encrypted, authenticated links (to the controller alone
  once one has authenticated);
* after a failed pairing (a wrong passkey) the suit refuses to pair for
  `PAIRING_BACKOFF_S`;
* a connection must authenticate within `AUTH_TIMEOUT_S` (an enrolled suit:
  a control frame verified under its key, or an accepted enrollment message;
  an open suit: the authenticated bond) or it is dropped; the suit keeps
  advertising until one connection has authenticated, so a phone that
  connects first cannot keep the studio out; once one has, the others are
  dropped and advertising stops until it leaves (one controller at a time);
* bonds re-encrypt after a reconnect only with `identity_address_type=RANDOM`
  (measured with bumble 0.0.236), so the suit's pairing config uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import trio
import trio_asyncio
from bumble import gatt
from bumble.att import ATT_INSUFFICIENT_AUTHENTICATION_ERROR, ATT_Error
from bumble.core import UUID, AdvertisingData
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate

from sim.quiet_bumble import QuietController, quiet_device
from sim.suit import SimulatedSuit
from suit_controller.protocol import CONTROL_UUID, DEFAULT_ATT_PAYLOAD, SERVICE_UUID, STATUS_UUID
from suit_controller.protocol.enrollment import AUTH_TIMEOUT_S, ENROLL_UUID, STOP_UUID

ADVERTISING_INTERVAL_MS = 20.0


def suit_address(i: int) -> str:
    """Public BLE address of the i-th simulated suit (0-based)."""
    return f"F0:5C:0E:00:{(i >> 8) & 0xFF:02X}:{i & 0xFF:02X}"


#: After a failed pairing the suit refuses to pair for this long, s (a six-digit code
#: guessed one pairing at a time then takes weeks, not hours).
PAIRING_BACKOFF_S = 5.0


class _ShowsSetupCode(PairingDelegate):
    """The suit's side of pairing: its setup code is the passkey (printed, or on its display)."""

    def __init__(self, setup_code: str, locked_until: float) -> None:
        super().__init__(PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY)
        self.setup_code = int(setup_code)
        self.locked_until = locked_until

    async def accept(self) -> bool:
        return asyncio.get_running_loop().time() >= self.locked_until

    async def generate_passkey(self) -> int:
        return self.setup_code


class BumbleSuit:
    """A `SimulatedSuit` behind a bumble GATT peripheral."""

    def __init__(self, suit: SimulatedSuit, link: LocalLink, address: str) -> None:
        self.suit = suit
        self.address = address
        self.controller = QuietController(f"ctrl-{suit.address}", link=link, public_address=address)
        self.device = quiet_device(suit.address, address, self.controller)
        self.device.keystore = MemoryKeyStore()
        #: Pairing is refused until then (loop time), after a failed attempt.
        self.pairing_locked_until = -math.inf
        self.pairing_failures = 0
        self.device.pairing_config_factory = lambda _conn: PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=_ShowsSetupCode(suit.setup_code, self.pairing_locked_until),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
        needs_encryption = gatt.Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
        self.control: gatt.Characteristic[bytes] = gatt.Characteristic(
            CONTROL_UUID,
            gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            needs_encryption,
            gatt.CharacteristicValue(write=self._on_write),
        )
        self.status = gatt.Characteristic(
            STATUS_UUID,
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions.READ_REQUIRES_ENCRYPTION,
            b"",
        )
        self.stop: gatt.Characteristic[bytes] = gatt.Characteristic(
            STOP_UUID,
            gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.Permissions.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_stop),
        )
        self.enrollment: gatt.Characteristic[bytes] = gatt.Characteristic(
            ENROLL_UUID,
            gatt.Characteristic.Properties.WRITE,
            needs_encryption,
            gatt.CharacteristicValue(write=self._on_enrollment),
        )
        self.device.add_service(
            gatt.Service(SERVICE_UUID, [self.control, self.status, self.stop, self.enrollment])
        )
        self.writes = 0
        #: Control writes dropped because their link was not encrypted with an authenticated
        #: bond, and connections dropped for not authenticating in time.
        self.refused_writes = 0
        self.timed_out = 0
        self.out_of_reach_until = -math.inf
        self._notes_send, self._notes_recv = trio.open_memory_channel[bytes](1000)
        self._connection: Any = None  # the authenticated controller's connection
        self._subscribed = False  # the controller enabled status notifications (CCCD)
        self._connections: list[Any] = []
        self._mitm: set[Any] = set()  # connections encrypted with an authenticated bond
        self._tasks: set[asyncio.Future[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        """Run a bumble coroutine from a bumble event handler (keeping a reference)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            # to the controller once one authenticated; before, to every bonded link (the
            # controller needs the suit's counter before its first signed frame)
            controller = self._connection
            targets = [controller] if controller is not None else self._connections
            for conn in [c for c in targets if self._secure(c)]:
                with contextlib.suppress(Exception):  # a link going down meanwhile: bumble's
                    await trio_asyncio.aio_as_trio(self.device.notify_subscriber)(
                        conn, self.status, frame
                    )

    async def _advertise(self) -> None:
        await trio_asyncio.aio_as_trio(self.device.start_advertising)(
            advertising_data=self._advertising_data(),
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    def _on_connection(self, connection: Any) -> None:
        self._connections.append(connection)
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        connection.on("connection_encryption_change", lambda: self._on_encryption(connection))
        connection.on("pairing", lambda keys: self._on_encryption(connection, keys))
        connection.on("pairing_failure", lambda _reason: self._on_pairing_failure())
        asyncio.get_running_loop().call_later(AUTH_TIMEOUT_S, self._deadline, connection)
        if not self.suit.connected:
            self._subscribed = False
            self.suit.att_payload = DEFAULT_ATT_PAYLOAD  # until the central asks for more
            with contextlib.suppress(ConnectionError):
                self.suit.attach(self._notify, self._lost)
        connection.on(
            "connection_att_mtu_update",
            lambda: setattr(self.suit, "att_payload", connection.att_mtu - 3),
        )
        # keep advertising: a phone connected first cannot keep the studio out, and
        # anyone may connect to press stop (unauthenticated links last AUTH_TIMEOUT_S)
        self._spawn(self._readvertise())

    async def _readvertise(self) -> None:
        with contextlib.suppress(Exception):  # bumble's: the next connection retries
            await self.device.start_advertising(
                advertising_data=self._advertising_data(),
                auto_restart=True,
                advertising_interval_min=ADVERTISING_INTERVAL_MS,
                advertising_interval_max=ADVERTISING_INTERVAL_MS,
            )

    def _on_encryption(self, connection: Any, keys: Any = None) -> None:
        """Note whether the link is encrypted with an authenticated (passkey) LESC bond."""
        self._spawn(self._check_bond(connection, keys))

    async def _check_bond(self, connection: Any, keys: Any) -> None:
        if keys is None and self.device.keystore is not None:
            keys = await self.device.keystore.get(str(connection.peer_address))
        ltk = getattr(keys, "ltk", None) or getattr(keys, "ltk_peripheral", None)
        if connection.is_encrypted and ltk is not None and ltk.authenticated:
            self._mitm.add(connection)
            if not self.suit.firmware.auth.enrolled:
                self._authenticated(connection)  # an open suit: the passkey bond is enough
            self.suit.notify()  # a status at once for the encrypted link

    def _on_pairing_failure(self) -> None:
        self.pairing_failures += 1
        self.pairing_locked_until = asyncio.get_running_loop().time() + PAIRING_BACKOFF_S

    def _secure(self, connection: Any) -> bool:
        return connection in self._mitm and bool(connection.is_encrypted)

    def _authenticated(self, connection: Any) -> None:
        """This connection proved it is the studio's: it is the one controller until it leaves.

        Other connections stay (anyone may still write STOP_ALL to the stop
        characteristic) until their own deadline drops them; their control writes
        are refused.
        """
        if self._connection is None:
            self._connection = connection

    def _deadline(self, connection: Any) -> None:
        if connection in self._connections and connection is not self._connection:
            self.timed_out += 1
            self._spawn(connection.disconnect())

    def _on_subscription(
        self, _bearer: Any, characteristic: Any, notify: bool, _indicate: bool
    ) -> None:
        if characteristic is self.status:
            self._subscribed = notify
            if notify:
                self.suit.notify()  # a status at once when notifications are enabled

    def _on_disconnection(self, connection: Any) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
        self._mitm.discard(connection)
        if connection is self._connection:
            self._connection = None
        if not self._connections:
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
        if not self._secure(connection) or self._connection not in (None, connection):
            # not bonded with the setup code, or another controller holds the suit
            self.refused_writes += 1
            return
        fw = self.suit.firmware
        before = fw.auth.refused_frames, fw.bad_frames, fw.last_counter
        with contextlib.suppress(ConnectionError):  # out of reach: lost, as on air
            self.suit.deliver(bytes(value))
        if (
            fw.auth.enrolled
            and len(value) > 5
            and value[5] != 0
            and (fw.auth.refused_frames, fw.bad_frames) == before[:2]
            and fw.last_counter != before[2]
        ):
            self._authenticated(connection)  # a frame verified under the suit's key

    def _on_stop(self, connection: Any, value: bytes) -> None:
        """The stop characteristic: anyone's STOP_ALL is honoured; nothing else acts."""
        self.writes += 1
        if self.suit.reachable and self.suit.firmware.receive_stop(
            bytes(value), trio.current_time()
        ):
            self.suit.notify()

    def _on_enrollment(self, connection: Any, value: bytes) -> None:
        if not self._secure(connection) or self._connection not in (None, connection):
            raise ATT_Error(ATT_INSUFFICIENT_AUTHENTICATION_ERROR)
        refusal = self.suit.firmware.auth.handle(bytes(value))
        if refusal is not None:
            raise ATT_Error(int(refusal))
        self._authenticated(connection)

    def factory_reset(self) -> None:
        """The suit's reset button: its key and every bond are forgotten."""
        self.suit.firmware.auth.factory_reset()
        self.device.keystore = MemoryKeyStore()
        for conn in list(self._connections):
            self._spawn(conn.disconnect())

    async def drop_link(self, seconds: float) -> None:
        """The radio link drops: disconnect, and stay out of reach for `seconds`."""
        self.suit.reachable = False
        for conn in list(self._connections):
            with contextlib.suppress(Exception):  # already going down: bumble's errors
                await trio_asyncio.aio_as_trio(conn.disconnect)()
        await trio_asyncio.aio_as_trio(self.device.stop_advertising)()
        await trio.sleep(seconds)
        self.suit.reachable = True
        await self._advertise()
