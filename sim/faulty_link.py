"""A suit link that fails on demand: the public seam for injecting errors into the engine.

Wrap any `SuitLink` in a `FaultyLink` and arm it: the next `send` (or
`receive`) raises the exception you gave, once. A `LinkError` is a link
failure the engine must ride out (S9: that suit reconnects, the others go
on); any other exception stands for a bug in the engine's task for that
suit, which ends the class through its shielded stop. Tests, the fault soak
and a studio's room-isolation checks use this instead of replacing the
engine's private methods.
"""

from __future__ import annotations

import trio

from suit_controller.links.base import SuitLink
from suit_controller.ticks import TickSource


class FaultyLink:
    """A `SuitLink` that passes everything through until armed."""

    def __init__(self, link: SuitLink) -> None:
        self.link = link
        self._send_error: BaseException | None = None
        self._receive_error: BaseException | None = None
        #: How many armed errors have been raised.
        self.raised = 0
        self._hang: trio.Event | None = None
        #: When the first write blocked since `hang_sends` (None before one did).
        self.hung_since: float | None = None

    def hang_sends(self) -> None:
        """Make every `send` block (a write that never completes) until `release_sends`."""
        self._hang = trio.Event()
        self.hung_since = None

    def release_sends(self) -> None:
        """Writes complete again (the blocked ones go through)."""
        if self._hang is not None:
            self._hang.set()
        self._hang = None

    def fail_next_send(self, error: BaseException) -> None:
        """Make the next `send` raise `error` (once) instead of sending."""
        self._send_error = error

    def fail_next_receive(self, error: BaseException) -> None:
        """Make the next `receive` raise `error` (once) after its notification arrives."""
        self._receive_error = error

    @property
    def address(self) -> str:
        return self.link.address

    @property
    def suit_key(self) -> object:
        """The wrapped link's suit key (the driver signs with it)."""
        return getattr(self.link, "suit_key", None)

    @property
    def att_payload(self) -> int:
        return self.link.att_payload

    async def connect(self) -> None:
        await self.link.connect()

    async def send(self, frame: bytes) -> None:
        error, self._send_error = self._send_error, None
        if error is not None:
            self.raised += 1
            raise error
        if self._hang is not None:
            if self.hung_since is None:
                self.hung_since = trio.current_time()
            await self._hang.wait()
        await self.link.send(frame)

    async def receive(self) -> bytes:
        data = await self.link.receive()
        error, self._receive_error = self._receive_error, None
        if error is not None:
            self.raised += 1
            raise error
        return data

    async def aclose(self) -> None:
        await self.link.aclose()


class FaultyTickSource(TickSource):
    """A tick source that fails on demand: the seam for an error inside the engine's tick task.

    Tick observers cannot stand for an engine bug any more (their errors are
    isolated: an observer's bug is not the engine's); an error raised here is
    raised in the tick task itself, which ends the class through its shielded stop.
    """

    def __init__(self, precise: bool | None = None) -> None:
        super().__init__(precise)
        self._error: BaseException | None = None
        #: How many armed errors have been raised.
        self.raised = 0

    def fail_next_tick(self, error: BaseException) -> None:
        """Make the engine's next tick raise `error` (once)."""
        self._error = error

    async def sleep_until(self, deadline: float) -> None:
        await super().sleep_until(deadline)
        error, self._error = self._error, None
        if error is not None:
            self.raised += 1
            raise error
