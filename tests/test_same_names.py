"""Clients who share a name (the studio allows it) in one class, and names with control
characters: told apart by id, shown escaped, refused at the door."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from click.testing import CliRunner

from suit_controller.cli import suitctl
from suit_controller.cli.live import ClassView
from suit_controller.studio import schema
from suit_controller.studio.store import Store

from .simclass_helpers import SHORT, make_class
from .studio_helpers import logged_in, start_site


def _cli(db: str, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(suitctl, [*args, "--db", db])
    return r.exit_code, r.output


def test_two_clients_of_one_name_take_one_class_from_the_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "studio.db")
    for member in ("M-1", "M-2"):
        code, out = _cli(db, "clients", "add", "Dup", "--member-id", member)
        assert code == 0, out
        code, out = _cli(db, "clients", "screen", member, "--by", "Tom", "--none")
        assert code == 0, out
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    out_dir = tmp_path / "o"
    code, out = _cli(
        db,
        *("sim", "run", str(workout), "--client", "M-1", "--client", "M-2"),
        *("--trainer", "Tom", "--virtual", "--out", str(out_dir)),
    )
    assert code == 0, out
    assert "Traceback" not in out and "class finished" in out
    rec = json.loads((out_dir / "session.json").read_text())
    assert sorted(c["name"] for c in rec["clients"]) == ["Dup (M-1)", "Dup (M-2)"]
    store = Store(db)
    try:
        for member in ("M-1", "M-2"):
            [session] = store.sessions_of(member)
            assert session["status"] == "finished", session
    finally:
        store.close()


async def test_two_clients_of_one_name_take_one_class_in_the_studio(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            site, _rack = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            ids = []
            for member in ("M-1", "M-2"):
                r = await tess.post("/api/v1/clients", json={"name": "Dup", "member_id": member})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
                r = await tess.post(f"/api/v1/clients/{ids[-1]}/screenings", json={})
                assert r.status_code < 300, r.text
            body = {
                "room": "Room 2",
                "workout": "classic_strength",
                "trainers": ["Tess"],
                "clients": [
                    {"client": ids[0], "suit": "SIM-02"},
                    {"client": ids[1], "suit": "SIM-03"},
                ],
            }
            r = await tess.post("/api/v1/classes", json=body)
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            assert (await tess.post(f"/api/v1/classes/{cid}/start")).status_code < 300
            # a command names one client by id and reaches that client's suit only
            r = await tess.post(
                f"/api/v1/classes/{cid}/commands",
                json={"do": "set_intensity", "client": ids[1], "channel": "quads", "mA": 30},
            )
            assert r.status_code < 300, r.text
            session = site.studio.classes[cid].session
            names = [c.name for c in session.clients]
            assert names == ["Dup (M-1)", "Dup (M-2)"]
            quads = session.layout.names.index("quads")
            assert session.board.target_mA[1][quads] > session.board.target_mA[0][quads]
            nursery.cancel_scope.cancel()


HOSTILE = ["a\x1b[2Jb", "Ben\x00", "Bell\x07", "Eve\u202eevil", "Sur\ud800"]


async def test_the_studio_refuses_names_with_control_characters(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            site, _rack = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            for name in HOSTILE:
                body = json.dumps({"name": name}).encode()  # a lone surrogate as \\ud800
                r = await tess.post(
                    "/api/v1/clients", content=body, headers={"content-type": "application/json"}
                )
                assert r.status_code in (400, 422), (name, r.text)
                assert "control or invisible characters" in r.text or "lone surrogate" in r.text
            r = await tess.post(
                "/api/v1/classes",
                json={
                    "room": "Room\x1b[31m",
                    "workout": "classic_strength",
                    "trainers": ["Tess"],
                    "clients": [{"client": "x", "suit": "SIM-02"}],
                },
            )
            assert r.status_code == 422 and "room" in r.text
            names = [c["name"] for c in (await tess.get("/api/v1/clients")).json()["clients"]]
            assert names == []
            ok = await tess.post("/api/v1/clients", json={"name": "Zoë O'Neil-Ångström"})
            assert ok.status_code == 201, ok.text
            nursery.cancel_scope.cancel()


def test_the_cli_refuses_names_with_control_characters(tmp_path: Path) -> None:
    db = str(tmp_path / "studio.db")
    for name in HOSTILE[:4]:
        code, out = _cli(db, "clients", "add", name)
        assert code == 1 and "control or invisible characters" in out, out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    code, out = _cli(db, "clients", "list")
    assert code == 0 and "Ben" not in out and "Bell" not in out
    code, out = _cli(
        db, *("sim", "run", "builtin:classic_strength", "--client", "a\x1b[2Jb", "--virtual")
    )
    assert code == 2 and "control or invisible characters" in out, out
    assert "\x1b" not in out


def test_names_already_on_file_are_shown_escaped_on_the_terminal(tmp_path: Path) -> None:
    """A name written before names were checked (or straight into the database) never
    reaches the terminal raw: no title change, no colour change, no cleared screen."""
    db = str(tmp_path / "studio.db")
    hostile = "Eve\x1b]0;pwned\x07\x1b[31m\u202e[red]x[/]"
    code, out = _cli(db, "clients", "add", "Eve", "--member-id", "E1")
    assert code == 0, out
    code, out = _cli(db, "clients", "screen", "E1", "--by", "Tom", "--none")
    assert code == 0, out
    store = Store(db)
    try:
        with store.engine.begin() as c:
            c.execute(schema.clients.update().values(name=hostile))
        assert store.client("E1").name == hostile
    finally:
        store.close()
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    outputs = [
        _cli(db, "clients", "list"),
        _cli(db, "clients", "show", "E1"),
        _cli(
            db,
            *("sim", "run", str(workout), "--client", "E1", "--trainer", "Tom", "--virtual"),
            *("--out", str(tmp_path / "o")),
        ),
        _cli(db, "clients", "history", "E1"),
    ]
    for code, out in outputs:
        assert code == 0, out
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in out, out
    show, sim_run = outputs[1][1], outputs[2][1]
    assert "Eve\\u001b]0;pwned\\u0007\\u001b[31m\\u202e[red]x[/]" in show
    guidance = [line for line in sim_run.splitlines() if line.startswith("guidance")]
    assert guidance and all("\\u001b" in line for line in guidance), sim_run
    assert "Eve\\u001b" in sim_run.split("class finished", 1)[1]  # the end summary


def test_the_live_view_shows_names_escaped() -> None:
    sc, _ = make_class(1)
    doc = sc.session.snapshot()
    doc["clients"][0]["name"] = "\x1b[2JEve"
    doc["clients"][0]["suit"] = "S\x1b]0;x\x07"
    view = ClassView("simulated")
    view.snapshot = doc
    text = view.__rich__().plain  # type: ignore[union-attr]
    assert "\x1b" not in text and "\x07" not in text
    assert "\\u001b[2J" in text
