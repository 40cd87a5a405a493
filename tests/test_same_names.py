"""Clients who share a name (the studio allows it) in one class, and names with control
characters: told apart by id, shown escaped, refused at the door."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from click.testing import CliRunner

from suit_controller.cli import suitctl
from suit_controller.studio.store import Store

from .simclass_helpers import SHORT
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
