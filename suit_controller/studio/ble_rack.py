"""Real suits for the studio server: found by a Bluetooth LE scan, driven over bleak.

Needs trio-asyncio's loop (bleak is an asyncio library), opened by the caller
(`suitctl serve` does). A scan takes `SCAN_S`; its result is kept for
`FRESH_S` so that pages asking for the suits do not each wait for the radio.
A scan that fails (no adapter, Bluetooth off) finds nothing and says why in
`problem`; it never stops the studio.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import trio

from suit_controller.links.base import ConnectFailed, SuitLink
from suit_controller.links.ble import BleLink, FoundSuit, scan_suits
from suit_controller.session import ClassSession
from suit_controller.studio.rooms import SuitSeen

log = logging.getLogger("suit_controller.studio")

SCAN_S = 3.0
FRESH_S = 10.0


class BleRack:
    """The suits in Bluetooth reach. `backend_kwargs` select a bleak backend (tests: bumble)."""

    simulated = False

    def __init__(
        self,
        *,
        scanner_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.scanner_kwargs = scanner_kwargs or {}
        self.client_kwargs = client_kwargs or {}
        self.problem: str | None = None
        self._found: list[FoundSuit] = []
        self._scanned_at: float | None = None
        self._lock = trio.Lock()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def scan(self) -> list[SuitSeen]:
        async with self._lock:
            now = trio.current_time()
            if self._scanned_at is None or now - self._scanned_at > FRESH_S:
                try:
                    self._found = await scan_suits(SCAN_S, **self.scanner_kwargs)
                    self.problem = None
                except ConnectFailed as e:
                    self._found, self.problem = [], f"{e} (is Bluetooth on?)"
                    log.warning("suit scan failed: %s", e)
                self._scanned_at = trio.current_time()
        return [SuitSeen(f.address, f.battery_pct, f.rssi) for f in self._found]

    def link(self, address: str) -> SuitLink:
        link = BleLink(address, **self.client_kwargs)
        # the signal the last scan measured (bleak gives RSSI only at scan): its link health
        link.rssi_dbm = next((f.rssi for f in self._found if f.address == address), None)
        return link

    def prepare(self, session: ClassSession, addresses: Sequence[str]) -> None:
        """Real suits on real people: nothing to add."""
