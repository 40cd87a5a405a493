"""Simulated suits for the studio server (`suitctl serve --simulated N`), found as a scan finds.

The suits run for as long as the server does; each class connects in-process
links to the ones it was given, and a later class may use them again. Each
class also gets simulated bodies in its suits (`sim.body`): they feel the
current and ask for less when it is too much, as clients do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from sim.body import make_population
from sim.body.observer import BodyObserver
from sim.suit import SimulatedSuit
from suit_controller.links import InProcessLink, SuitLink
from suit_controller.session import ClassSession
from suit_controller.studio.rooms import SuitSeen


class SimulatedRack:
    """N simulated suits, `SIM-01` … , each with its own battery and signal strength."""

    simulated = True

    def __init__(self, n: int, n_channels: int = 12) -> None:
        self.suits = [SimulatedSuit(f"SIM-{i + 1:02d}", n_channels, seed=i) for i in range(n)]
        self._by_address = {s.address: s for s in self.suits}
        self._classes = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for suit in self.suits:
                await nursery.start(suit.run)
            task_status.started()

    async def scan(self) -> list[SuitSeen]:
        await trio.lowlevel.checkpoint()
        return [
            SuitSeen(
                s.address,
                s.firmware.battery_pct,
                -48 - 4 * i,
                state=s.firmware.state.name.lower(),
                output_mA=float(s.firmware.applied_mA.max(initial=0.0)),
            )
            for i, s in enumerate(self.suits)
            if s.reachable
        ]

    def suit(self, address: str) -> SimulatedSuit:
        return self._by_address[address]

    def link(self, address: str) -> SuitLink:
        return InProcessLink(self._by_address[address])

    def prepare(self, session: ClassSession, addresses: Sequence[str]) -> None:
        """Put a simulated body in each suit of the class (a new draw of bodies each class)."""
        self._classes += 1

        def request(i: int, message: str, data: dict[str, Any]) -> None:
            session.emit("client_request", message, i, **data)

        session.tick_observers.append(
            BodyObserver(
                [self._by_address[a].firmware for a in addresses],
                make_population(len(addresses), session.layout, seed=self._classes),
                session.layout,
                [c.name for c in session.clients],
                [c.first_session for c in session.clients],
                lambda: session.pulse,
                request,
            )
        )
