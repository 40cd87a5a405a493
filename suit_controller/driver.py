"""Drives one suit over its link: connects, backs off, sends what the protocol says, listens.

What may be sent when is the `ControllerConnection`'s to say (protocol rules in
one sans-I/O state table); the driver only moves bytes and reports events.

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
from suit_controller.link_health import LinkHealth
from suit_controller.links.base import LinkError, LinkLost, SuitLink
from suit_controller.protocol import (
    ControllerConnection,
    ControllerLate,
    Event,
    Faults,
    ProgramConfirmed,
    ProgramUnconfirmed,
    RemoteProtocolError,
    SuitClamped,
    SuitKeyMismatch,
    SuitReady,
    SuitRefused,
    SuitStoppedItself,
)

CONNECT_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 0.5
STOP_TIMEOUT_S = 0.25
#: The trainer is told the controller is behind at most this often per suit, s.
LATE_TOLD_EVERY_S = 30.0


class LinkState(StrEnum):
    """A suit's link as the trainer sees it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOST = "lost"
    CLOSED = "closed"
    #: Linked, but the suit cannot be used (another key, an old version): nothing goes out.
    #: Shown from the connection's state (`snapshot`); the driver's own state stays CONNECTED.
    REFUSED = "refused"


class SuitDriver:
    """The controller's side of one suit: connect, back off, send and receive.

    Every protocol rule (what may be sent when, frame counters, program
    confirmation) is the `ControllerConnection`'s; the driver asks it what to
    send and tells the engine what it reports, through the callbacks:
    `on_event(kind, message)` for the trainer, `on_connected` / `on_lost`
    (the client ramps up from zero afterwards) and `on_program` (the suit's
    program state changed: recompute the client's caps).
    """

    def __init__(
        self,
        link: SuitLink,
        n_channels: int,
        *,
        on_event: Callable[[str, str], None],
        on_connected: Callable[[], None],
        on_lost: Callable[[], None],
        on_program: Callable[[], None] = lambda: None,
    ) -> None:
        self.link = link
        suit_key = getattr(link, "suit_key", None)  # the suit's enrolled key, if any
        self.connection = ControllerConnection(
            n_channels,
            key=None if suit_key is None else suit_key.key,
            key_id=0 if suit_key is None else suit_key.key_id,
        )
        self.state = LinkState.CONNECTING
        self.backoff = Backoff()
        self.drops = 0
        self.reconnects = 0
        self.ever_connected = False
        self.bad_notifications = 0
        #: Frames delivered, status round trip (read with `health.figures` at snapshot time).
        self.health = LinkHealth()
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._on_program = on_program
        self._latest: bytes | None = None
        self._ready = trio.Event()
        #: The link's non-blocking write, if it has one (`SendsAtOnce`): frames then go out
        #: from the tick itself and the stop path writes STOP_ALL without a task.
        self._send_nowait: Callable[[bytes], None] | None = getattr(link, "send_nowait", None)
        #: A non-blocking write that failed: the sender task raises it (the link is lost).
        self._failure: LinkError | None = None
        self._told_key_mismatch = False
        self._late_told_at: float | None = None

    # -- called by the engine's tick ------------------------------------------------------
    def offer_levels(self, codes: bytes, now: float | None = None) -> None:
        """Hand over this tick's levels; an unsent older frame is replaced (latest wins).

        Over a link that writes at once (`sends_at_once`) they go out now, from the tick;
        otherwise the driver's sender task sends them at its next turn. `now`: the tick's time.
        """
        self._latest = codes
        if self._send_nowait is not None:
            self._send_burst_now(now)
        else:
            self._ready.set()

    @property
    def sends_at_once(self) -> bool:
        """True if the link's write is a function call that cannot block (in-process)."""
        return self._send_nowait is not None

    def set_program(self, frequency_hz: int, pulse_width_us: int) -> None:
        """The pulses this suit should apply from now on (confirmed by its status)."""
        self.connection.set_program(frequency_hz, pulse_width_us, trio.current_time())
        self._on_program()

    @property
    def ready(self) -> bool:
        """True when levels go out to this suit (linked, known, not refused, not held)."""
        return self.state is LinkState.CONNECTED and self.connection.can_send

    @property
    def frames_sent(self) -> int:
        """Frames written to the suit's link so far (stops sent on the stop path excepted)."""
        return self.health.frames

    @property
    def held(self) -> bool:
        """True while a stop holds this suit: nothing but STOP_ALL is sent to it."""
        return self.connection.held

    def release(self) -> None:
        """After an emergency stop reset: ARM before the next levels."""
        self.connection.release()

    async def send_stop_now(self) -> bool:
        """Hold the suit and send STOP_ALL at once (the stop path). True if it went out.

        Held, the driver sends the suit nothing else (no ARM, no levels), even
        after a reconnect, until `release`.
        """
        if self._send_nowait is not None:  # a function call: no task switch, no timeout
            return self.stop_at_once()
        self.connection.hold()
        if self.state is not LinkState.CONNECTED:
            return False
        frame = self.connection.stop_frame()
        if frame is None:  # a refused suit is sent nothing
            return False
        try:
            with trio.fail_after(STOP_TIMEOUT_S):
                await self.link.send(frame)
        except (LinkError, trio.TooSlowError):
            return False
        return True

    def stop_at_once(self) -> bool:
        """The stop path, synchronous: hold the suit and, over a link that writes at once
        (`sends_at_once`), write STOP_ALL now. True if it went out.

        Over another link it only holds the suit (False): `send_stop_now` sends its STOP_ALL.
        """
        self.connection.hold()
        if self.state is not LinkState.CONNECTED or self._send_nowait is None:
            return False
        frame = self.connection.stop_frame()
        if frame is None:  # a refused suit is sent nothing
            return False
        return self._write_now(frame)

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
            self._failure = None
            if self.ever_connected:
                self.reconnects += 1
            self.ever_connected = True
            self.state = LinkState.CONNECTED
            self._handle(self.connection.connected(self.link.att_payload))
            self._on_connected()
            if self.held:  # stopped while it was away: make the suit say so too
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
        self.connection.lost()
        self.health.lost()
        self._on_lost()
        delay = self.backoff.next()
        if was_connected or self.backoff.attempts == 1:
            self._on_event("link_lost", f"{self.link.address}: {why}; retrying in {delay:g} s")
        await trio.sleep(delay)

    async def _send(self, frame: bytes, now: float) -> None:
        await self.link.send(frame)
        self.health.sent(self.connection.last_counter, now)

    async def _sender(self) -> None:
        # One cancel scope for the connection whose deadline is armed around each burst of
        # sends: the same guarantee as fail_after per write, without a scope per frame.
        # Over a link that writes at once the tick sends; this task only raises a failed write.
        with trio.CancelScope() as deadline:
            while True:
                await self._ready.wait()
                self._ready = trio.Event()
                if self._failure is not None:
                    failure, self._failure = self._failure, None
                    raise failure
                deadline.deadline = trio.current_time() + SEND_TIMEOUT_S
                await self._send_burst()
                deadline.deadline = math.inf
        if deadline.cancelled_caught:
            raise LinkLost(f"{self.link.address}: a write took longer than {SEND_TIMEOUT_S} s")

    async def flush(self) -> None:
        """Send the offered frame now (pause, skip): bounded by the send timeout."""
        if self.state is not LinkState.CONNECTED:
            return
        if self._send_nowait is not None:
            await trio.lowlevel.checkpoint()
            self._send_burst_now()
            return
        try:
            with trio.fail_after(SEND_TIMEOUT_S):
                await self._send_burst()
        except (LinkError, trio.TooSlowError):
            return  # the driver's own task notices the loss

    def _burst(self, now: float | None = None) -> tuple[list[bytes], float]:
        """This turn's frames (ARM, SET_PROGRAM, levels, as the connection says), and now."""
        codes, self._latest = self._latest, None
        if now is None:
            now = trio.current_time()
        if self.held:
            return [], now
        events = self.connection.tick(now)
        if events:  # mostly none: no call for nothing, 40 times a second per suit
            self._handle(events)
        return self.connection.frames_to_send(codes, now), now

    async def _send_burst(self) -> None:
        frames, now = self._burst()
        for frame in frames:
            await self._send(frame, now)

    def _send_burst_now(self, now: float | None = None) -> None:
        """The turn over a link that writes at once; a failed write ends it (link lost)."""
        if self.state is not LinkState.CONNECTED or self._failure is not None:
            return  # the sender task is about to report the loss
        frames, now = self._burst(now)
        for frame in frames:
            if not self._write_now(frame):
                return
            self.health.sent(self.connection.last_counter, now)

    def _write_now(self, frame: bytes) -> bool:
        """Write through `send_nowait`; on failure wake the sender task to report the loss."""
        assert self._send_nowait is not None
        try:
            self._send_nowait(frame)
        except LinkError as e:
            if self._failure is None:
                self._failure = e
                self._ready.set()
            return False
        return True

    async def _receiver(self) -> None:
        while True:
            data = await self.link.receive()
            now = trio.current_time()
            try:
                events = self.connection.receive_data(data, now)
            except RemoteProtocolError as e:
                self.bad_notifications += 1
                if self.bad_notifications in (1, 10, 100, 1000):
                    self._on_event(
                        "bad_notification",
                        f"{self.link.address}: {e} ({self.bad_notifications} so far, ignored)",
                    )
                continue
            counter = self.connection.view.counter
            if counter is not None:
                self.health.status(counter, now)
            self._handle(events)

    def _handle(self, events: list[Event]) -> None:
        """Tell the engine what the connection reports."""
        where = self.link.address
        for event in events:
            if isinstance(event, SuitKeyMismatch):
                if not self._told_key_mismatch:  # the suit drops the link; told once
                    self._told_key_mismatch = True
                    self._on_event(
                        "suit_key_mismatch",
                        f"{where}: {self.connection.refusal}; nothing is sent to it. Give "
                        "the client another suit; after the class, factory reset this suit "
                        "(its button), then `suitctl suits forget ADDRESS --records-only` and "
                        "`suitctl suits enroll ADDRESS --setup-code CODE` (or the Suits page)",
                    )
            elif isinstance(event, ControllerLate):
                now = trio.current_time()
                if self._late_told_at is None or now - self._late_told_at >= LATE_TOLD_EVERY_S:
                    self._late_told_at = now
                    what = (
                        f"sent the suit nothing for {event.late_s:.1f} s, so it stopped by itself"
                        if event.sending
                        else f"read the suit's status {event.late_s:.1f} s after the suit sent it"
                    )
                    self._on_event(
                        "controller_late",
                        f"{where}: the controller {what}: this computer is falling behind (the "
                        "suit is not at fault); close other programs or pages watching the class",
                    )
            elif isinstance(event, SuitRefused):
                self._on_event("suit_refused", f"{where}: {event.reason}; nothing is sent to it")
                self._on_program()
            elif isinstance(event, SuitStoppedItself):
                self._on_event(
                    "suit_safe_state",
                    f"{where}: suit reports {event.state.name}; re-arming, "
                    "intensity ramps up from zero",
                )
                self._on_lost()
                self._on_connected()
            elif isinstance(event, ProgramUnconfirmed):
                p = event.program
                self._on_event(
                    "program_unconfirmed",
                    f"{where}: the suit has not confirmed its program ({p.frequency_hz} Hz, "
                    f"{p.pulse_width_us} µs) after {event.waited_s:.1f} s; its client is held "
                    "at zero until it does",
                )
                self._on_program()
            elif isinstance(event, SuitClamped):
                what = " and ".join(str(f.name) for f in Faults if f and f in event.faults)
                self._on_event(
                    "suit_clamped",
                    f"{where}: the suit's own limit acted ({what}): it was asked for more "
                    "than it allows",
                )
            elif isinstance(event, ProgramConfirmed | SuitReady):
                self._on_program()


__all__ = ["LinkLost", "LinkState", "SuitDriver"]
