"""A link to a suit simulated in the same process (no radio, no bytes lost unless injected)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import trio

from suit_controller.links.base import ConnectFailed, LinkLost
from suit_controller.protocol import REQUIRED_ATT_PAYLOAD
from suit_controller.protocol.enrollment import SuitKey


class InProcessDevice(Protocol):
    """The device side an in-process link talks to (`sim.SimulatedSuit` is one).

    `attach` raises ConnectionError when the suit cannot be reached;
    `deliver` raises ConnectionError when the radio link is down. The device
    calls `on_notify` for each status notification and `on_lost` when the
    link drops.
    """

    address: str

    def attach(self, on_notify: Callable[[bytes], None], on_lost: Callable[[], None]) -> None: ...

    def deliver(self, data: bytes) -> None: ...

    def detach(self) -> None: ...


class InProcessLink:
    """`SuitLink` over an `InProcessDevice`; ConnectionError becomes LinkError here."""

    def __init__(
        self,
        device: InProcessDevice,
        att_payload: int = REQUIRED_ATT_PAYLOAD,
        *,
        suit_key: SuitKey | None = None,
    ) -> None:
        self._device = device
        #: The suit's enrolled key (the driver signs every control frame with it).
        self.suit_key = suit_key
        self._att_payload = att_payload
        self._send_ch: trio.MemorySendChannel[bytes] | None = None
        self._recv_ch: trio.MemoryReceiveChannel[bytes] | None = None

    @property
    def address(self) -> str:
        return self._device.address

    @property
    def att_payload(self) -> int:
        return self._att_payload

    async def connect(self) -> None:
        await trio.lowlevel.checkpoint()
        self._drop_channels()
        send, recv = trio.open_memory_channel[bytes](math.inf)
        self._send_ch, self._recv_ch = send, recv
        try:
            self._device.attach(self._on_notify, self._on_lost)
        except ConnectionError as e:
            self._drop_channels()
            raise ConnectFailed(f"{self.address}: {e}") from e

    def _on_notify(self, data: bytes) -> None:
        if self._send_ch is not None:
            self._send_ch.send_nowait(data)

    def _on_lost(self) -> None:
        if self._send_ch is not None:
            self._send_ch.close()
            self._send_ch = None

    def _drop_channels(self) -> None:
        if self._send_ch is not None:
            self._send_ch.close()
        self._send_ch = None

    async def send(self, frame: bytes) -> None:
        # Delivery is a function call: honour cancellation without a scheduling round trip.
        await trio.lowlevel.checkpoint_if_cancelled()
        self.send_nowait(frame)

    def send_nowait(self, frame: bytes) -> None:
        """Deliver a frame now (a function call, it cannot block). Raises LinkLost."""
        if self._send_ch is None:
            raise LinkLost(f"{self.address}: link down")
        try:
            self._device.deliver(frame)
        except ConnectionError as e:
            self._on_lost()
            raise LinkLost(f"{self.address}: {e}") from e

    async def receive(self) -> bytes:
        if self._recv_ch is None:
            await trio.lowlevel.checkpoint()
            raise LinkLost(f"{self.address}: not connected")
        try:
            return await self._recv_ch.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise LinkLost(f"{self.address}: link dropped") from None

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        self._drop_channels()
        self._device.detach()
