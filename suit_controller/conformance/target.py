"""The suit under test: the few things the conformance checks need from a suit.

Write control bytes, receive status notifications, (re)connect at an ATT
payload, and read what the radio shows (the advertisement, the GATT
characteristics and their properties). Time is Trio's clock
(`trio.current_time()`), so a run over a simulated suit goes in virtual time;
the suit's own clock comes in its status frames.

Two targets: `LinkTarget` over any `SuitLink` factory (`BleLink` for a real
suit, or bleak on bumble for the simulated one) and `InProcessTarget` (a
`SimulatedSuit` in this process, no radio: the GATT checks are skipped).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import trio

from suit_controller.links.base import LinkLost, SuitLink
from suit_controller.links.inprocess import InProcessDevice, InProcessLink
from suit_controller.protocol import REQUIRED_ATT_PAYLOAD

#: The ATT payload a run uses when the target can choose (BLE's MTU 247, as bleak asks).
LARGE_ATT_PAYLOAD = 244


class NotOnThisTarget(Exception):
    """The target cannot do this (no radio in-process; no second central on one adapter):
    the check that needs it is skipped, with this message."""


class Central(Protocol):
    """Another central in radio range (a phone in the gym, or a second controller)."""

    @property
    def connected(self) -> bool:
        """Whether the suit still holds this connection."""
        ...

    async def write(self, uuid: str, data: bytes) -> None:
        """Write without response to a characteristic of the suit service; never raises
        for a write the suit ignores. Raises `LinkLost` when the link is gone."""
        ...


#: Opens another central's connection to the suit: bonded (with the setup code) or not.
CentralFactory = Callable[[bool], AbstractAsyncContextManager[Central]]
#: Writes one enrollment message on a connection of its own: the ATT error code, 0 if accepted.
EnrollmentWriter = Callable[[bytes], Awaitable[int]]


class SuitUnderTest(Protocol):
    """A suit as the conformance checks see it."""

    @property
    def address(self) -> str: ...

    @property
    def att_payload(self) -> int:
        """The ATT payload of the current connection (MTU - 3)."""
        ...

    @property
    def att_payload_choices(self) -> tuple[int, ...]:
        """ATT payloads `connect` can ask for; () if the Bluetooth stack decides."""
        ...

    async def connect(self, att_payload: int | None = None) -> None:
        """Connect and enable status notifications. Raises `LinkError`."""
        ...

    async def disconnect(self) -> None:
        """Drop the connection; never raises."""
        ...

    async def write(self, frame: bytes) -> None:
        """Write one control frame (write without response). Raises `LinkLost`."""
        ...

    async def notification(self) -> bytes:
        """The next status notification. Raises `LinkLost`."""
        ...

    async def advertised(self) -> bool | None:
        """Whether the suit advertises the EMS suit service (None: no radio to tell)."""
        ...

    async def characteristics(self) -> dict[str, frozenset[str]] | None:
        """The EMS service's characteristics (UUID -> properties, bleak's names).

        {} when the service is absent; None when there is no GATT to read.
        """
        ...

    def second_central(self, bonded: bool) -> AbstractAsyncContextManager[Central]:
        """Another central's connection (raises `NotOnThisTarget` if there is none)."""
        ...

    async def write_stop(self, frame: bytes) -> None:
        """Write to the stop characteristic from a connection that is not bonded and holds
        no key (raises `NotOnThisTarget` if the target cannot)."""
        ...

    async def enroll(self, message: bytes) -> int:
        """Write an enrollment message (own connection, bonded): 0 or the ATT error code."""
        ...


class LinkTarget:
    """A suit behind a `SuitLink` made anew for each connection.

    `make_link(att_payload)` builds the link (asking for that ATT payload if
    not None); `advertised` and `characteristics` read the radio.
    """

    def __init__(
        self,
        address: str,
        make_link: Callable[[int | None], SuitLink],
        *,
        att_payload_choices: tuple[int, ...] = (),
        advertised: Callable[[], Awaitable[bool]] | None = None,
        characteristics: Callable[[SuitLink], dict[str, frozenset[str]]] | None = None,
        second_central: CentralFactory | None = None,
        enroll: EnrollmentWriter | None = None,
    ) -> None:
        self._address = address
        self._second_central = second_central
        self._enroll = enroll
        self._make_link = make_link
        self._choices = att_payload_choices
        self._advertised = advertised
        self._characteristics = characteristics
        self._link: SuitLink | None = None

    @property
    def address(self) -> str:
        return self._address

    @property
    def att_payload(self) -> int:
        return self._link.att_payload if self._link is not None else 0

    @property
    def att_payload_choices(self) -> tuple[int, ...]:
        return self._choices

    async def connect(self, att_payload: int | None = None) -> None:
        await self.disconnect()
        link = self._make_link(att_payload)
        try:
            await link.connect()
        except BaseException:
            with trio.CancelScope(shield=True):
                await link.aclose()
            raise
        self._link = link

    async def disconnect(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.aclose()

    def _need(self) -> SuitLink:
        if self._link is None:
            raise LinkLost(f"{self._address}: not connected")
        return self._link

    async def write(self, frame: bytes) -> None:
        await self._need().send(frame)

    async def notification(self) -> bytes:
        return await self._need().receive()

    async def advertised(self) -> bool | None:
        return None if self._advertised is None else await self._advertised()

    async def characteristics(self) -> dict[str, frozenset[str]] | None:
        if self._characteristics is None:
            return None
        return self._characteristics(self._need())

    def second_central(self, bonded: bool) -> AbstractAsyncContextManager[Central]:
        if self._second_central is None:
            raise NotOnThisTarget(
                "needs a second central in range (run it with --simulated, or a test rig "
                "with a second adapter)"
            )
        return self._second_central(bonded)

    async def write_stop(self, frame: bytes) -> None:
        from suit_controller.protocol.enrollment import STOP_UUID

        async with self.second_central(False) as phone:
            await phone.write(STOP_UUID, frame)
            await trio.sleep(0.05)  # the write is on the air before the phone leaves

    async def enroll(self, message: bytes) -> int:
        if self._enroll is None:
            raise NotOnThisTarget("cannot write the enrollment characteristic on this target")
        return await self._enroll(message)


class InProcessTarget(LinkTarget):
    """A simulated suit in this process (no radio: advertisement and GATT are not checked)."""

    def __init__(self, device: InProcessDevice) -> None:
        self._device = device

        def make(att_payload: int | None) -> SuitLink:
            payload = LARGE_ATT_PAYLOAD if att_payload is None else att_payload
            if hasattr(device, "att_payload"):
                device.att_payload = payload  # what the suit splits its status to
            return InProcessLink(device, att_payload=payload)

        super().__init__(
            device.address, make, att_payload_choices=(REQUIRED_ATT_PAYLOAD, LARGE_ATT_PAYLOAD)
        )

    def _firmware(self) -> Any:
        fw = getattr(self._device, "firmware", None)
        if fw is None or not hasattr(fw, "receive_stop"):
            raise NotOnThisTarget("this in-process suit has no stop characteristic")
        return fw

    async def write_stop(self, frame: bytes) -> None:
        """No radio: the bytes go to the firmware's stop characteristic handler."""
        fw = self._firmware()
        await trio.lowlevel.checkpoint()
        if fw.receive_stop(bytes(frame), trio.current_time()):
            notify = getattr(self._device, "notify", None)
            if notify is not None:
                notify()

    async def enroll(self, message: bytes) -> int:
        """No radio: the message goes to the firmware's enrollment handler."""
        fw = self._firmware()
        await trio.lowlevel.checkpoint()
        refusal = fw.auth.handle(bytes(message))
        return 0 if refusal is None else int(refusal)
