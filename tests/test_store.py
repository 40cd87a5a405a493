"""The studio database: migrations, records written as the class runs, nothing lost."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trio
import trio.testing
from click.testing import CliRunner

from channels import DEFAULT_LAYOUT
from suit_controller.cli import suitctl
from suit_controller.studio.checkin import CheckIn, ClassRefused, check_in
from suit_controller.studio.migrations import SCHEMA_VERSION
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.store import Store, StoreError, connect, iso, migrate, utcnow

from .simclass_helpers import SHORT, make_class

KEYS = [c.key for c in CONTRAINDICATIONS]


def screened_store(path: Path, *names: str) -> Store:
    store = Store(path)
    for n in names:
        store.add_client(n)
        store.add_screening(n, "Tom", set(), set(), KEYS)
    return store


def test_migrates_an_empty_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "clients",
        "screenings",
        "sessions",
        "session_clients",
        "session_channels",
        "session_events",
        "trainers",
        "calibrations",
    } <= tables


def test_migrates_the_previous_schema_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path)
    migrate(conn, target=1)
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
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    [s] = store.sessions_of("Ana")
    assert s["workout"] == "Old class" and s["trainer"] is None and s["first_session"] is False
    assert store.history("Ana").sessions == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "new.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer suit-controller"):
        Store(tmp_path / "new.db")


def test_clients_and_errors(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.add_client("Ana", "1990-02-03")
    with pytest.raises(StoreError, match="already a client named 'Ana'"):
        store.add_client("Ana")
    with pytest.raises(StoreError, match="not YYYY-MM-DD"):
        store.add_client("Ben", "03.02.1990")
    with pytest.raises(StoreError, match=r"no client named 'Zoe' \(clients: Ana\)"):
        store.client("Zoe")


def test_an_interrupted_session_is_marked_on_the_next_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.conn.execute(
        "INSERT INTO sessions (workout, started_at, status, pid, host, last_write_at) "
        "VALUES ('x', '2026-11-24T10:00:00+00:00', 'running', ?, ?, '2026-11-24T10:05:00+00:00')",
        (dead.pid, os.uname().nodename),
    )
    store.close()
    again = Store(tmp_path / "s.db")
    assert again.recovered == [1]
    row = again.session(1)
    assert row["status"] == "interrupted" and row["ended_at"] == "2026-11-24T10:05:00+00:00"


def test_check_in_applies_every_rule_and_starts_from_calibration(tmp_path: Path) -> None:
    store = screened_store(tmp_path / "s.db", "Ana", "Ben", "Cem")
    store.add_client("Dan")
    with pytest.raises(ClassRefused) as info:
        check_in(
            store,
            [CheckIn(n, f"S{i}") for i, n in enumerate(["Ana", "Ben", "Cem", "Dan"])],
            ["Tom"],
            DEFAULT_LAYOUT,
            default_intensity_mA=30,
        )
    text = " | ".join(info.value.reasons)
    assert "4 clients need 2 supervising trainers" in text
    assert "Dan has no contraindication screening" in text
    specs, roster, _guidance = check_in(
        store,
        [CheckIn("Ana", "S1", ate_recently=True)],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=30,
    )
    assert specs[0].first_session and specs[0].abdominal_off and specs[0].cap_mA == 50
    assert roster[0].trainer == "Tom"
    caps = specs[0].caps(DEFAULT_LAYOUT)
    assert caps[DEFAULT_LAYOUT.index("abs")] == 0 and caps.max() == 50


async def run_recorded(tmp_path: Path, store: Store, names: list[str]) -> tuple[object, int]:
    plan_clients, roster, _ = check_in(
        store,
        [CheckIn(n, f"SIM-0{i + 1}") for i, n in enumerate(names)],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=30,
    )
    sc, _ = make_class(len(names), clients=plan_clients)
    recorder = SessionRecorder(store.path, sc.session, roster)
    sc.companions = [recorder.run]
    await sc.run()
    assert recorder.session_id is not None
    return sc, recorder.session_id


async def test_the_recorder_keeps_the_engines_totals_events_and_calibration(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = screened_store(tmp_path / "s.db", "Ana", "Ben")
    sc, sid = await run_recorded(tmp_path, store, ["Ana", "Ben"])
    row = store.session(sid)
    assert row["status"] == "finished"
    [ana] = store.sessions_of("Ana")
    quads = ana["channels"]["quads"]
    totals = sc.session.totals  # type: ignore[attr-defined]
    q = DEFAULT_LAYOUT.index("quads")
    assert quads["contractions"] == 5 and quads["max_mA"] == 30.0
    assert quads["charge_uC"] == pytest.approx(totals.charge_uC[0, q])
    suit = sc.suits[0].firmware.totals(sc.ended_at)[q]  # type: ignore[attr-defined]
    # what the engine commanded is what the suit measured (zero latency)
    assert quads["stim_s"] == pytest.approx(suit.stim_s, abs=1e-6)
    assert quads["charge_uC"] == pytest.approx(suit.charge_uC, rel=1e-9)
    assert ana["calibration_mA"]["quads"] == 30.0 and ana["trainer"] == "Tom"
    kinds = [e["kind"] for e in store.session_events(sid)]
    assert kinds.count("segment") == 4 and kinds[-1] == "ended"
    # the next session starts from the calibration less 10 %
    store.conn.execute(
        "UPDATE sessions SET started_at = ?", (iso(utcnow() - dt.timedelta(days=5)),)
    )
    specs, _, guidance = check_in(
        store, [CheckIn("Ana", "S1")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=30
    )
    assert specs[0].targets(DEFAULT_LAYOUT)[q] == 27.0 and not specs[0].first_session
    assert any("less 10 %" in g for g in guidance)


async def test_an_engine_failure_still_finishes_the_record(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = screened_store(tmp_path / "s.db", "Ana")
    with trio.move_on_after(30):
        await run_recorded(tmp_path, store, ["Ana"])
    [s] = store.sessions_of("Ana")
    assert s["status"] == "interrupted"
    assert s["channels"]["quads"]["contractions"] == 3
    assert np.isclose(s["class_s"], 30.0, atol=0.2)


def test_a_killed_class_loses_at_most_the_last_second(tmp_path: Path) -> None:
    db = tmp_path / "studio.db"
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
            str(db),
            "--out",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the class is in its suit block
            time.sleep(0.2)
            with sqlite3.connect(db) as c:
                row = c.execute("SELECT class_s FROM sessions").fetchone()
            if row and row[0] > 14.0:
                break
        time.sleep(1.3)
        killed_at = dt.datetime.now(dt.UTC)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        s = c.execute("SELECT * FROM sessions").fetchone()
        channels = c.execute("SELECT * FROM session_channels WHERE channel = 'quads'").fetchall()
        events = c.execute("SELECT kind FROM session_events").fetchall()
    assert s["status"] == "running"
    last = dt.datetime.fromisoformat(s["last_write_at"])
    assert (killed_at - last).total_seconds() <= 1.0
    assert len(channels) == 2 and all(ch["contractions"] >= 1 for ch in channels)
    assert "segment" in {e["kind"] for e in events}
    store = Store(db)  # the next start marks it
    assert store.recovered == [s["id"]]
    assert store.sessions_of("Ana")[0]["status"] == "interrupted"


def test_the_clients_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    run = CliRunner().invoke

    def ok(*args: str) -> str:
        r = run(suitctl, [*args, "--db", db])
        assert r.exit_code == 0, r.output
        return r.output

    ok("clients", "add", "Ana", "--birth", "1990-02-03")
    ok("clients", "screen", "Ana", "--by", "Tom", "--yes", "diabetes", "--clearance", "diabetes")
    assert "Ana" in ok("clients", "list")
    assert "may train now" in ok("clients", "show", "Ana")
    r = run(suitctl, ["clients", "add", "Ana", "--db", db])
    assert r.exit_code == 1 and "already a client" in r.output
    r = run(
        suitctl,
        [
            "clients",
            "screen",
            "Ana",
            "--by",
            "Tom",
            "--yes",
            "pregnancy",
            "--clearance",
            "pregnancy",
            "--db",
            db,
        ],
    )
    assert r.exit_code == 1 and "no clearance can allow it" in r.output
    r = run(suitctl, ["clients", "show", "Zoe", "--db", db])
    assert r.exit_code == 1 and "no client named 'Zoe'" in r.output
    out = ok("clients", "export", "--format", "json")
    doc = json.loads(out)
    assert doc["clients"][0]["screening"]["clearances"] == ["diabetes"]
    csv_text = ok("clients", "export", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("client,birth_date,screened_at")
    r = run(
        suitctl,
        [
            "sim",
            "run",
            "builtin:classic_strength",
            "--client",
            "Ana",
            "--virtual",
            "--db",
            db,
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 1 and "needs a supervising trainer" in r.output
