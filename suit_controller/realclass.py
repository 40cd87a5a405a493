"""A class on real suits over Bluetooth LE (bleak's platform backend, or any given one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from suit_controller.classroom import (
    Companion,
    class_record,
    open_class_session,
    utc_now_iso,
    write_record,
)
from suit_controller.clients import ClientSpec
from suit_controller.links.adapters import AdapterPool
from suit_controller.links.ble import BleLink
from suit_controller.protocol.enrollment import SuitKey
from suit_controller.session import ClassSession
from workouts.plan import Plan


@dataclass
class RealClass:
    """Clients in real suits, one BLE address each: `open_class` over `BleLink`s.

    Needs trio-asyncio's loop (bleak is an asyncio library), opened by the caller.
    """

    plan: Plan
    clients: Sequence[ClientSpec]
    addresses: Sequence[str]
    rate_hz: float = 40.0
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Enrolled suits' keys by address (from the studio's records): frames are signed.
    keys: Mapping[str, SuitKey] = field(default_factory=dict)
    #: The adapters suits spread over (None: bleak's default adapter).
    adapters: AdapterPool | None = None
    companions: Sequence[Companion] = ()
    session: ClassSession = field(init=False)
    started_at: str = field(init=False, default="")
    ended_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        keys = {a.upper(): k for a, k in self.keys.items()}
        links = [
            BleLink(a, suit_key=keys.get(a.upper()), adapters=self.adapters, **self.backend_kwargs)
            for a in self.addresses
        ]
        self.session = ClassSession(self.plan, list(self.clients), links, rate_hz=self.rate_hz)

    async def run(self) -> str:
        """Run the class to its end; returns how it ended."""
        self.started_at = utc_now_iso()
        try:
            async with open_class_session(self.session, companions=self.companions) as session:
                await session.wait_finished()
        finally:  # a signal or Ctrl-C too: durations are measured up to here
            self.ended_at = trio.current_time()
        return self.session.ending or "interrupted"

    def record(self) -> dict[str, Any]:
        """The session record: what the engine sent each channel, and every event."""
        return class_record(self.session, started_at=self.started_at)

    def write_record(self, out_dir: Path) -> Path:
        """Write `record()` as OUT_DIR/session.json."""
        return write_record(self.record(), out_dir)
