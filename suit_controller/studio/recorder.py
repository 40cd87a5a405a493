"""Writes a class to the studio database as it runs, so a crash loses at most a second.

Every `WRITE_EVERY_S` of wall time (and at the end, whatever ends the class)
one transaction stores each client's per-channel totals, the events since the
last write and the time of this write. SQLite runs in a worker thread so the
engine's ticks never wait for the disk.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trio

from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession
from suit_controller.studio.store import connect, iso, new_session_row, utcnow

WRITE_EVERY_S = 0.5
CHECK_EVERY_S = 0.1


@dataclass(frozen=True)
class RosterEntry:
    """One client of a class as the records keep them."""

    client_id: int | None
    name: str
    suit: str
    trainer: str | None
    first_session: bool
    abdominal_off: bool


class SessionRecorder:
    """Records one `ClassSession` into the studio database."""

    def __init__(self, db_path: Path, session: ClassSession, roster: list[RosterEntry]) -> None:
        self.db_path = db_path
        self.session = session
        self.roster = roster
        self.session_id: int | None = None
        self.writes = 0
        self._client_rows: list[int] = []
        self._pending: list[SessionEvent] = []
        self._conn: sqlite3.Connection | None = None
        session.events.subscribe(self._pending.append)

    def _begin(self) -> None:
        conn = self._conn = connect(self.db_path, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        self.session_id = new_session_row(conn, self.session.plan.workout.name)
        for r in self.roster:
            if r.trainer:
                conn.execute(
                    "INSERT OR IGNORE INTO trainers (name, created_at) VALUES (?, ?)",
                    (r.trainer, iso(utcnow())),
                )
            cur = conn.execute(
                "INSERT INTO session_clients (session_id, client_id, client_name, suit, trainer, "
                "first_session, abdominal_off) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.session_id,
                    r.client_id,
                    r.name,
                    r.suit,
                    r.trainer,
                    int(r.first_session),
                    int(r.abdominal_off),
                ),
            )
            self._client_rows.append(int(cur.lastrowid or 0))
        conn.execute("COMMIT")

    def _snapshot(self) -> dict[str, Any]:
        t = self.session.totals
        events, self._pending[:] = list(self._pending), []
        return {
            "charge": t.charge_uC.copy(),
            "stim": t.stim_s.copy(),
            "max": t.max_mA.copy(),
            "contractions": t.contractions.copy(),
            "events": events,
            "class_s": self.session.class_time(),
            "targets": self.session.board.target_mA.copy(),
        }

    def _write(self, snap: dict[str, Any], status: str | None = None) -> None:
        conn = self._conn
        assert conn is not None
        names = self.session.layout.names
        now = iso(utcnow())
        conn.execute("BEGIN IMMEDIATE")
        try:
            for i, row in enumerate(self._client_rows):
                conn.executemany(
                    "INSERT INTO session_channels (session_client_id, channel, charge_uC, stim_s, "
                    "max_mA, contractions) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (session_client_id, channel) DO UPDATE SET "
                    "charge_uC = excluded.charge_uC, stim_s = excluded.stim_s, "
                    "max_mA = excluded.max_mA, contractions = excluded.contractions",
                    [
                        (
                            row,
                            names[j],
                            float(snap["charge"][i, j]),
                            float(snap["stim"][i, j]),
                            float(snap["max"][i, j]),
                            int(snap["contractions"][i, j]),
                        )
                        for j in range(len(names))
                    ],
                )
            conn.executemany(
                "INSERT INTO session_events (session_id, t, kind, client, message, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        self.session_id,
                        e.t,
                        e.kind,
                        e.client,
                        e.message,
                        json.dumps(e.data, default=str),
                    )
                    for e in snap["events"]
                ],
            )
            conn.execute(
                "UPDATE sessions SET last_write_at = ?, class_s = ? WHERE id = ?",
                (now, snap["class_s"], self.session_id),
            )
            if status is not None:
                targets: np.ndarray = snap["targets"]
                for i, row in enumerate(self._client_rows):
                    conn.executemany(
                        "INSERT OR REPLACE INTO calibrations (session_client_id, channel, mA) "
                        "VALUES (?, ?, ?)",
                        [(row, names[j], float(targets[i, j])) for j in range(len(names))],
                    )
                conn.execute(
                    "UPDATE sessions SET status = ?, ended_at = ? WHERE id = ?",
                    (status, now, self.session_id),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.writes += 1

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Begin the session row, write every WRITE_EVERY_S, and finish it whatever happens."""
        await trio.to_thread.run_sync(self._begin)
        assert self.session_id is not None
        task_status.started(self.session_id)
        last = time.monotonic()
        try:
            while True:
                await trio.sleep(CHECK_EVERY_S)
                if time.monotonic() - last >= WRITE_EVERY_S:
                    last = time.monotonic()
                    await trio.to_thread.run_sync(self._write, self._snapshot())
        finally:
            with trio.CancelScope(shield=True):
                status = self.session.ending or "interrupted"
                await trio.to_thread.run_sync(self._write, self._snapshot(), status)
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
