"""Bringing a studio database to the current schema, keeping every record.

Theory of operation
-------------------
One migration path for both backends. The version lives in the table
`schema_version` (and, on SQLite, also in `PRAGMA user_version`, so that an
older suit-controller refuses a newer file instead of misreading it).

* An empty database (SQLite or PostgreSQL) gets the current schema from
  `schema.metadata` in one transaction and is stamped with its version.
* Versions 1 and 2 only ever existed as SQLite files (their version is in
  `PRAGMA user_version`); they are brought to 2 by their original statements,
  then to 3 by `_v2_to_v3`, which rebuilds the tables with ids: every client,
  class and session gets a UUID, the old `sessions`/`session_clients` become
  `classes`/`sessions`, and a class whose every suit is a simulated one
  (`SIM-01`, …: `sim run --client`) is marked simulated, so it no longer
  counts for the rest-day rule.
* Later versions append a step to `STEPS`, written once for both backends
  (4: the studio server's accounts, logins and audit trail; 5: the studio's
  identity and the enrolled suits' keys; 6: the workout library, every workout
  version by its content hash, and the hash of the version each class ran).

The whole upgrade is one transaction: a failure leaves the database as it was.
On PostgreSQL an advisory lock makes two controllers starting at once migrate
one after the other.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, text

from suit_controller.studio.schema import (
    SCHEMA_VERSION,
    V4_TABLES,
    V5_TABLES,
    V6_TABLES,
    metadata,
    schema_version,
)


class MigrationError(Exception):
    """The database cannot be brought to this version of the schema."""


#: The SQLite-only schema of versions 1 and 2, as first shipped.
LEGACY_SQLITE: dict[int, list[str]] = {
    1: [
        """CREATE TABLE trainers (
            id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE clients (
            id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, birth_date TEXT,
            notes TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL)""",
        """CREATE TABLE screenings (
            id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients(id),
            taken_at TEXT NOT NULL, taken_by TEXT NOT NULL,
            answers TEXT NOT NULL, clearances TEXT NOT NULL)""",
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY, workout TEXT NOT NULL, started_at TEXT NOT NULL,
            ended_at TEXT, status TEXT NOT NULL, pid INTEGER, host TEXT)""",
        """CREATE TABLE session_clients (
            id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
            client_id INTEGER REFERENCES clients(id), client_name TEXT NOT NULL,
            suit TEXT NOT NULL)""",
        """CREATE TABLE session_channels (
            session_client_id INTEGER NOT NULL REFERENCES session_clients(id),
            channel TEXT NOT NULL, charge_uC REAL NOT NULL, stim_s REAL NOT NULL,
            max_mA REAL NOT NULL, contractions INTEGER NOT NULL,
            PRIMARY KEY (session_client_id, channel))""",
        """CREATE TABLE session_events (
            id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
            t REAL NOT NULL, kind TEXT NOT NULL, client TEXT, message TEXT NOT NULL,
            data TEXT NOT NULL)""",
    ],
    2: [
        "ALTER TABLE sessions ADD COLUMN last_write_at TEXT",
        "ALTER TABLE sessions ADD COLUMN class_s REAL NOT NULL DEFAULT 0",
        "ALTER TABLE session_clients ADD COLUMN trainer TEXT",
        "ALTER TABLE session_clients ADD COLUMN first_session INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE session_clients ADD COLUMN abdominal_off INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE calibrations (
            session_client_id INTEGER NOT NULL REFERENCES session_clients(id),
            channel TEXT NOT NULL, mA REAL NOT NULL,
            PRIMARY KEY (session_client_id, channel))""",
        "CREATE INDEX session_clients_by_client ON session_clients(client_id)",
        "CREATE INDEX screenings_by_client ON screenings(client_id, taken_at)",
        "CREATE INDEX session_events_by_session ON session_events(session_id, id)",
    ],
}

#: A suit name `sim run` gives its simulated suits.
SIMULATED_SUIT = re.compile(r"^SIM-\d+$")


def _v2_to_v3(conn: Connection) -> None:
    """Rebuild the version-2 tables with UUIDs, classes and sessions (SQLite only)."""
    old = ["clients", "screenings", "sessions", "session_clients", "session_channels"]
    old += ["calibrations", "session_events", "trainers"]
    for name in old:
        conn.exec_driver_sql(f"ALTER TABLE {name} RENAME TO v2_{name}")
    for index in ("session_clients_by_client", "screenings_by_client", "session_events_by_session"):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
    # version 3's tables only: later versions' tables are their own steps' to add
    later = (*V4_TABLES, *V5_TABLES, *V6_TABLES)
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t not in later])
    run = conn.exec_driver_sql
    run("INSERT INTO trainers (id, name, created_at) SELECT id, name, created_at FROM v2_trainers")
    for cid, name, birth, notes, created in run(
        "SELECT id, name, birth_date, notes, created_at FROM v2_clients"
    ).all():
        run(
            "INSERT INTO clients (id, uuid, member_id, name, birth_date, notes, created_at) "
            "VALUES (?, ?, NULL, ?, ?, ?, ?)",
            (cid, str(uuid.uuid4()), name, birth, notes, created),
        )
    run(
        "INSERT INTO screenings (id, client_id, taken_at, taken_by, answers, clearances) "
        "SELECT id, client_id, taken_at, taken_by, answers, clearances FROM v2_screenings"
    )
    suits: dict[int, list[str]] = {}
    for class_id, suit in run("SELECT session_id, suit FROM v2_session_clients").all():
        suits.setdefault(int(class_id), []).append(str(suit))
    for row in run(
        "SELECT id, workout, started_at, ended_at, status, pid, host, last_write_at, class_s "
        "FROM v2_sessions"
    ).all():
        in_class = suits.get(int(row[0]), [])
        simulated = bool(in_class) and all(SIMULATED_SUIT.match(s) for s in in_class)
        run(
            "INSERT INTO classes (id, uuid, workout, started_at, ended_at, status, simulated, "
            "room, host, pid, last_write_at, updated_at, class_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
            (
                row[0],
                str(uuid.uuid4()),
                row[1],
                row[2],
                row[3],
                row[4],
                int(simulated),
                row[6],
                row[5],
                row[7],
                row[7] or row[3] or row[2],
                row[8],
            ),
        )
    for row in run(
        "SELECT id, session_id, client_id, client_name, suit, trainer, first_session, "
        "abdominal_off FROM v2_session_clients"
    ).all():
        run(
            "INSERT INTO sessions (id, uuid, class_id, client_id, client_name, suit, trainer, "
            "first_session, abdominal_off) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], str(uuid.uuid4()), *row[1:]),
        )
    run(
        'INSERT INTO session_channels (session_id, channel, "charge_uC", stim_s, "max_mA", '
        "contractions) SELECT session_client_id, channel, charge_uC, stim_s, max_mA, "
        "contractions FROM v2_session_channels"
    )
    run(
        'INSERT INTO calibrations (session_id, channel, "mA") '
        "SELECT session_client_id, channel, mA FROM v2_calibrations"
    )
    # an event names its client; it belongs to that client's session when the name is
    # unique in its class
    run(
        "INSERT INTO class_events (id, class_id, session_id, t, kind, client, message, data) "
        "SELECT e.id, e.session_id, (SELECT CASE WHEN COUNT(*) = 1 THEN MIN(s.id) END "
        "  FROM v2_session_clients s "
        "  WHERE s.session_id = e.session_id AND s.client_name = e.client), "
        "e.t, e.kind, e.client, e.message, e.data FROM v2_session_events e"
    )
    for name in reversed(old):
        run(f"DROP TABLE v2_{name}")


def _v3_to_v4(conn: Connection) -> None:
    """Add the studio server's accounts, logins and audit trail (both backends)."""
    metadata.create_all(conn, tables=list(V4_TABLES))


def _v4_to_v5(conn: Connection) -> None:
    """Suit security (issue 18): the studio's identity and the enrolled suits' keys."""
    metadata.create_all(conn, tables=list(V5_TABLES))


def _v5_to_v6(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(V6_TABLES))
    columns = {c["name"] for c in inspect(conn).get_columns("classes")}
    if "workout_hash" not in columns:  # a v2 file rebuilt by _v2_to_v3 already has it
        conn.exec_driver_sql("ALTER TABLE classes ADD COLUMN workout_hash VARCHAR(64)")


#: Steps after version 3: version -> function bringing the previous version to it.
STEPS: dict[int, Callable[[Connection], None]] = {4: _v3_to_v4, 5: _v4_to_v5, 6: _v5_to_v6}


def current_version(conn: Connection) -> int:
    """The schema version of the database behind `conn` (0 when empty)."""
    tables = set(inspect(conn).get_table_names())
    if "schema_version" in tables:
        value = conn.execute(schema_version.select()).scalar()
        return int(value or 0)
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    return 0


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(schema_version.delete())
    conn.execute(schema_version.insert().values(version=version))
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version={version}")


def migrate(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to `target` in one transaction; returns the version before.

    `target` below the current version is only for tests that build an old
    database (1 or 2, SQLite).
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # table rebuilds need the foreign keys off, outside any transaction
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                if not sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(7420001)"))
                before = current_version(conn)
                if before > SCHEMA_VERSION:
                    raise MigrationError(
                        f"the studio database is from a newer suit-controller (schema {before})"
                    )
                if before == 0 and target == SCHEMA_VERSION:
                    metadata.create_all(conn)
                    _stamp(conn, SCHEMA_VERSION)
                    return before
                for version in range(before + 1, target + 1):
                    if version in LEGACY_SQLITE:
                        if not sqlite:
                            raise MigrationError(f"schema {version} existed only for SQLite")
                        for statement in LEGACY_SQLITE[version]:
                            conn.exec_driver_sql(statement)
                        conn.exec_driver_sql(f"PRAGMA user_version={version}")
                    elif version == 3:
                        if not sqlite:
                            raise MigrationError("schema 2 existed only for SQLite")
                        _v2_to_v3(conn)
                        _stamp(conn, 3)
                    else:
                        STEPS[version](conn)
                        _stamp(conn, version)
                if sqlite:
                    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if problems:
                        raise MigrationError(f"the records have broken references: {problems[:5]}")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    return before
