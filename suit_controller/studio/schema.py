"""The studio database's schema (version 5), defined once for SQLite and PostgreSQL.

Identity: every client, class and session has a UUID (text, 36 characters) that
never changes and is what other systems keep; a client may also carry the gym's
own member id (unique when given). Names are for people, not identity: two
clients may share one. Integer keys are internal to the database and never
leave the store.

A *class* is one run of a workout in one room; a *session* is one client's part
in a class. Timestamps are ISO 8601 text in UTC with milliseconds
(`2026-11-24T10:00:00.000+00:00`), so they sort and compare as text on both
backends.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

#: The schema version this code writes (versions 1 and 2 were SQLite only).
SCHEMA_VERSION = 6

metadata = MetaData()

UUID = String(36)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

trainers = Table(
    "trainers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("created_at", Text, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", UUID, nullable=False, unique=True),
    Column("member_id", Text, unique=True),
    Column("name", Text, nullable=False),
    Column("birth_date", Text),
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_at", Text, nullable=False),
)

screenings = Table(
    "screenings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("taken_at", Text, nullable=False),
    Column("taken_by", Text, nullable=False),
    Column("answers", Text, nullable=False),
    Column("clearances", Text, nullable=False),
    Index("ix_screenings_client", "client_id", "taken_at"),
)

classes = Table(
    "classes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", UUID, nullable=False, unique=True),
    Column("workout", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("ended_at", Text),
    #: running, finished, stopped, estopped, interrupted, … (the engine's ending)
    Column("status", Text, nullable=False),
    Column("simulated", Boolean, nullable=False, server_default="0"),
    Column("room", Text),
    Column("host", Text),
    Column("pid", Integer),
    #: the recorder's last write while the class ran (a crash loses at most what followed)
    Column("last_write_at", Text),
    #: any change to the class or its sessions: what `export --since` looks at
    Column("updated_at", Text),
    Column("class_s", Float, nullable=False, server_default="0"),
    #: the exact version of the workout the class ran: SHA-256 of its YAML text (version 5)
    Column("workout_hash", String(64)),
    Index("ix_classes_updated", "updated_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", UUID, nullable=False, unique=True),
    Column("class_id", Integer, ForeignKey("classes.id"), nullable=False),
    Column("client_id", Integer, ForeignKey("clients.id")),
    Column("client_name", Text, nullable=False),
    Column("suit", Text, nullable=False),
    Column("trainer", Text),
    Column("first_session", Boolean, nullable=False, server_default="0"),
    Column("abdominal_off", Boolean, nullable=False, server_default="0"),
    Index("ix_sessions_client", "client_id"),
    Index("ix_sessions_class", "class_id"),
)

session_channels = Table(
    "session_channels",
    metadata,
    Column("session_id", Integer, ForeignKey("sessions.id"), primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("charge_uC", Float, nullable=False),
    Column("stim_s", Float, nullable=False),
    Column("max_mA", Float, nullable=False),
    Column("contractions", Integer, nullable=False),
)

calibrations = Table(
    "calibrations",
    metadata,
    Column("session_id", Integer, ForeignKey("sessions.id"), primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("mA", Float, nullable=False),
)

class_events = Table(
    "class_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("class_id", Integer, ForeignKey("classes.id"), nullable=False),
    #: the client's session the event is about, when it is about one client
    Column("session_id", Integer, ForeignKey("sessions.id")),
    Column("t", Float, nullable=False),
    Column("kind", Text, nullable=False),
    Column("client", Text),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_class_events_class", "class_id", "id"),
)


# -- version 4: the studio server's accounts and its audit trail ------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", UUID, nullable=False, unique=True),
    Column("name", Text, nullable=False, unique=True),
    #: "manager" (may add accounts and tokens) or "trainer"
    Column("role", Text, nullable=False),
    #: `scrypt$n$r$p$salt$hash` (hex), see `accounts.hash_password`
    Column("password_hash", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)

#: A login (browser session) or a read-only API token: only its SHA-256 is kept.
logins = Table(
    "logins",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    #: "browser", "api_token" (read-only) or "link" (a one-time login link)
    Column("kind", Text, nullable=False),
    #: the CSRF token a browser login must echo in X-CSRF-Token on every change
    Column("csrf", Text),
    Column("label", Text, nullable=False, server_default=""),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text),
    Index("ix_logins_user", "user_id"),
)

#: Who did what, when: every command to a class and every change to a client's record.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("who", Text, nullable=False),
    Column("action", Text, nullable=False),
    #: what it was about: a client's id, a class's id, an account's name
    Column("subject", Text, nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index("ix_audit_at", "at"),
    Index("ix_audit_subject", "subject", "at"),
)

#: The tables version 4 added (its migration creates exactly these).
V4_TABLES = (users, logins, audit_log)


# -- version 5: suit security (issue 18) ---------------------------------------------------
#: The studio's own identity, told to every suit it enrolls (one row).
studio_identity = Table(
    "studio_identity",
    metadata,
    Column("studio_id", Text, primary_key=True),  # 16 random bytes, hex
    Column("created_at", Text, nullable=False),
)

#: Each enrolled suit's key (32 random bytes, hex): whoever reads this table can drive the
#: suits, so the database is protected like the controller itself (docs/security.md).
suit_keys = Table(
    "suit_keys",
    metadata,
    Column("address", Text, primary_key=True),  # the suit's BLE address, upper case
    Column("key_id", Integer, nullable=False),
    Column("key", Text, nullable=False),
    Column("enrolled_at", Text, nullable=False),
    Column("rotated_at", Text),
)

#: The tables version 5 added (its migration creates exactly these).
V5_TABLES = (studio_identity, suit_keys)


# -- version 6: the studio's own workouts, every version kept by its content hash ----------

#: A workout of the studio's library (built-ins are not stored here, only their versions).
library_workouts = Table(
    "library_workouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", UUID, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    #: the SHA-256 of the current version's YAML (a row of `workout_versions`)
    Column("current_hash", String(64), nullable=False),
    Column("archived", Boolean, nullable=False, server_default="0"),
    #: the workout this one was duplicated from (a uuid or `builtin:NAME`), if any
    Column("copied_from", Text),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

#: Every version of every workout a class ran or a trainer saved, by the SHA-256 of its text.
workout_versions = Table(
    "workout_versions",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("yaml", Text, nullable=False),
    Column("title", Text, nullable=False),
    #: the library workout it is a version of (None for a built-in's version)
    Column("workout_id", Integer, ForeignKey("library_workouts.id")),
    #: `builtin:NAME` for a built-in's version
    Column("builtin", Text),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Index("ix_workout_versions_workout", "workout_id", "created_at"),
)

#: The tables version 6 added (its migration creates these and adds `classes.workout_hash`).
V6_TABLES = (library_workouts, workout_versions)
