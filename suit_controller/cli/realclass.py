"""A class on real suits over Bluetooth LE (bleak's platform backend, or any given one)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from suit_controller.clients import ClientSpec
from suit_controller.links.ble import BleLink
from suit_controller.records import callable_name
from suit_controller.session import CLOSE_TIMEOUT_S, ClassSession
from workouts.plan import Plan


@dataclass
class RealClass:
    """Clients in real suits, one BLE address each."""

    plan: Plan
    clients: Sequence[ClientSpec]
    addresses: Sequence[str]
    rate_hz: float = 40.0
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    companions: Sequence[Callable[..., Awaitable[Any]]] = ()
    session: ClassSession = field(init=False)
    started_at: str = field(init=False, default="")
    ended_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        links = [BleLink(a, **self.backend_kwargs) for a in self.addresses]
        self.session = ClassSession(self.plan, list(self.clients), links, rate_hz=self.rate_hz)

    async def run(self) -> str:
        self.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        async with trio.open_nursery() as nursery:
            await nursery.start(self.session.run)
            for companion in self.companions:
                await nursery.start(self.session.companion, callable_name(companion), companion)
            await self.session._finished.wait()
            # every suit stopped and the end announced before the companions go
            with trio.move_on_after(2 * CLOSE_TIMEOUT_S + 1.0):
                await self.session.closed.wait()
            nursery.cancel_scope.cancel()
        self.ended_at = trio.current_time()
        return self.session.ending or "interrupted"

    def record(self) -> dict[str, Any]:
        """The session record: what the engine sent each channel, and every event."""
        s = self.session
        t = s.totals
        names = self.plan.layout.names
        return {
            "mode": "class",
            "workout": self.plan.workout.name,
            "layout": self.plan.layout.name,
            "started_at": self.started_at,
            "ended": s.ending or "interrupted",
            "class_s": round(s.class_time(self.ended_at) if self.ended_at else 0.0, 3),
            "plan_s": round(s.plan_time(self.ended_at) if self.ended_at else 0.0, 3),
            "rate_hz": self.rate_hz,
            "ticks": s.ticks,
            "clients": [
                {
                    "name": c.name,
                    "suit": d.link.address,
                    "link_drops": d.drops,
                    "reconnects": d.reconnects,
                    "channels": {
                        ch: {
                            "charge_uC": round(float(t.charge_uC[i, j]), 3),
                            "stim_s": round(float(t.stim_s[i, j]), 4),
                            "max_mA": float(t.max_mA[i, j]),
                            "contractions": int(t.contractions[i, j]),
                        }
                        for j, ch in enumerate(names)
                    },
                }
                for i, (c, d) in enumerate(zip(s.clients, s.drivers, strict=True))
            ],
            "events": [e.as_dict() for e in s.events.events],
        }

    def write_record(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "session.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.record(), indent=1), encoding="utf-8")
        tmp.replace(path)
        return path
