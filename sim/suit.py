"""A simulated suit: the firmware behind a simulated radio link, driven by Trio time.

It implements the in-process link's device side, and injects the faults a
real class sees: link drops, latency, jitter and loss, loose electrodes, a
low battery. The firmware is the Python one (`sim.firmware.SuitFirmware`, or
a deliberately broken variant from `sim.broken_firmware`) or the portable C
core (`sim.c_firmware.CSuitFirmware`): the suit decides when to notify (at
once on attach and on a state or program change, then every 200 ms), the
firmware decides everything else.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

import trio

from channels.limits import WATCHDOG_S
from sim.c_firmware import CSuitFirmware
from sim.firmware import SuitFirmware
from suit_controller.protocol import REQUIRED_ATT_PAYLOAD, STATUS_HEADER_LEN

#: How often the suit sends its status, s.
STATUS_INTERVAL_S = 0.2
#: Either firmware a simulated suit runs on.
AnyFirmware = SuitFirmware | CSuitFirmware


class SimulatedSuit:
    """One simulated suit. Start `run` in a nursery before connecting a link to it.

    `firmware` replaces the default Python firmware (then `n_channels`,
    `watchdog_s` and `ignores_programs` are the firmware's own).
    """

    def __init__(
        self,
        address: str,
        n_channels: int = 12,
        *,
        watchdog_s: float = WATCHDOG_S,
        att_payload: int = REQUIRED_ATT_PAYLOAD,
        ignores_programs: bool = False,
        seed: int = 0,
        firmware: AnyFirmware | None = None,
        setup_code: str | None = None,
    ) -> None:
        self.address = address
        #: The six digits printed on the suit: its pairing passkey (issue 18).
        self.setup_code = setup_code or f"{random.Random(f'setup:{address}').randrange(10**6):06d}"
        self.firmware: AnyFirmware = (
            firmware
            if firmware is not None
            else SuitFirmware(n_channels, watchdog_s=watchdog_s, ignores_programs=ignores_programs)
        )
        self.att_payload = att_payload
        self.reachable = True
        self.latency_s = 0.0
        self.jitter_s = 0.0
        self.loss = 0.0
        self.frames_received = 0
        self._rng = random.Random(seed)
        self._on_notify: Callable[[bytes], None] | None = None
        self._on_lost: Callable[[], None] | None = None
        self._pending: list[tuple[float, int, bytes]] = []
        self._order = 0
        self._wake = trio.Event()
        self._planned_wake = float("inf")
        self._notify_soon = False
        self.on_change: Callable[[SimulatedSuit], None] | None = None

    # -- InProcessDevice ----------------------------------------------------------------
    def attach(self, on_notify: Callable[[bytes], None], on_lost: Callable[[], None]) -> None:
        if not self.reachable:
            raise ConnectionError("suit out of reach")
        self._on_notify, self._on_lost = on_notify, on_lost
        self.notify()  # a status at once when notifications are enabled

    def detach(self) -> None:
        self._on_notify = self._on_lost = None
        self.firmware.disconnected()

    @property
    def connected(self) -> bool:
        return self._on_notify is not None

    def deliver(self, data: bytes) -> None:
        if not self.reachable or self._on_notify is None:
            raise ConnectionError("link down")
        if self.loss and self._rng.random() < self.loss:
            return
        delay = self.latency_s + (self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
        now = trio.current_time()
        if delay <= 0:
            self._receive(data, now)
            return
        self._order += 1
        heapq.heappush(self._pending, (now + delay, self._order, data))
        self._poke(now + delay)

    def _receive(self, data: bytes, now: float) -> None:
        self.frames_received += 1
        before = self.firmware.state, self.firmware.program
        self.firmware.receive(data, now)
        deadline = self.firmware.watchdog_deadline
        if deadline is not None:
            self._poke(deadline)
        if (self.firmware.state, self.firmware.program) != before:
            self._notify_soon = True  # the radio sends it after the frame is handled
            self._poke(now)
        if self.on_change is not None:
            self.on_change(self)

    def _poke(self, when: float) -> None:
        if when < self._planned_wake:
            self._wake.set()

    # -- faults ---------------------------------------------------------------------------
    def drop_link(self) -> None:
        """The radio link drops now; the suit is out of reach until `restore_link`."""
        self.reachable = False
        lost, self._on_notify, self._on_lost = self._on_lost, None, None
        self.firmware.disconnected()
        if lost is not None:
            lost()

    def restore_link(self) -> None:
        self.reachable = True

    def detach_electrode(self, channel: int) -> None:
        self.firmware.detach(channel, trio.current_time())
        self.notify()

    def attach_electrode(self, channel: int) -> None:
        self.firmware.attach(channel)
        self.notify()

    def set_battery(self, pct: int) -> None:
        self.firmware.set_battery(pct)
        self.notify()

    # -- the suit's own loop ---------------------------------------------------------------
    def notify(self) -> None:
        """Send a status report now (if a link is attached that can carry one channel's frame)."""
        if self.att_payload < STATUS_HEADER_LEN + 2:
            return  # BLE's default payload before the MTU exchange: no status fits
        if self._on_notify is not None and self.reachable:
            for frame in self.firmware.status_frames(self.att_payload, trio.current_time()):
                self._on_notify(frame)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver delayed frames, run the watchdog, send status every STATUS_INTERVAL_S."""
        next_status = trio.current_time() + STATUS_INTERVAL_S
        task_status.started()
        while True:
            now = trio.current_time()
            while self._pending and self._pending[0][0] <= now:
                due, _, data = heapq.heappop(self._pending)
                self._receive(data, due)
            if self.firmware.check_watchdog(now):
                self.notify()
                if self.on_change is not None:
                    self.on_change(self)
            if self._notify_soon:
                self._notify_soon = False
                self.notify()
            if now >= next_status:
                self.notify()
                next_status += STATUS_INTERVAL_S
                if next_status <= now:
                    next_status = now + STATUS_INTERVAL_S
            wake = next_status
            deadline = self.firmware.watchdog_deadline
            if deadline is not None:
                wake = min(wake, deadline)
            if self._pending:
                wake = min(wake, self._pending[0][0])
            self._planned_wake = wake
            self._wake = trio.Event()
            with trio.move_on_at(wake):
                await self._wake.wait()
