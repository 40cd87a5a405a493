"""The studio's memory: clients, screenings, trainers and every session, in SQLite.

One file, WAL journal (readers never block the class's writer), schema
migrations by `PRAGMA user_version`. Timestamps are ISO 8601 in UTC.
A session is written as the class runs (`SessionRecorder`); a session left
`running` by a process that no longer exists is marked `interrupted` the
next time the store is opened.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suit_controller.studio.migrations import MIGRATIONS, SCHEMA_VERSION
from suit_controller.studio.screening import ClientHistory, Screening


class StoreError(Exception):
    """A user-facing problem with the studio's records (unknown client, duplicate, …)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def default_db_path() -> Path:
    """`$SUITCTL_DB`, else `$XDG_DATA_HOME/suit-controller/studio.db`."""
    if env := os.environ.get("SUITCTL_DB"):
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "suit-controller" / "studio.db"


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection with the studio's settings (WAL, foreign keys, autocommit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=10.0, isolation_level=None, check_same_thread=check_same_thread
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to `target`; returns the version before."""
    before = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if before > SCHEMA_VERSION:
        raise StoreError(f"the studio database is from a newer suit-controller (schema {before})")
    for version in range(before + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return before


def _pid_alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class ClientRecord:
    """A client as the studio knows them."""

    id: int
    name: str
    birth_date: str | None
    notes: str
    created_at: str


class Store:
    """The studio database."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        migrate(self.conn)
        self.recovered = self.recover_interrupted()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- clients and trainers -----------------------------------------------------------
    def add_client(self, name: str, birth_date: str | None = None, notes: str = "") -> ClientRecord:
        name = name.strip()
        if not name:
            raise StoreError("a client needs a name")
        if birth_date is not None:
            try:
                dt.date.fromisoformat(birth_date)
            except ValueError:
                raise StoreError(f"birth date '{birth_date}' is not YYYY-MM-DD") from None
        try:
            with self.transaction() as c:
                c.execute(
                    "INSERT INTO clients (name, birth_date, notes, created_at) VALUES (?, ?, ?, ?)",
                    (name, birth_date, notes, iso(utcnow())),
                )
        except sqlite3.IntegrityError:
            raise StoreError(f"there is already a client named '{name}'") from None
        return self.client(name)

    def client(self, name: str) -> ClientRecord:
        row = self.conn.execute("SELECT * FROM clients WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in self.conn.execute("SELECT name FROM clients ORDER BY name")]
            hint = f" (clients: {', '.join(known)})" if known else " (no clients yet: clients add)"
            raise StoreError(f"no client named '{name}'{hint}")
        return ClientRecord(
            row["id"], row["name"], row["birth_date"], row["notes"], row["created_at"]
        )

    def clients(self) -> list[ClientRecord]:
        rows = self.conn.execute("SELECT * FROM clients ORDER BY name").fetchall()
        return [
            ClientRecord(r["id"], r["name"], r["birth_date"], r["notes"], r["created_at"])
            for r in rows
        ]

    def ensure_trainer(self, name: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO trainers (name, created_at) VALUES (?, ?)", (name, iso(utcnow()))
        )

    # -- screenings ------------------------------------------------------------------
    def add_screening(
        self,
        client: str,
        taken_by: str,
        yes: set[str],
        clearances: set[str],
        all_keys: Sequence[str],
        taken_at: dt.datetime | None = None,
    ) -> None:
        rec = self.client(client)
        answers = {k: k in yes for k in all_keys}
        self.ensure_trainer(taken_by)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO screenings (client_id, taken_at, taken_by, answers, clearances) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    rec.id,
                    iso(taken_at or utcnow()),
                    taken_by,
                    json.dumps(answers),
                    json.dumps(sorted(clearances)),
                ),
            )

    def latest_screening(self, client: str) -> Screening | None:
        rec = self.client(client)
        row = self.conn.execute(
            "SELECT * FROM screenings WHERE client_id = ? ORDER BY taken_at DESC, id DESC LIMIT 1",
            (rec.id,),
        ).fetchone()
        if row is None:
            return None
        answers = json.loads(row["answers"])
        return Screening(
            parse_iso(row["taken_at"]),
            row["taken_by"],
            frozenset(k for k, v in answers.items() if v),
            frozenset(json.loads(row["clearances"])),
        )

    # -- history ----------------------------------------------------------------------
    def history(self, client: str) -> ClientHistory:
        """What the S5 rules need: screening, last and first session, count (stimulated ones)."""
        rec = self.client(client)
        row = self.conn.execute(
            "SELECT COUNT(*) AS n, MAX(s.started_at) AS last, MIN(s.started_at) AS first "
            "FROM session_clients sc JOIN sessions s ON s.id = sc.session_id "
            "WHERE sc.client_id = ? AND s.status != 'running'",
            (rec.id,),
        ).fetchone()
        return ClientHistory(
            rec.name,
            self.latest_screening(client),
            parse_iso(row["last"]) if row["last"] else None,
            parse_iso(row["first"]) if row["first"] else None,
            int(row["n"]),
        )

    def sessions_of(self, client: str) -> list[dict[str, Any]]:
        """Every session of a client, newest first, with per-channel records."""
        rec = self.client(client)
        rows = self.conn.execute(
            "SELECT s.*, sc.id AS scid, sc.suit, sc.trainer, sc.first_session, sc.abdominal_off "
            "FROM session_clients sc JOIN sessions s ON s.id = sc.session_id "
            "WHERE sc.client_id = ? ORDER BY s.started_at DESC, s.id DESC",
            (rec.id,),
        ).fetchall()
        out = []
        for r in rows:
            channels = {
                ch["channel"]: {
                    "charge_uC": ch["charge_uC"],
                    "stim_s": ch["stim_s"],
                    "max_mA": ch["max_mA"],
                    "contractions": ch["contractions"],
                }
                for ch in self.conn.execute(
                    "SELECT * FROM session_channels WHERE session_client_id = ? ORDER BY channel",
                    (r["scid"],),
                )
            }
            calib = {
                c["channel"]: c["mA"]
                for c in self.conn.execute(
                    "SELECT channel, mA FROM calibrations WHERE session_client_id = ?", (r["scid"],)
                )
            }
            out.append(
                {
                    "session": r["id"],
                    "workout": r["workout"],
                    "started_at": r["started_at"],
                    "ended_at": r["ended_at"],
                    "status": r["status"],
                    "class_s": r["class_s"],
                    "suit": r["suit"],
                    "trainer": r["trainer"],
                    "first_session": bool(r["first_session"]),
                    "abdominal_off": bool(r["abdominal_off"]),
                    "channels": channels,
                    "calibration_mA": calib,
                }
            )
        return out

    def calibration(self, client: str) -> dict[str, float]:
        """The set intensities per channel at the end of the client's last session that has them."""
        for s in self.sessions_of(client):
            if s["calibration_mA"]:
                return dict(s["calibration_mA"])
        return {}

    def session_events(self, session_id: int) -> list[dict[str, Any]]:
        return [
            {
                "t": r["t"],
                "kind": r["kind"],
                "client": r["client"],
                "message": r["message"],
                "data": json.loads(r["data"]),
            }
            for r in self.conn.execute(
                "SELECT * FROM session_events WHERE session_id = ? ORDER BY id", (session_id,)
            )
        ]

    def session(self, session_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"no session {session_id}")
        return dict(row)

    # -- recovery ---------------------------------------------------------------------
    def recover_interrupted(self) -> list[int]:
        """Mark sessions whose process is gone as interrupted; returns their ids."""
        rows = self.conn.execute(
            "SELECT id, pid, host, last_write_at, started_at FROM sessions WHERE status = 'running'"
        ).fetchall()
        done = []
        for r in rows:
            if _pid_alive(r["pid"], r["host"]):
                continue
            with self.transaction() as c:
                c.execute(
                    "UPDATE sessions SET status = 'interrupted', ended_at = ? WHERE id = ?",
                    (r["last_write_at"] or r["started_at"], r["id"]),
                )
            done.append(int(r["id"]))
        return done

    # -- export -------------------------------------------------------------------------
    def export_rows(self) -> list[dict[str, Any]]:
        """One row per client and session (clients without sessions get one empty row)."""
        rows: list[dict[str, Any]] = []
        for c in self.clients():
            screening = self.latest_screening(c.name)
            base: dict[str, Any] = {
                "client": c.name,
                "birth_date": c.birth_date or "",
                "screened_at": iso(screening.taken_at) if screening else "",
                "screened_by": screening.taken_by if screening else "",
                "contraindications": ";".join(sorted(screening.yes)) if screening else "",
                "clearances": ";".join(sorted(screening.clearances)) if screening else "",
            }
            sessions = self.sessions_of(c.name)
            if not sessions:
                rows.append(
                    {
                        **base,
                        "session": "",
                        "workout": "",
                        "started_at": "",
                        "status": "",
                        "minutes": "",
                        "trainer": "",
                        "max_mA": "",
                        "charge_mC": "",
                    }
                )
            for s in sessions:
                chans = s["channels"].values()
                rows.append(
                    {
                        **base,
                        "session": s["session"],
                        "workout": s["workout"],
                        "started_at": s["started_at"],
                        "status": s["status"],
                        "minutes": round(s["class_s"] / 60, 1),
                        "trainer": s["trainer"] or "",
                        "max_mA": max((ch["max_mA"] for ch in chans), default=0.0),
                        "charge_mC": round(sum(ch["charge_uC"] for ch in chans) / 1000, 1),
                    }
                )
        return rows

    def export_json(self) -> str:
        data = []
        for c in self.clients():
            s = self.latest_screening(c.name)
            data.append(
                {
                    "client": c.name,
                    "birth_date": c.birth_date,
                    "notes": c.notes,
                    "screening": None
                    if s is None
                    else {
                        "taken_at": iso(s.taken_at),
                        "taken_by": s.taken_by,
                        "contraindications": sorted(s.yes),
                        "clearances": sorted(s.clearances),
                    },
                    "sessions": self.sessions_of(c.name),
                }
            )
        return json.dumps({"schema": SCHEMA_VERSION, "clients": data}, indent=1)

    def export_csv(self) -> str:
        rows = self.export_rows()
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return buf.getvalue()


def new_session_row(conn: sqlite3.Connection, workout: str) -> int:
    now = iso(utcnow())
    cur = conn.execute(
        "INSERT INTO sessions (workout, started_at, status, pid, host, last_write_at) "
        "VALUES (?, ?, 'running', ?, ?, ?)",
        (workout, now, os.getpid(), socket.gethostname(), now),
    )
    return int(cur.lastrowid or 0)
