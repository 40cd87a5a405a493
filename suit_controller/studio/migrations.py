"""The studio database's schema, as numbered migrations (PRAGMA user_version)."""

from __future__ import annotations

MIGRATIONS: dict[int, list[str]] = {
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
SCHEMA_VERSION = max(MIGRATIONS)
