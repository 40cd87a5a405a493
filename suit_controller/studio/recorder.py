"""Writes a class to the studio database as it runs, so a crash loses at most a second.

The class is opened beforehand (`Store.open_class`, where the check-in guard
lives). Every `WRITE_EVERY_S` of wall time (and at the end, whatever ends the
class) one transaction stores each client's per-channel totals, the events
since the last write and the time of this write. The database runs in a worker
thread so the engine's ticks never wait for the disk or the network.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import trio

from suit_controller.records import SessionEvent
from suit_controller.session import CLOSE_TIMEOUT_S, ClassSession
from suit_controller.studio.store import ChannelTotals, OpenedClass, RosterEntry, Store

__all__ = ["RosterEntry", "SessionRecorder"]

WRITE_EVERY_S = 0.5
CHECK_EVERY_S = 0.1


class SessionRecorder:
    """Records one `ClassSession` into an opened class of the studio database."""

    def __init__(self, location: str, session: ClassSession, opened: OpenedClass) -> None:
        self.location = location
        self.session = session
        self.opened = opened
        self.writes = 0
        #: How many of the class's events (its log, in order) are written: the records keep
        #: them in log order, so the n-th stored event is the one MQTT publishes as seq n.
        self._written_events = 0
        self._store: Store | None = None

    @property
    def class_id(self) -> str:
        return self.opened.id

    def _begin(self) -> None:
        self._store = Store(self.location, recover=False)

    def _snapshot(self) -> dict[str, Any]:
        t = self.session.totals
        log = self.session.events.events
        events: list[SessionEvent] = log[self._written_events :]
        self._written_events = len(log)
        return {
            "charge": t.charge_uC.copy(),
            "stim": t.stim_s.copy(),
            "max": t.max_mA.copy(),
            "contractions": t.contractions.copy(),
            "events": events,
            "class_s": self.session.class_time(),
            "targets": self.session.board.target_mA.copy(),
        }

    def _write(self, snap: dict[str, Any], ended: str | None = None) -> None:
        assert self._store is not None
        names = self.session.layout.names
        channels = [
            {
                names[j]: ChannelTotals(
                    float(snap["charge"][i, j]),
                    float(snap["stim"][i, j]),
                    float(snap["max"][i, j]),
                    int(snap["contractions"][i, j]),
                )
                for j in range(len(names))
            }
            for i in range(len(self.opened.sessions))
        ]
        calibration = None
        if ended is not None:
            targets: np.ndarray = snap["targets"]
            calibration = [
                {names[j]: float(targets[i, j]) for j in range(len(names))}
                for i in range(len(self.opened.sessions))
            ]
        self._store.record_progress(
            self.opened,
            channels,
            snap["events"],
            float(snap["class_s"]),
            ended=ended,
            calibration=calibration,
        )
        self.writes += 1

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Write every WRITE_EVERY_S, and finish the record whatever ends the class."""
        await trio.to_thread.run_sync(self._begin)
        task_status.started(self.opened.id)
        last = time.monotonic()
        try:
            while True:
                await trio.sleep(CHECK_EVERY_S)
                if time.monotonic() - last >= WRITE_EVERY_S:
                    last = time.monotonic()
                    await trio.to_thread.run_sync(self._write, self._snapshot())
        finally:
            with trio.CancelScope(shield=True):
                # Cancelled with the class (the server stopping): its "ended" event comes
                # once every suit is stopped; wait for it, as a class that ends on its own does.
                if self.session.clock.started_at is not None:
                    with trio.move_on_after(2 * CLOSE_TIMEOUT_S + 1.0):
                        await self.session.closed.wait()
                ending = self.session.ending or "interrupted"
                await trio.to_thread.run_sync(self._write, self._snapshot(), ending)
                store, self._store = self._store, None
                if store is not None:
                    store.close()
