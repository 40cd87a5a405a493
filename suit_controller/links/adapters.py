"""Several Bluetooth adapters for one class: which adapter a suit connects through.

One adapter holds a limited number of connections and shares its air time
between them (docs/radio.md), so a class of 8–20 suits may need two or three.
Each `BleLink` asks its `AdapterPool` for an adapter whenever it connects:
the least-loaded adapter that is alive, has room, and did not just fail a
connection. A suit whose adapter drops (a dongle pulled out) loses its link,
and its driver's reconnect lands on another adapter: the class rebalances
itself through ordinary reconnects. Live links are never moved (moving one
would cut the client's stimulation for nothing).

On real hardware the adapter is chosen by name only with BlueZ (Linux:
bleak's `bluez={"adapter": "hci1"}`); macOS and Windows give an application
one system adapter, so `--adapter` is refused there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: After a failed connection through an adapter, other adapters are preferred for this long, s.
FAILED_COOLDOWN_S = 2.0


class AdapterError(ValueError):
    """The adapters asked for cannot be used here (a user's mistake: a clear message)."""


def _bluez_adapter_present(name: str) -> bool:
    return Path("/sys/class/bluetooth", name).exists()


@dataclass
class Adapter:
    """One adapter: its name, the bleak keyword arguments that select it, its health."""

    name: str
    client_kwargs: Mapping[str, Any]
    #: Is the adapter there (a USB dongle can be pulled out)? Asked before each connection.
    alive: Callable[[], bool] = lambda: True
    #: Connections it holds at most (None: unknown, the controller says when it is full).
    capacity: int | None = None
    #: Suit addresses connected through it now.
    suits: set[str] = field(default_factory=set)
    failed_at: float = -1e18
    failures: int = 0
    #: Connections made through it so far.
    connections_made: int = 0

    def has_room(self) -> bool:
        return self.capacity is None or len(self.suits) < self.capacity


class AdapterPool:
    """The class's adapters; `pick` chooses one for each connection attempt."""

    def __init__(self, adapters: list[Adapter]) -> None:
        if not adapters:
            raise AdapterError("no adapter given")
        names = [a.name for a in adapters]
        if len(set(names)) != len(names):
            raise AdapterError(f"an adapter is given twice: {', '.join(names)}")
        self.adapters = adapters
        #: Moves between adapters after a drop: (suit address, from, to).
        self.moves: list[tuple[str, str, str]] = []
        self._last: dict[str, str] = {}

    @classmethod
    def bluez(cls, names: list[str]) -> AdapterPool:
        """Real adapters by BlueZ name (hci0, hci1, …). Raises AdapterError off Linux."""
        if not sys.platform.startswith("linux"):
            raise AdapterError(
                "--adapter chooses adapters by name only with BlueZ (Linux); on "
                f"{sys.platform} the system's one adapter is used: leave --adapter out"
            )
        for name in names:
            if not name.startswith("hci") or not name[3:].isdigit():
                raise AdapterError(f"--adapter {name!r}: a BlueZ adapter is named hci0, hci1, …")
        return cls(
            [
                Adapter(n, {"bluez": {"adapter": n}}, alive=lambda n=n: _bluez_adapter_present(n))  # type: ignore[misc]
                for n in names
            ]
        )

    def pick(self, address: str, now: float) -> Adapter:
        """The adapter for this suit's next connection attempt (counted as its load until
        `failed` or `released`).

        Alive adapters with room first, then ones that have not just failed, then
        the fewest suits; ties go to the adapter the suit last used, then to the
        order given. With none alive, the first (its connection fails clearly).
        """
        last = self._last.get(address)

        def rank(item: tuple[int, Adapter]) -> tuple[bool, bool, bool, int, bool, int]:
            i, a = item
            return (
                not a.alive(),
                not a.has_room(),
                now - a.failed_at < FAILED_COOLDOWN_S,
                len(a.suits),
                a.name != last,
                i,
            )

        chosen = min(enumerate(self.adapters), key=rank)[1]
        # held for the suit while it connects, so suits connecting together spread out
        for a in self.adapters:
            a.suits.discard(address)
        chosen.suits.add(address)
        return chosen

    def connected(self, address: str, adapter: Adapter) -> None:
        """The suit is connected through `adapter`."""
        for a in self.adapters:
            a.suits.discard(address)
        adapter.suits.add(address)
        adapter.failures = 0
        adapter.connections_made += 1
        last = self._last.get(address)
        if last is not None and last != adapter.name:
            self.moves.append((address, last, adapter.name))
        self._last[address] = adapter.name

    def failed(self, address: str, adapter: Adapter, now: float) -> None:
        """The suit's connection through `adapter` failed."""
        adapter.suits.discard(address)
        adapter.failed_at = now
        adapter.failures += 1

    def released(self, address: str) -> None:
        """The suit's link is gone (dropped or closed)."""
        for a in self.adapters:
            a.suits.discard(address)

    def spread(self) -> dict[str, int]:
        """Suits connected through each adapter, by name."""
        return {a.name: len(a.suits) for a in self.adapters}
