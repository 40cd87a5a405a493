"""Drives one suit over its link: connects, arms, sends the newest frame, listens.

One `SuitDriver` task per suit. Link errors stay inside it (S9): the driver
reports the loss to the session, which zeroes that client's set intensity,
and reconnects with backoff; the other suits go on undisturbed. Any other
exception is a bug and propagates, ending the class through the session's
shielded stop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

import trio

from suit_controller.backoff import Backoff
from suit_controller.links.base import LinkError, LinkLost, SuitLink
from suit_controller.protocol import ControllerEndpoint, RemoteProtocolError, SuitState, seq_newer

CONNECT_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 0.5
STOP_TIMEOUT_S = 0.25


class LinkState(StrEnum):
    """A suit's link as the trainer sees it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOST = "lost"
    CLOSED = "closed"


class SuitDriver:
    """The controller's side of one suit."""

    def __init__(
        self,
        link: SuitLink,
        n_channels: int,
        *,
        on_event: Callable[[str, str], None],
        on_connected: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.link = link
        self.endpoint = ControllerEndpoint(n_channels)
        self.state = LinkState.CONNECTING
        self.backoff = Backoff()
        self.drops = 0
        self.reconnects = 0
        self.ever_connected = False
        self.bad_notifications = 0
        self.frames_sent = 0
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._latest: bytes | None = None
        self._program: tuple[float, float] | None = None
        self._program_sent: tuple[float, float] | None = None
        self._need_arm = True
        self._held = False
        self._arm_seq: int | None = None
        self._ready = trio.Event()

    @property
    def view(self) -> object:
        return self.endpoint.view

    # -- called by the engine's tick ------------------------------------------------------
    def offer_levels(self, codes: bytes) -> None:
        """Hand over this tick's levels; an unsent older frame is replaced (latest wins)."""
        self._latest = codes
        self._ready.set()

    def set_program(self, frequency_hz: float, pulse_width_us: float) -> None:
        self._program = (frequency_hz, pulse_width_us)

    @property
    def held(self) -> bool:
        """True while a stop holds this suit: nothing but STOP_ALL is sent to it."""
        return self._held

    def release(self) -> None:
        """After an emergency stop reset: ARM before the next levels."""
        self._held = False
        self._need_arm = True

    async def send_stop_now(self) -> bool:
        """Hold the suit and send STOP_ALL at once (the stop path). True if it went out.

        Held, the driver sends the suit nothing else (no ARM, no levels), even
        after a reconnect, until `release`.
        """
        self._held = True
        self._need_arm = True
        if self.state is not LinkState.CONNECTED:
            return False
        try:
            with trio.fail_after(STOP_TIMEOUT_S):
                await self.link.send(self.endpoint.stop_all())
        except (LinkError, trio.TooSlowError):
            return False
        return True

    # -- the task -----------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, drive and reconnect until cancelled."""
        task_status.started()
        while True:
            self.state = LinkState.CONNECTING
            try:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    await self.link.connect()
            except (LinkError, trio.TooSlowError) as e:
                await self._lost(f"cannot connect: {e or 'timed out'}")
                continue
            self.backoff.reset()
            if self.ever_connected:
                self.reconnects += 1
            self.ever_connected = True
            self._need_arm = True
            self._program_sent = None
            self.state = LinkState.CONNECTED
            self._on_connected()
            if self._held:  # stopped while it was away: make the suit say so too
                await self.send_stop_now()
            lost: BaseException | None = None
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender)
                    nursery.start_soon(self._receiver)
            except* (LinkError, trio.TooSlowError) as group:
                lost = group.exceptions[0]
            await self._lost(f"link lost: {lost or 'closed'}")

    async def _lost(self, why: str) -> None:
        was_connected = self.state is LinkState.CONNECTED
        if was_connected:
            self.drops += 1
        self.state = LinkState.LOST
        self._on_lost()
        delay = self.backoff.next()
        if was_connected or self.backoff.attempts == 1:
            self._on_event("link_lost", f"{self.link.address}: {why}; retrying in {delay:g} s")
        await trio.sleep(delay)

    async def _send(self, frame: bytes) -> None:
        await self.link.send(frame)
        self.frames_sent += 1

    async def _sender(self) -> None:
        # One cancel scope for the connection whose deadline is armed around each burst of
        # sends: the same guarantee as fail_after per write, without a scope per frame.
        with trio.CancelScope() as deadline:
            while True:
                await self._ready.wait()
                self._ready = trio.Event()
                deadline.deadline = trio.current_time() + SEND_TIMEOUT_S
                await self._send_burst()
                deadline.deadline = math.inf
        if deadline.cancelled_caught:
            raise LinkLost(f"{self.link.address}: a write took longer than {SEND_TIMEOUT_S} s")

    async def flush(self) -> None:
        """Send the offered frame now (pause, skip): bounded by the send timeout."""
        if self.state is not LinkState.CONNECTED:
            return
        try:
            with trio.fail_after(SEND_TIMEOUT_S):
                await self._send_burst()
        except (LinkError, trio.TooSlowError):
            return  # the driver's own task notices the loss

    async def _send_burst(self) -> None:
        if self._held:
            self._latest = None
            return
        if self._need_arm:
            self._need_arm = False
            frame = self.endpoint.arm()
            self._arm_seq = int.from_bytes(frame[1:3], "little")
            await self._send(frame)
        if self._program is not None and self._program != self._program_sent:
            self._program_sent = self._program
            await self._send(self.endpoint.program(None, *self._program))
        codes, self._latest = self._latest, None
        if codes is not None:
            await self._send(self.endpoint.levels(codes))

    async def _receiver(self) -> None:
        while True:
            data = await self.link.receive()
            try:
                report = self.endpoint.receive(data)
            except RemoteProtocolError as e:
                self.bad_notifications += 1
                if self.bad_notifications in (1, 10, 100, 1000):
                    self._on_event(
                        "bad_notification",
                        f"{self.link.address}: {e} ({self.bad_notifications} so far, ignored)",
                    )
                continue
            fresh = self._arm_seq is None or not seq_newer(self._arm_seq, report.seq)
            if (
                fresh
                and not self._need_arm
                and report.state in (SuitState.WATCHDOG, SuitState.IDLE)
            ):
                self._on_event(
                    "suit_safe_state",
                    f"{self.link.address}: suit reports {report.state.name}; re-arming, "
                    "intensity ramps up from zero",
                )
                self._need_arm = True
                self._on_lost()
                self._on_connected()


__all__ = ["LinkLost", "LinkState", "SuitDriver"]
