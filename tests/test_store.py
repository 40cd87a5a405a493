"""The studio's records, on both backends: SQLite (embedded) and a real PostgreSQL.

Every test that takes `db` runs twice: against a SQLite file and against a
database of its own on one PostgreSQL server started for the test session
(tests/postgres_server.py). The legacy migrations (v1, v2) existed only as
SQLite files and are tested there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trio
import trio.testing
from click.testing import CliRunner
from sqlalchemy import inspect, select, update

from channels import DEFAULT_LAYOUT
from sim.simclass import SimulatedClass
from suit_controller.cli import suitctl
from suit_controller.cli.runner import check_in_or_exit
from suit_controller.records import SessionEvent
from suit_controller.studio.checkin import CheckIn, ClassRefused, check_in
from suit_controller.studio.export import (
    CHANNEL_FIELDS,
    HEALTH_COLUMNS,
    SESSION_COLUMNS,
    export_csv,
    export_document,
    export_json,
)
from suit_controller.studio.migrations import LEGACY_SQLITE, current_version
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.schema import SCHEMA_VERSION, classes, schema_version
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.store import (
    ChannelTotals,
    CheckInRefused,
    OpenedClass,
    RosterEntry,
    Store,
    StoreError,
    iso,
    open_engine,
    parse_iso,
    utcnow,
)

from .postgres_server import Postgres, why_unavailable
from .simclass_helpers import SHORT, make_class

ROOT = Path(__file__).resolve().parent.parent
KEYS = [c.key for c in CONTRAINDICATIONS]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL server for the whole test session."""
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh studio database lives: a file, or a new database on the server."""
    if request.param == "sqlite":
        return str(tmp_path / "studio.db")
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()


def screened_store(db: str, *names: str) -> Store:
    store = Store(db)
    for n in names:
        store.add_client(n)
        store.add_screening(n, "Tom", set(), set(), KEYS)
    return store


def roster_of(store: Store, *names: str, suit: str = "S1") -> list[RosterEntry]:
    return [
        RosterEntry(store.client(n).id, n, f"{suit}-{i}", "Tom", False, False)
        for i, n in enumerate(names)
    ]


def move_classes_back(store: Store, days: float) -> None:
    """As if every class so far had started `days` ago."""
    with store.engine.begin() as c:
        c.execute(update(classes).values(started_at=iso(utcnow() - dt.timedelta(days=days))))


# -- schema and migrations --------------------------------------------------------------
TABLES = {
    "clients",
    "screenings",
    "trainers",
    "classes",
    "sessions",
    "session_channels",
    "calibrations",
    "class_events",
    "schema_version",
}


def test_an_empty_database_gets_the_current_schema(db: str) -> None:
    store = Store(db)
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    with store.engine.connect() as c:
        assert current_version(c) == SCHEMA_VERSION
        if store.backend == "sqlite":
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION
    store.close()
    Store(db).close()  # opening again changes nothing


def test_a_newer_schema_is_refused(db: str) -> None:
    store = Store(db)
    with store.engine.begin() as c:
        c.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer suit-controller"):
        Store(db)


def legacy_file(path: Path, version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for v in range(1, version + 1):
        for statement in LEGACY_SQLITE[v]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={v}")
    return conn


def schema_shape(location: str) -> dict[str, list[str]]:
    engine = open_engine(location)
    inspector = inspect(engine)
    shape = {
        t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()
    }
    shape |= {
        f"index {t}": sorted(i["name"] or "" for i in inspector.get_indexes(t))
        for t in inspector.get_table_names()
    }
    engine.dispose()
    return shape


def test_migrates_a_version_1_file_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = legacy_file(path, 1)
    conn.execute("INSERT INTO clients (name, created_at) VALUES ('Ana', ?)", (iso(utcnow()),))
    conn.execute(
        "INSERT INTO sessions (workout, started_at, ended_at, status) "
        "VALUES ('Old class', '2026-01-01T10:00:00+00:00', '2026-01-01T10:30:00+00:00', "
        "'finished')"
    )
    conn.execute(
        "INSERT INTO session_clients (session_id, client_id, client_name, suit) "
        "VALUES (1, 1, 'Ana', 'S1')"
    )
    conn.close()
    store = Store(path)
    [s] = store.sessions_of("Ana")
    assert s["workout"] == "Old class" and s["trainer"] is None and s["first_session"] is False
    assert s["simulated"] is False and uuid.UUID(s["session_id"]) and uuid.UUID(s["class_id"])
    # it counts for the rest-day rule; with no channel records it cannot end the first-session cap
    history = store.history("Ana")
    assert history.last_session_at == parse_iso("2026-01-01T10:00:00+00:00")
    assert history.sessions == 0
    Store(tmp_path / "fresh.db").close()
    assert schema_shape(str(path)) == schema_shape(str(tmp_path / "fresh.db"))


def test_migrates_a_version_2_file_with_ids_and_simulated_classes(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = legacy_file(path, 2)
    now = iso(utcnow())
    conn.executescript(
        f"""
        INSERT INTO trainers (name, created_at) VALUES ('Tom', '{now}');
        INSERT INTO clients (name, birth_date, notes, created_at)
            VALUES ('Ana', '1990-02-03', 'knee', '{now}'), ('Ben', NULL, '', '{now}');
        INSERT INTO screenings (client_id, taken_at, taken_by, answers, clearances)
            VALUES (1, '{now}', 'Tom', '{{"diabetes": true}}', '["diabetes"]');
        INSERT INTO sessions (workout, started_at, ended_at, status, last_write_at, class_s)
            VALUES ('Real', '2026-11-01T10:00:00.000+00:00', '2026-11-01T10:30:00.000+00:00',
                    'finished', '2026-11-01T10:30:00.000+00:00', 1800.0),
                   ('Simulated', '2026-11-20T10:00:00.000+00:00', NULL, 'interrupted',
                    '2026-11-20T10:05:00.000+00:00', 300.0);
        INSERT INTO session_clients (session_id, client_id, client_name, suit, trainer,
                                     first_session, abdominal_off)
            VALUES (1, 1, 'Ana', 'AA:BB:CC:DD:EE:01', 'Tom', 1, 1),
                   (1, 2, 'Ben', 'AA:BB:CC:DD:EE:02', 'Tom', 1, 0),
                   (2, 1, 'Ana', 'SIM-01', 'Tom', 0, 0);
        INSERT INTO session_channels VALUES (1, 'quads', 69436.50000000205, 300.5, 30.0, 40);
        INSERT INTO calibrations VALUES (1, 'quads', 27.0);
        INSERT INTO session_events (session_id, t, kind, client, message, data)
            VALUES (1, 0.0, 'started', NULL, 'class started', '{{}}'),
                   (1, 5.0, 'link_lost', 'Ana', 'lost', '{{"after_s": 1.5}}');
        """
    )
    conn.close()
    store = Store(path)
    ana, ben = store.client("Ana"), store.client("Ben")
    assert ana.id != ben.id and ana.birth_date == "1990-02-03" and ana.notes == "knee"
    assert store.latest_screening(ana.id).clearances == {"diabetes"}  # type: ignore[union-attr]
    simulated, real = store.sessions_of(ana.id)  # newest first
    assert simulated["simulated"] is True and real["simulated"] is False
    assert real["first_session"] is True and real["abdominal_off"] is True
    assert real["channels"]["quads"]["calibration_mA"] == 27.0
    assert real["ended_at"] == "2026-11-01T10:30:00.000+00:00" and real["class_s"] == 1800.0
    # the simulated class (every suit SIM-…) no longer counts for the rest-day rule
    history = store.history(ana.id)
    assert history.sessions == 1 and history.last_session_at == parse_iso(real["started_at"])
    events = store.class_events(real["class_id"])
    assert [e["session_id"] for e in events] == [None, real["session_id"]]
    assert events[1]["data"] == {"after_s": 1.5}
    assert len({s["session_id"] for s in store.session_records()}) == 3
    Store(tmp_path / "fresh.db").close()
    assert schema_shape(str(path)) == schema_shape(str(tmp_path / "fresh.db"))


def test_a_migration_that_fails_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = legacy_file(path, 2)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("INSERT INTO sessions (workout, started_at, status) VALUES ('x', 'y', 'finished')")
    conn.execute(
        "INSERT INTO session_clients (session_id, client_id, client_name, suit) "
        "VALUES (1, 99, 'Nobody', 'S1')"  # a client that does not exist
    )
    conn.close()
    with pytest.raises(StoreError, match="broken references"):
        Store(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT client_name FROM session_clients").fetchall() == [("Nobody",)]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "classes" not in tables and "v2_sessions" not in tables
    conn.close()


# -- identity ---------------------------------------------------------------------------
def test_clients_have_ids_of_their_own_and_may_share_a_name(db: str) -> None:
    store = Store(db)
    a = store.add_client("Ana", "1990-02-03", member_id="M-100")
    b = store.add_client("Ana")
    assert a.id != b.id and uuid.UUID(a.id).version == 4 and b.member_id is None
    assert store.client("M-100") == a and store.client(b.id) == b and store.client(b.id[:8]) == b
    with pytest.raises(StoreError, match="2 clients are named 'Ana': give a client id or member"):
        store.client("Ana")
    with pytest.raises(StoreError, match="member id 'M-100' already belongs to Ana"):
        store.add_client("Ben", member_id="M-100")
    with pytest.raises(StoreError, match="not YYYY-MM-DD"):
        store.add_client("Ben", "03.02.1990")
    with pytest.raises(StoreError, match=r"no client named 'Zoe' \(clients: Ana, Ana\)"):
        store.client("Zoe")
    store.add_screening(a.id, "Tom", set(), set(), KEYS)
    assert store.history(a.id).screening is not None and store.history(b.id).screening is None
    # a class's sessions and the class itself have ids; session ids are never shared
    store.add_screening(b.id, "Tom", set(), set(), KEYS)
    roster = [
        RosterEntry(a.id, "Ana", "S1", "Tom", True, False),
        RosterEntry(b.id, "Ana", "S2", "Tom", True, False),
    ]
    opened = store.open_class("Short", roster, simulated=False)
    assert len({opened.id, *opened.sessions}) == 3
    assert [s["session_id"] for s in store.sessions_of(a.id)] == [opened.sessions[0]]
    assert [s["session_id"] for s in store.sessions_of(b.id)] == [opened.sessions[1]]


# -- check-in ---------------------------------------------------------------------------
def test_check_in_applies_every_rule_and_starts_from_calibration(db: str) -> None:
    store = screened_store(db, "Ana", "Ben", "Cem")
    store.add_client("Dan")
    with pytest.raises(ClassRefused) as info:
        check_in(
            store,
            [CheckIn(n, f"S{i}") for i, n in enumerate(["Ana", "Ben", "Cem", "Dan", "Zoe"])],
            ["Tom"],
            DEFAULT_LAYOUT,
            default_intensity_mA=30,
        )
    text = " | ".join(info.value.reasons)
    assert "5 clients need 3 supervising trainers" in text
    assert "Dan has no contraindication screening" in text
    assert "no client named 'Zoe'" in text
    specs, roster, _guidance = check_in(
        store,
        [CheckIn("Ana", "S1", ate_recently=True)],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=30,
    )
    assert specs[0].first_session and specs[0].abdominal_off and specs[0].cap_mA == 50
    assert roster[0].trainer == "Tom" and roster[0].client_id == store.client("Ana").id
    caps = specs[0].caps(DEFAULT_LAYOUT)
    assert caps[DEFAULT_LAYOUT.index("abs")] == 0 and caps.max() == 50
    with pytest.raises(ClassRefused, match="listed twice"):
        check_in(
            store,
            [CheckIn("Ana", "S1"), CheckIn(store.client("Ana").id, "S2")],
            ["Tom"],
            DEFAULT_LAYOUT,
            default_intensity_mA=30,
        )


def test_two_controllers_checking_in_one_client_at_once_cannot_both_succeed(db: str) -> None:
    names = [f"Client {i}" for i in range(6)]
    screened_store(db, *names).close()
    rooms = [Store(db), Store(db)]  # two controllers, each with its own connections
    outcomes: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        barrier = threading.Barrier(2)

        def controller(
            store: Store, room: str, name: str = name, barrier: threading.Barrier = barrier
        ) -> None:
            roster = roster_of(store, name)
            barrier.wait()
            try:
                store.open_class("Short", roster, simulated=False, room=room)
                outcomes[name].append("recorded")
            except CheckInRefused as e:
                outcomes[name].append(str(e))
            except Exception as e:  # the test reports it, not the thread
                outcomes[name].append(repr(e))

        threads = [
            threading.Thread(target=controller, args=(s, f"room-{i + 1}"))
            for i, s in enumerate(rooms)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    for name, got in outcomes.items():
        assert sorted(got)[0].startswith(f"{name}'s last session was 0.0 days ago"), got
        assert sorted(got)[1] == "recorded", got
    rows = rooms[1].session_records(events=False)  # one session per client, no more
    assert sorted(r["client_name"] for r in rows) == names
    assert {r["room"] for r in rows} <= {"room-1", "room-2"}


def test_a_simulated_class_is_recorded_as_such_and_never_counts_for_rest_days(db: str) -> None:
    store = screened_store(db, "Ana")
    roster = roster_of(store, "Ana", suit="SIM")
    sim1 = store.open_class("Short", roster, simulated=True)
    sim2 = store.open_class("Short", roster, simulated=True)
    history = store.history("Ana")
    assert history.sessions == 0 and history.last_session_at is None
    real = store.open_class("Short", roster, simulated=False)
    with pytest.raises(CheckInRefused, match="at least 4 days must pass"):
        store.open_class("Short", roster, simulated=False)
    sim3 = store.open_class("Short", roster, simulated=True)  # a simulation stimulates nobody
    assert store.history("Ana").last_session_at == parse_iso(
        store.class_record(real.id)["started_at"]
    )
    doc = export_document(store)
    assert {s["class_id"]: s["simulated"] for s in doc["sessions"]} == {
        sim1.id: True,
        sim2.id: True,
        real.id: False,
        sim3.id: True,
    }
    rows = list(csv.DictReader(io.StringIO(export_csv(doc))))
    assert sorted(r["simulated"] for r in rows) == ["false", "true", "true", "true"]
    assert doc["clients"][0]["sessions"] == 1 and doc["clients"][0]["simulated_sessions"] == 3


def test_a_real_class_is_opened_at_check_in_and_a_second_one_refused(db: str) -> None:
    """What `suitctl class run --client` does before the suits are connected."""
    store = screened_store(db, "Ana")
    store.add_client("Ben", member_id="M-2")
    store.add_screening("M-2", "Tom", set(), set(), KEYS)
    specs, records = check_in_or_exit(
        db,
        [("Ana", "AA:01"), ("M-2", "AA:02")],
        ["Tom"],
        ["M-2"],
        DEFAULT_LAYOUT,
        20.0,
        workout="Short",
        simulated=False,
        room="room-2",
    )
    assert [s.name for s in specs] == ["Ana", "Ben"] and specs[1].abdominal_off
    assert records.location == db and len(records.opened.sessions) == 2
    row = store.class_record(records.opened.id)
    assert row["status"] == "running" and row["room"] == "room-2" and row["simulated"] is False
    with pytest.raises(SystemExit) as exit_info:  # another room, a moment later
        check_in_or_exit(
            db,
            [("Ana", "AA:03")],
            ["Eva"],
            [],
            DEFAULT_LAYOUT,
            20.0,
            workout="Short",
            simulated=False,
        )
    assert exit_info.value.code == 1
    assert len(store.session_records(events=False)) == 2


def test_a_class_that_never_stimulated_keeps_the_first_session_cap(db: str) -> None:
    store = screened_store(db, "Ana")
    opened = store.open_class("Short", roster_of(store, "Ana"), simulated=False)
    zero = ChannelTotals(0.0, 0.0, 0.0, 0)
    store.record_progress(opened, [{"quads": zero}], [], 3.0, ended="interrupted")
    with pytest.raises(ClassRefused, match="at least 4 days"):  # it still counts for rest days
        check_in(store, [CheckIn("Ana", "S1")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=30)
    move_classes_back(store, 5)
    specs, _, _ = check_in(
        store, [CheckIn("Ana", "S1")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=30
    )
    assert specs[0].first_session and specs[0].cap_mA == 50


def test_a_class_left_running_by_a_dead_process_is_marked_interrupted(db: str) -> None:
    store = screened_store(db, "Ana", "Ben", "Cem", "Dan")
    alive = store.open_class("A", roster_of(store, "Ana"), simulated=False)
    dead = store.open_class("B", roster_of(store, "Ben"), simulated=False)
    elsewhere = store.open_class("C", roster_of(store, "Cem"), simulated=False)
    stale = store.open_class("D", roster_of(store, "Dan"), simulated=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    long_ago = "2026-11-24T10:05:00.000+00:00"
    with store.engine.begin() as c:
        c.execute(
            update(classes)
            .where(classes.c.uuid == dead.id)
            .values(pid=gone.pid, last_write_at=long_ago)
        )
        c.execute(update(classes).where(classes.c.uuid == elsewhere.id).values(host="room-2-pc"))
        c.execute(
            update(classes)
            .where(classes.c.uuid == stale.id)
            .values(host="room-3-pc", last_write_at=long_ago)
        )
    store.close()
    again = Store(db)
    assert sorted(again.recovered) == sorted([dead.id, stale.id])
    row = again.class_record(dead.id)
    assert row["status"] == "interrupted" and row["ended_at"] == long_ago
    assert again.class_record(alive.id)["status"] == "running"
    assert again.class_record(elsewhere.id)["status"] == "running"


def test_a_class_that_never_started_is_discarded_not_left_running(db: str) -> None:
    """Set-up failed after `open_class`: the class goes, and its client is free at once."""
    store = screened_store(db, "Ana", "Ben")
    never = store.open_class("Short", roster_of(store, "Ana"), simulated=False)
    assert store.discard_class(never)
    with pytest.raises(StoreError, match="no class"):
        store.class_record(never.id)
    assert store.sessions_of("Ana") == [] and store.history("Ana").last_session_at is None
    with store.engine.begin() as c:  # nothing left `running` for the pages or a restart
        assert c.execute(select(classes.c.status)).all() == []
    specs, _, _ = check_in(  # not held by the rest-day rule for a class that never started
        store, [CheckIn("Ana", "S1")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=30
    )
    assert specs[0].first_session

    # a class that recorded anything, or that ended, is never discarded
    spoke = store.open_class("Short", roster_of(store, "Ana"), simulated=False)
    store.record_progress(spoke, [{}], [SessionEvent(0.0, "note", "connected")], 0.0)
    assert not store.discard_class(spoke)
    assert store.class_record(spoke.id)["status"] == "running"
    ended = store.open_class("Short", roster_of(store, "Ben"), simulated=False)
    store.record_progress(ended, [{}], [], 0.0, ended="stopped")
    assert not store.discard_class(ended)
    assert store.class_record(ended.id)["status"] == "stopped"
    assert len(store.sessions_of("Ana")) == 1 and len(store.sessions_of("Ben")) == 1


# -- the recorder -----------------------------------------------------------------------
async def run_recorded(
    db: str, names: list[str], *, simulated: bool = False
) -> tuple[SimulatedClass, OpenedClass]:
    store = Store(db)
    specs, roster, _ = check_in(
        store,
        [CheckIn(n, f"SIM-0{i + 1}") for i, n in enumerate(names)],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=30,
    )
    opened = store.open_class("Short", roster, simulated=simulated)
    store.close()
    sc, _ = make_class(len(names), clients=specs)
    recorder = SessionRecorder(db, sc.session, opened)
    sc.companions = [recorder.run]
    try:
        await sc.run()
    finally:
        assert recorder.class_id == opened.id
    return sc, opened


async def test_the_recorder_keeps_the_engines_totals_events_and_calibration(
    db: str, autojump_clock: trio.testing.MockClock
) -> None:
    store = screened_store(db, "Ana", "Ben")
    sc, opened = await run_recorded(db, ["Ana", "Ben"])
    assert store.class_record(opened.id)["status"] == "finished"
    [ana] = store.sessions_of("Ana", events=True)
    assert ana["session_id"] == opened.sessions[0] and ana["class_id"] == opened.id
    quads = ana["channels"]["quads"]
    totals = sc.session.totals
    q = DEFAULT_LAYOUT.index("quads")
    assert quads["contractions"] == 5 and quads["max_mA"] == 30.0
    assert quads["charge_uC"] == pytest.approx(totals.charge_uC[0, q])
    suit = sc.suits[0].firmware.totals(sc.ended_at)[q]
    # what the engine commanded is what the suit measured (zero latency)
    assert quads["stim_s"] == pytest.approx(suit.stim_s, abs=1e-6)
    assert quads["charge_uC"] == pytest.approx(suit.charge_uC, rel=1e-9)
    assert quads["calibration_mA"] == 30.0 and ana["trainer"] == "Tom"
    assert ana["ended_at"] is not None and ana["first_session"] is True
    events = store.class_events(opened.id)
    kinds = [e["kind"] for e in events]
    assert kinds.count("segment") == 4 and kinds[-1] == "ended"
    about_ana = [e for e in events if e["client"] == "Ana"]
    assert about_ana and {e["session_id"] for e in about_ana} == {opened.sessions[0]}
    assert {e["session_id"] for e in events if e["client"] is None} == {None}
    assert [e["kind"] for e in ana["events"]] == [
        e["kind"] for e in events if e["client"] in (None, "Ana")
    ]
    # the next session starts from the calibration less 10 %
    move_classes_back(store, 5)
    specs, _, guidance = check_in(
        store, [CheckIn("Ana", "S1")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=30
    )
    assert specs[0].targets(DEFAULT_LAYOUT)[q] == 27.0 and not specs[0].first_session
    assert any("less 10 %" in g for g in guidance)


async def test_an_interrupted_class_keeps_its_record_and_duration(
    db: str, autojump_clock: trio.testing.MockClock
) -> None:
    store = screened_store(db, "Ana")
    with trio.move_on_after(30):
        await run_recorded(db, ["Ana"])
    [s] = store.sessions_of("Ana")
    assert s["status"] == "interrupted"
    assert s["channels"]["quads"]["contractions"] == 3
    assert np.isclose(s["class_s"], 30.0, atol=0.2)


async def test_a_cancelled_class_reports_its_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(1)
    await trio.sleep(100)  # the engine's clock does not start at zero
    with trio.move_on_after(30):
        await sc.run()
    record = sc.record()
    assert record["ended"] == "interrupted"
    assert record["class_s"] == pytest.approx(30.0, abs=0.1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_class_loses_at_most_the_last_second(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        db = str(tmp_path / "studio.db")
    else:
        db = request.getfixturevalue("postgres").new_database()
    screened_store(db, "Ana", "Ben").close()
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "suit_controller",
            "sim",
            "run",
            str(workout),
            "--client",
            "Ana",
            "--client",
            "Ben",
            "--trainer",
            "Tom",
            "--speed",
            "4",
            "--db",
            db,
            "--out",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = open_engine(db)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the class is in its suit block
            time.sleep(0.2)
            with engine.connect() as c:
                class_s = c.execute(select(classes.c.class_s)).scalar()
            if class_s is not None and class_s > 14.0:
                break
        time.sleep(1.3)
        killed_at = dt.datetime.now(dt.UTC)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        engine.dispose()
    store = Store(db)  # the next start marks it
    rows = store.session_records(events=True)
    assert len(rows) == 2 and [r["class_id"] for r in rows[:1]] == store.recovered
    for row in rows:
        assert row["status"] == "interrupted" and row["simulated"] is True
        last = parse_iso(row["ended_at"])  # the last write
        assert (killed_at - last).total_seconds() <= 1.0
        assert row["channels"]["quads"]["contractions"] >= 1
        assert "segment" in {e["kind"] for e in row["events"]}


# -- exports ----------------------------------------------------------------------------
def finished_class(store: Store, name: str, charge_uC: float = 69436.50000000205) -> OpenedClass:
    opened = store.open_class("Short", roster_of(store, name), simulated=False)
    store.record_progress(
        opened,
        [{"quads": ChannelTotals(charge_uC, 12.345678, 30.000000001, 5)}],
        [
            SessionEvent(1.23456789, "segment", "suit: Squat", None, {"x": 0.1 + 0.2}),
            SessionEvent(2.0, "link_lost", "lost", name),
        ],
        61.23456,
        ended="finished",
        calibration=[{"quads": 27.04999999}],
    )
    return opened


def documented_columns() -> set[str]:
    text = (ROOT / "docs" / "records.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))


def test_the_export_has_every_field_rounded_and_health_only_when_asked(db: str) -> None:
    store = Store(db)
    store.add_client("Ana", "1990-02-03", notes="knee surgery 2019", member_id="M-7")
    store.add_screening("Ana", "Tom", {"diabetes"}, {"diabetes"}, KEYS)
    opened = finished_class(store, "Ana")
    doc = export_document(store)
    [s] = doc["sessions"]
    assert s["channels"]["quads"] == {
        "charge_uC": 69436.5,
        "stim_s": 12.35,
        "max_mA": 30.0,
        "contractions": 5,
        "calibration_mA": 27.0,
    }
    assert s["class_s"] == 61.2 and s["charge_mC"] == 69.437 and s["max_mA"] == 30.0
    assert s["session_id"] == opened.sessions[0] and s["class_id"] == opened.id
    assert s["member_id"] == "M-7" and s["client_id"] == store.client("M-7").id
    assert s["suit"] == "S1-0" and s["trainer"] == "Tom" and s["ended_at"] is not None
    assert (s["simulated"], s["first_session"], s["abdominal_off"]) == (False, False, False)
    assert set(SESSION_COLUMNS) <= set(s)
    assert [e["t"] for e in s["events"]] == [1.235, 2.0]
    assert s["events"][0]["data"] == {"x": 0.3} and s["events"][1]["client"] == "Ana"
    text = export_json(doc)
    assert "69436.50000000205" not in text and "0.30000000000000004" not in text
    assert "screening" not in doc["clients"][0] and "knee" not in text
    assert "diabetes" not in export_csv(doc) + export_csv(doc, "clients")
    health = export_document(store, include_health=True)
    assert health["clients"][0]["screening"]["clearances"] == ["diabetes"]
    assert health["clients"][0]["notes"] == "knee surgery 2019"
    [row] = list(csv.DictReader(io.StringIO(export_csv(health))))
    assert row["clearances"] == "diabetes" and row["notes"] == "knee surgery 2019"
    assert row["quads.charge_uC"] == "69436.5" and row["simulated"] == "false"
    assert json.loads(row["events"])[0]["kind"] == "segment"
    # every column is documented in docs/records.md
    header = next(csv.reader(io.StringIO(export_csv(health))))
    header += next(csv.reader(io.StringIO(export_csv(health, "clients"))))
    generic = {re.sub(r"^[a-z_]+\.", "<channel>.", h) for h in header}
    assert generic <= documented_columns()
    assert {f"<channel>.{f}" for f in CHANNEL_FIELDS} | set(HEALTH_COLUMNS) <= generic


def test_an_incremental_export_holds_only_what_changed_since(db: str) -> None:
    store = screened_store(db, "Ana", "Ben")
    first = finished_class(store, "Ana")
    time.sleep(0.002)  # timestamps are in milliseconds
    doc = export_document(store)
    assert [s["class_id"] for s in doc["sessions"]] == [first.id]
    since = parse_iso(doc["exported_at"])
    assert export_document(store, since=since)["sessions"] == []
    time.sleep(0.002)
    second = finished_class(store, "Ben")
    later = export_document(store, since=since)
    assert [s["class_id"] for s in later["sessions"]] == [second.id]
    assert [c["name"] for c in later["clients"]] == ["Ben"]
    # a class still running is exported again once it has ended
    running = store.open_class("Short", roster_of(store, "Ana"), simulated=True)
    mark = parse_iso(export_document(store)["exported_at"])
    time.sleep(0.002)
    store.record_progress(running, [{}], [], 10.0, ended="stopped")
    [again] = export_document(store, since=mark)["sessions"]
    assert again["class_id"] == running.id and again["status"] == "stopped"


# -- the command line -------------------------------------------------------------------
def test_the_clients_commands(db: str, tmp_path: Path) -> None:
    run = CliRunner().invoke

    def ok(*args: str) -> str:
        r = run(suitctl, [*args, "--db", db])
        assert r.exit_code == 0, r.output
        return r.output

    ok("clients", "add", "Ana", "--birth", "1990-02-03", "--member-id", "M-1")
    ok("clients", "add", "Ana")
    ok("clients", "screen", "M-1", "--by", "Tom", "--yes", "diabetes", "--clearance", "diabetes")
    assert "M-1" in ok("clients", "list")
    assert "may train now" in ok("clients", "show", "M-1")
    r = run(suitctl, ["clients", "show", "Ana", "--db", db])
    assert r.exit_code == 1 and "2 clients are named 'Ana'" in r.output
    r = run(suitctl, ["clients", "add", "Ben", "--member-id", "M-1", "--db", db])
    assert r.exit_code == 1 and "already belongs to Ana" in r.output
    r = run(
        suitctl,
        [
            *("clients", "screen", "M-1", "--by", "Tom", "--yes", "pregnancy"),
            "--clearance",
            "pregnancy",
            "--db",
            db,
        ],
    )
    assert r.exit_code == 1 and "no clearance can allow it" in r.output
    r = run(suitctl, ["clients", "show", "Zoe", "--db", db])
    assert r.exit_code == 1 and "no client named 'Zoe'" in r.output
    r = run(
        suitctl,
        [
            *("sim", "run", "builtin:classic_strength", "--client", "M-1", "--virtual", "--db"),
            db,
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 1 and "needs a supervising trainer" in r.output
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    for i in range(2):  # a simulation never blocks the next one (or a real class)
        out = ok("sim", "run", str(workout), "--client", "M-1", "--trainer", "Tom", "--virtual")
        assert "recorded as a simulated class" in out and "class finished" in out, i
    assert "may train now" in ok("clients", "show", "M-1")
    doc = json.loads(ok("clients", "export", "--format", "json"))
    assert [s["simulated"] for s in doc["sessions"]] == [True, True]
    assert "screening" not in doc["clients"][0]
    doc = json.loads(ok("clients", "export", "--format", "json", "--include-health"))
    ana = next(c for c in doc["clients"] if c["member_id"] == "M-1")
    assert ana["screening"]["clearances"] == ["diabetes"]
    rows = list(csv.DictReader(io.StringIO(ok("clients", "export", "--since", doc["exported_at"]))))
    assert rows == []
    header = ok("clients", "export", "--table", "clients").splitlines()[0]
    assert header.startswith("client_id,member_id,name,birth_date")
    r = run(suitctl, ["clients", "export", "--since", "yesterday", "--db", db])
    assert r.exit_code == 1 and "is not a date or time" in r.output
