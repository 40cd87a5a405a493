"""The workout library: versions by content hash, search, duplicate, archive, import/export.

On both backends (SQLite, and PostgreSQL from tests/postgres_server.py), and
the migration step that adds it (version 4 -> 5) keeping every record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from suit_controller.cli.main import suitctl
from suit_controller.studio.export import export_csv, export_document
from suit_controller.studio.library import (
    MAX_YAML_CHARS,
    HostileText,
    Library,
    LibraryError,
    hostile_text,
    workout_hash,
)
from suit_controller.studio.migrations import current_version, migrate
from suit_controller.studio.recorder import RosterEntry
from suit_controller.studio.schema import SCHEMA_VERSION
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.store import Store, open_engine
from workouts import WorkoutError
from workouts.library import builtin_text

from .postgres_server import Postgres, why_unavailable
from .simclass_helpers import SHORT

MINE = """\
# Tess's Monday class: keep the comments
name: Monday strength
programs:
  strength:   # the usual
    frequency_hz: 85
    pulse_width_us: 350
    impulse_s: 4
    pause_s: 4
phases:
  - kind: warmup
    duration: 5m
  - kind: suit
    exercises:
      - name: Squat
        duration: 20m
        program: strength
        channels: {quads: 0.8, glutes: 0.7}
  - kind: stretch
    duration: 5m
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(tmp_path / "studio.db")
    else:
        s = Store(request.getfixturevalue("postgres").new_database())
    yield s
    s.close()


def test_versions_search_duplicate_archive(store: Store) -> None:
    lib = Library(store)
    builtins = [e for e in lib.entries() if e.builtin]
    assert "builtin:classic_strength" in [e.id for e in builtins]
    strength = next(e for e in builtins if e.id == "builtin:classic_strength")
    assert strength.hash == hashlib.sha256(builtin_text("classic_strength").encode()).hexdigest()

    mine = lib.add(MINE, "Tess")
    assert mine.hash == workout_hash(MINE) and mine.title == "Monday strength"
    assert lib.text(mine.id)[1] == MINE  # the text, byte for byte (the source of truth)
    assert [e.id for e in lib.entries("monday")] == [mine.id]
    assert lib.entries("no such title") == []

    changed = MINE.replace("duration: 20m", "duration: 22m")
    second = lib.save(mine.id, changed, "Tess")
    assert second.id == mine.id and second.hash == workout_hash(changed) != mine.hash
    assert lib.save(mine.id, changed, "Tess").hash == second.hash  # the same text: no new version
    assert {v["hash"] for v in lib.versions(mine.id)} == {second.hash, mine.hash}
    assert lib.version_text(mine.hash) == MINE  # an old version stays readable by its hash

    with pytest.raises(WorkoutError) as bad:  # an invalid version is never saved
        lib.save(mine.id, MINE.replace("quads: 0.8", "neck: 0.8"), "Tess")
    assert bad.value.problems[0].line == 17
    assert lib.text(mine.id)[0].hash == second.hash

    copy = lib.duplicate("builtin:first_session", "Tess")
    text = lib.text(copy.id)[1]
    assert copy.title == "First session (copy)" and copy.copied_from == "builtin:first_session"
    assert "A light first session" in text and text.index("name:") < text.index("programs:")
    mine_copy = lib.duplicate(mine.id, "Tess")
    assert "# Tess's Monday class: keep the comments" in lib.text(mine_copy.id)[1]
    assert "# the usual" in lib.text(mine_copy.id)[1]

    lib.archive(mine.id, True)
    assert mine.id not in [e.id for e in lib.entries()]
    assert mine.id in [e.id for e in lib.entries(archived=True)]
    with pytest.raises(LibraryError, match="archived"):
        lib.resolve(mine.id, "Tess")
    lib.archive(mine.id, False)
    assert lib.resolve(mine.id, "Tess").hash == second.hash
    with pytest.raises(LibraryError, match="built-in"):
        lib.save("builtin:classic_strength", MINE, "Tess")
    with pytest.raises(LibraryError, match="no workout"):
        lib.text("00000000-0000-0000-0000-000000000000")


def test_a_class_records_the_exact_version_it_ran(store: Store) -> None:
    lib = Library(store)
    mine = lib.add(MINE, "Tess")
    resolved = lib.resolve(mine.id, "Tess")
    opened = store.open_class(
        resolved.record_name,
        [RosterEntry(None, "Ana", "SIM-01", None, False, False)],
        simulated=True,
        workout_hash=resolved.hash,
    )
    record = store.class_record(opened.id)
    assert record["workout_hash"] == mine.hash and record["workout"] == "Monday strength"
    (session,) = store.sessions_of_class(opened.id)
    assert session["workout_hash"] == mine.hash
    builtin = lib.resolve("classic_strength", "Tess")  # a built-in's version is kept on use
    assert lib.version_text(builtin.hash) == builtin_text("classic_strength")


def test_the_exports_name_the_exact_version_a_class_ran(store: Store) -> None:
    """JSON and CSV (and `suitctl clients export`): hash, title and number of the version."""
    lib = Library(store)
    mine = lib.add(MINE, "Tess")
    time.sleep(0.002)  # versions are numbered in the order they were saved (ms timestamps)
    changed = MINE.replace("duration: 20m", "duration: 22m")
    second = lib.save(mine.id, changed, "Tess")
    ran = []
    for ref in (mine.id, "classic_strength"):
        resolved = lib.resolve(ref, "Tess")
        opened = store.open_class(
            resolved.record_name,
            [RosterEntry(None, "Ana", "SIM-01", None, False, False)],
            simulated=True,
            workout_hash=resolved.hash,
        )
        ran.append(opened.id)
    doc = export_document(store)
    by_class = {s["class_id"]: s for s in doc["sessions"]}
    mine_s, builtin_s = by_class[ran[0]], by_class[ran[1]]
    assert mine_s["workout_hash"] == second.hash != mine.hash
    assert (mine_s["workout_title"], mine_s["workout_version"]) == ("Monday strength", 2)
    assert builtin_s["workout_hash"] == workout_hash(builtin_text("classic_strength"))
    assert (builtin_s["workout_title"], builtin_s["workout_version"]) == ("Classic strength", None)
    assert lib.version_text(mine_s["workout_hash"]) == changed
    rows = {r["class_id"]: r for r in csv.DictReader(io.StringIO(export_csv(doc)))}
    assert rows[ran[0]]["workout_hash"] == second.hash and rows[ran[0]]["workout_version"] == "2"
    assert rows[ran[1]]["workout_version"] == "" and rows[ran[1]]["workout"] == "classic_strength"
    # the command line's export is the same document
    out = CliRunner().invoke(
        suitctl, ["clients", "export", "--format", "json", "--db", str(store.location)]
    )
    assert out.exit_code == 0, out.output
    cli = {s["class_id"]: s for s in json.loads(out.output)["sessions"]}
    assert cli[ran[0]]["workout_hash"] == second.hash and cli[ran[0]]["workout_version"] == 2


def test_a_class_run_from_the_command_line_records_its_version(
    store: Store, tmp_path: Path
) -> None:
    """`suitctl sim run FILE --client …`: the class records the hash of the file's exact text."""
    store.add_client("Ana")
    store.add_screening("Ana", "Tom", set(), set(), [c.key for c in CONTRAINDICATIONS])
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT + "# a trainer's note\n", encoding="utf-8")
    db = ["--db", str(store.location)]
    for ref in (str(workout), "builtin:first_session"):
        r = CliRunner().invoke(suitctl, ["sim", "run", ref, "--client", "Ana", "--trainer", "Tom",
                                         "--virtual", "--out", str(tmp_path / "o"), *db])  # fmt: skip
        assert r.exit_code == 0, r.output
    file_s, builtin_s = reversed(store.sessions_of("Ana"))  # oldest first
    assert file_s["workout_hash"] == workout_hash(workout.read_text(encoding="utf-8"))
    lib = Library(store)
    assert lib.version_text(file_s["workout_hash"]).endswith("# a trainer's note\n")
    assert builtin_s["workout_hash"] == workout_hash(builtin_text("first_session"))


@pytest.mark.parametrize(
    "text, why",
    [
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),
        ("a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n", "anchors and aliases"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nests deeper"),
        ("name: x\n" + "# pad\n" * (MAX_YAML_CHARS // 6 + 1), "at most 32 KB"),
        ("name: \x00\x01\x02", "binary"),
        ("name: \ud800\n", "lone surrogate"),
        ("- x\n" * 5001, "at most 5000 values"),
    ],
)
def test_hostile_text_is_refused_before_parsing(text: str, why: str) -> None:
    with pytest.raises(HostileText, match=why):
        hostile_text(text)


def test_the_workouts_pass_the_hostile_check() -> None:
    for name in ("classic_strength", "first_session", "metabolic", "relaxation"):
        hostile_text(builtin_text(name))
    hostile_text(MINE)
    hostile_text("name: [unclosed\n")  # broken YAML is the validator's to report, with its line


def test_migrating_from_version_4_keeps_classes_and_adds_the_library(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    engine = open_engine(path)
    migrate(engine, target=3)
    migrate(engine, target=4)
    with engine.begin() as c:
        assert current_version(c) == 4
        assert "workout_versions" not in inspect(c).get_table_names()
        c.exec_driver_sql(
            "INSERT INTO classes (uuid, workout, started_at, status, simulated, class_s) "
            "VALUES ('22222222-2222-2222-2222-222222222222', 'classic_strength', "
            "'2026-01-01T10:00:00.000+00:00', 'finished', 0, 1800)"
        )
    engine.dispose()
    store = Store(path)
    with store.engine.begin() as c:
        assert current_version(c) == SCHEMA_VERSION == 6
        assert {"library_workouts", "workout_versions"} <= set(inspect(c).get_table_names())
    old = store.class_record("22222222-2222-2222-2222-222222222222")
    assert old["status"] == "finished" and old["workout_hash"] is None
    assert Library(store).add(MINE, "Tess").hash == workout_hash(MINE)


@pytest.mark.parametrize("name", ["classic_strength", "first_session", "metabolic", "relaxation"])
def test_a_form_change_rewrites_only_its_own_line(name: str) -> None:
    """The ruamel round-trip keeps every other line: comments, order, folded text, indentation."""
    import difflib

    from suit_controller.studio.library import EditError, edit_yaml

    text = builtin_text(name)
    edited = edit_yaml(text, [(("phases", 0, "duration"), "9m")])
    changed = [
        line
        for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert len(changed) == 2, changed
    removed, added = changed[0][1:], changed[1][1:]
    assert added.strip() == "duration: 9m" and removed.strip().startswith("duration: ")
    assert len(added) - len(added.lstrip()) == len(removed) - len(removed.lstrip())  # indentation
    with pytest.raises(EditError, match=r"no phases\.7\.duration"):
        edit_yaml(text, [(("phases", 7, "duration"), "9m")])
