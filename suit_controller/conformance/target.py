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
from typing import Protocol

import trio

from suit_controller.links.base import LinkLost, SuitLink
from suit_controller.links.inprocess import InProcessDevice, InProcessLink
from suit_controller.protocol import REQUIRED_ATT_PAYLOAD

#: The ATT payload a run uses when the target can choose (BLE's MTU 247, as bleak asks).
LARGE_ATT_PAYLOAD = 244


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
    ) -> None:
        self._address = address
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
