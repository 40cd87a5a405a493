"""One interface to a suit, whatever carries the bytes (BLE, in-process simulation).

Backends translate their own exceptions into `LinkError` at their boundary
(as httpcore's `map_exceptions` does), so the engine handles one hierarchy.
"""

from __future__ import annotations

from typing import Protocol


class LinkError(Exception):
    """The link to a suit failed; the engine reconnects with backoff."""


class ConnectFailed(LinkError):
    """A connection attempt did not succeed."""


class LinkLost(LinkError):
    """An established link dropped."""


class SuitLink(Protocol):
    """A connection to one suit: control frames out, status notifications in.

    Only one task calls `send` at a time for frames; `send` may also be called
    by the emergency stop concurrently. `receive` returns notifications in
    order and raises `LinkLost` when the link drops.
    """

    @property
    def address(self) -> str: ...

    @property
    def att_payload(self) -> int:
        """Largest write or notification payload the link carries (negotiated MTU - 3)."""
        ...

    async def connect(self) -> None:
        """Connect (or reconnect) and subscribe to status. Raises ConnectFailed."""
        ...

    async def send(self, frame: bytes) -> None:
        """Write a control frame without response. Raises LinkLost."""
        ...

    async def receive(self) -> bytes:
        """The next status notification. Raises LinkLost."""
        ...

    async def aclose(self) -> None:
        """Disconnect; never raises."""
        ...


class SendsAtOnce(Protocol):
    """A link whose write is a function call that cannot block (the in-process link).

    The driver writes through `send_nowait` from the tick itself (no task switch per frame)
    and the stop path stops such suits in one pass before any other; a write that cannot
    block needs no send timeout. `send_nowait` raises LinkLost like `send`.
    """

    def send_nowait(self, frame: bytes) -> None: ...
