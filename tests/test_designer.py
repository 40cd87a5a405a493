"""The designer's simulation: suggestions that hold, the worker process, the console meanwhile.

* `channel_view` (what a suggestion's amount is searched with) agrees with the
  full body simulation channel by channel;
* applying a suggestion and running again makes that suggestion disappear
  (raise and lower);
* the studio's real clients: each at their own last set intensities and
  first-session status, named in the report; applying a suggestion for them
  (a change on top of each one's setting) makes it disappear too, through the
  API and the worker process;
* `python -m sim.designer` reports progress, then the result, as JSON lines;
* while the studio runs a simulation in its separate process, a class's live
  console keeps being pushed: no gap above 1 s on its WebSocket.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from channels.limits import FIRST_SESSION_CAP_MA
from sim.body.population import make_population
from sim.designer import Body, Group, channel_view, feels, run_designer
from suit_controller.clients import ClientSpec
from workouts.loader import load_workout_text
from workouts.plan import compile_workout

SHORT = """\
name: Short
programs:
  p: {frequency_hz: 85, pulse_width_us: 350, impulse_s: 4, pause_s: 4}
phases:
  - kind: suit
    exercises:
      - {name: Squat, duration: 3m, program: p, channels: {quads: 1.0, lower_back: 0.5, abs: 0.9}}
      - {name: Row, duration: 1m, program: p, channels: {upper_back: 0.6, lower_back: 0.8}}
"""


def group(**intensity: float) -> Group:
    return Group(4, False, 3, tuple(intensity.items()))


def test_the_channel_view_agrees_with_the_body_simulation() -> None:
    g = group(quads=70.0, abs=55.0)
    doc = run_designer(SHORT, g)
    plan = compile_workout(load_workout_text(SHORT))
    targets = g.targets(plan)
    caps = np.stack([ClientSpec("x").caps(plan.layout)] * g.clients)
    population = make_population(g.clients, plan.layout, g.seed)
    by_area = {a["channel"]: a for a in doc["clients"][0]["areas"]}
    for j, ch in enumerate(plan.layout.names):
        view = channel_view(plan, j, targets[ch], caps, population)
        for i, client in enumerate(doc["clients"]):
            area = next((a for a in client["areas"] if a["channel"] == ch), None)
            if area is None:
                assert view.recruited_fraction[i] == 0.0
                continue
            assert area["recruited_pct"] == round(100 * float(view.recruited_fraction[i]))
            assert area["cr10"] == round(float(view.max_cr10[i]), 1)
    assert by_area["quads"]["feels"] == feels(by_area["quads"]["cr10"])


@pytest.mark.parametrize(
    "intensity, kind",
    [({}, "raise:lower_back"), ({"quads": 90.0, "abs": 80.0}, "lower:quads")],
)
def test_applying_a_suggestion_and_running_again_makes_it_disappear(
    intensity: dict[str, float], kind: str
) -> None:
    before = run_designer(SHORT, group(**intensity))
    (suggestion,) = [s for s in before["suggestions"] if s["id"] == kind]
    assert ("Raise" if kind.startswith("raise") else "lower") in suggestion["text"]
    label = "Lower back" if kind.endswith("lower_back") else "Thighs (front)"
    assert f"{label} by about " in suggestion["text"]
    apply = suggestion["apply"]
    after = run_designer(SHORT, group(**{**intensity, apply["channel"]: apply["intensity_mA"]}))
    assert kind not in [s["id"] for s in after["suggestions"]]
    # and the amount is the least that does it: one mA less and it is still there
    nearly = apply["intensity_mA"] + (-1 if kind.startswith("raise") else 1)
    again = run_designer(SHORT, group(**{**intensity, apply["channel"]: nearly}))
    assert kind in [s["id"] for s in again["suggestions"]]


ANA = Body("Ana", True, (), 11)  # never trained: first session, no settings on record
BEN = Body("Ben", False, (("lower_back", 20.0), ("quads", 85.0)), 12)
CLEO = Body("Cleo", False, (("lower_back", 24.0), ("quads", 80.0), ("abs", 50.0)), 13)


def levels_of(doc: dict[str, Any], client: int) -> dict[str, float]:
    """The highest current each area of one client got (the report's levels picture)."""
    names = [c["channel"] for c in doc["channels"]]
    rows = doc["pictures"]["levels_mA"][client]
    return {ch: max(rows[j]) for j, ch in enumerate(names)}


def test_real_clients_are_tried_at_their_own_settings_and_named() -> None:
    doc = run_designer(SHORT, Group(bodies=(ANA, BEN, CLEO)))
    assert [c["client"] for c in doc["clients"]] == ["Ana", "Ben", "Cleo"]
    people = doc["group"]["studio_clients"]
    assert [p["first_session"] for p in people] == [True, False, False]
    assert people[0]["says"] == "Ana: first session, no set intensities on record yet"
    assert people[1]["calibrated"] == ["Thighs (front)", "Lower back"]
    # quads weigh 1.0 in the squat: each one's current is their own setting (Ana: 40 mA)
    assert [levels_of(doc, i)["quads"] for i in range(3)] == [40.0, 85.0, 80.0]
    (s,) = [s for s in doc["suggestions"] if s["id"] == "raise:lower_back"]
    assert "on top of each client's own setting (now 20–40 mA)" in s["text"]
    shift = s["apply"]["shift_mA"]
    assert s["apply"] == {"channel": "lower_back", "shift_mA": shift} and shift > 0
    after = run_designer(SHORT, Group(bodies=(ANA, BEN, CLEO), shift_mA=(("lower_back", shift),)))
    assert "raise:lower_back" not in [x["id"] for x in after["suggestions"]]
    # the first-session cap holds for Ana alone (lower back weighs 0.8 in the row)
    lb = [levels_of(after, i)["lower_back"] for i in range(3)]
    assert lb[0] <= 0.8 * FIRST_SESSION_CAP_MA < 0.8 * (40 + shift)
    assert lb[1] == pytest.approx(0.8 * (20 + shift), abs=0.5)
    # the least change that does it: one mA less and the suggestion is still there
    nearly = Group(bodies=(ANA, BEN, CLEO), shift_mA=(("lower_back", shift - 1),))
    assert "raise:lower_back" in [x["id"] for x in run_designer(SHORT, nearly)["suggestions"]]


def test_a_first_session_client_among_others_is_held_to_cr10_7() -> None:
    """CR10 7 holds for the one in a first session; the other asks for less only above theirs."""
    wider = SHORT.replace("pulse_width_us: 350", "pulse_width_us: 400")
    strong = (("quads", 100.0), ("abs", 100.0))
    group = Group(bodies=(Body("Ana", True, strong, 14), Body("Ben", False, strong, 12)))
    doc = run_designer(wider, group)
    ana, ben = ({a["channel"]: a for a in c["areas"]} for c in doc["clients"])
    assert 7 < ana["quads"]["cr10"] < ben["quads"]["cr10"]  # Ben feels more, and takes it
    assert ana["quads"]["too_strong"] and not ben["quads"]["too_strong"]
    (s,) = [s for s in doc["suggestions"] if s["kind"] == "lower"]
    assert s["id"] == "lower:quads" and s["clients"] == 1
    assert s["text"].startswith("'Squat' will feel too strong for a first session on Thighs")
    shift = s["apply"]["shift_mA"]
    assert shift < 0
    after = run_designer(wider, replace(group, shift_mA=(("quads", shift),)))
    assert "lower:quads" not in [x["id"] for x in after["suggestions"]]


async def test_the_studio_tries_a_workout_on_its_own_clients(tmp_path: Path) -> None:
    """Through the API: clients picked from the records, each at the settings of their last class."""
    from suit_controller.studio.store import ChannelTotals, RosterEntry

    from .studio_helpers import logged_in, start_site
    from .test_studio_api import is_problem, poll_run

    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            site, _ = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            ids = {}
            for name in ("Ana", "Ben", "Cleo"):
                ids[name] = (await tess.post("/api/v1/clients", json={"name": name})).json()["id"]
                await tess.post(f"/api/v1/clients/{ids[name]}/screenings", json={})
            # Ben and Cleo trained before: their last class ended with these set intensities
            store = site.api.store
            for name, quads in (("Ben", 85.0), ("Cleo", 80.0)):
                opened = store.open_class(
                    "classic_strength",
                    [RosterEntry(ids[name], name, "SIM-01", "Tess", False, False)],
                    simulated=False,
                )
                store.record_progress(
                    opened, [{"quads": ChannelTotals(900.0, 300.0, quads, 40)}], [], 600.0,
                    ended="ended", calibration=[{"quads": quads, "lower_back": 5.0}],
                )  # fmt: skip
            body = {"yaml": SHORT, "studio_clients": [ids["Ana"], ids["Ben"], ids["Cleo"]]}
            r = await tess.post("/api/v1/designer/runs", json=body)
            assert r.status_code == 202, r.text
            doc = (await poll_run(tess, r.json()["id"]))["result"]
            assert [c["client"] for c in doc["clients"]] == ["Ana", "Ben", "Cleo"]
            people = doc["group"]["studio_clients"]
            assert [p["first_session"] for p in people] == [True, False, False]
            assert [levels_of(doc, i)["quads"] for i in range(3)] == [40.0, 85.0, 80.0]
            # lower back at 5 mA works no one's muscle: raise it on top of their own settings
            (s,) = [s for s in doc["suggestions"] if s["id"] == "raise:lower_back"]
            assert "(now 5–40 mA)" in s["text"] and s["apply"]["shift_mA"] > 0
            r = await tess.post("/api/v1/designer/runs", json={
                **body, "shift_mA": {"lower_back": s["apply"]["shift_mA"]}})  # fmt: skip
            again = (await poll_run(tess, r.json()["id"]))["result"]
            assert "raise:lower_back" not in [x["id"] for x in again["suggestions"]]
            assert again["group"]["shift_mA"] == {"lower_back": s["apply"]["shift_mA"]}
            # someone the records do not know, or the same client twice: refused, clearly
            r = await tess.post("/api/v1/designer/runs", json={**body, "studio_clients": ["Zoe"]})
            assert is_problem(r, 404) and "no client named 'Zoe'" in r.json()["detail"]
            twice = {**body, "studio_clients": [ids["Ben"], ids["Ben"]]}
            r = await tess.post("/api/v1/designer/runs", json=twice)
            assert is_problem(r, 409) and "Ben is in the group twice" in r.json()["detail"]
            await tess.aclose()
            nursery.cancel_scope.cancel()


def test_the_worker_process_reports_progress_then_the_result() -> None:
    request = {"yaml": SHORT, "clients": 6, "first_session": True, "seed": 1, "intensity_mA": {}}
    out = subprocess.run(
        [sys.executable, "-m", "sim.designer"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    progress = [x["progress"] for x in lines if "progress" in x]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 4
    result = lines[-1]["result"]
    assert result["group"]["first_session"] is True and len(result["clients"]) == 6
    assert len(result["pictures"]["cr10"]) == 6
    bad = subprocess.run(
        [sys.executable, "-m", "sim.designer"],
        input=json.dumps({**request, "yaml": "name: [broken"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "error" in json.loads(bad.stdout.splitlines()[-1])


async def test_the_console_keeps_updating_while_a_simulation_runs(tmp_path: Path) -> None:
    """No gap above 1 s between the console's pushes while 20 clients are simulated."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from trio_websocket import open_websocket_url

    from .studio_helpers import logged_in, start_site

    long = SHORT.replace("duration: 3m", "duration: 20m")
    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            site, _ = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            ana = (await tess.post("/api/v1/clients", json={"name": "Ana"})).json()["id"]
            await tess.post(f"/api/v1/clients/{ana}/screenings", json={})
            klass = (await tess.post("/api/v1/classes", json={
                "workout": "classic_strength", "trainers": ["Tess"],
                "clients": [{"client": ana, "suit": "SIM-01"}]})).json()  # fmt: skip
            await tess.post(f"/api/v1/classes/{klass['id']}/start")
            config = Config()
            config.bind = ["127.0.0.1:0"]
            config.accesslog = config.errorlog = None
            binds = await nursery.start(serve, site.app, config)
            ws_url = binds[0].replace("http", "ws") + f"/ws?token={klass['id']}"
            cookie = "suitctl_session=" + tess.cookies["suitctl_session"]
            gaps: list[float] = []
            async with open_websocket_url(ws_url, extra_headers=[("cookie", cookie)]) as ws:
                await ws.get_message()
                r = await tess.post("/api/v1/designer/runs", json={"yaml": long, "clients": 20})
                assert r.status_code == 202, r.text
                run = site.api.designer.runs[r.json()["id"]]
                last = trio.current_time()
                while not run.done.is_set():
                    await ws.get_message()
                    now = trio.current_time()
                    gaps.append(now - last)
                    last = now
            assert run.result is not None, run.error
            # the simulation took a while (about 1 s of CPU since the body model runs in C), and
            # the pushes went on all along
            assert len(gaps) > 5
            assert max(gaps) <= 1.0, max(gaps)
            await tess.aclose()
            nursery.cancel_scope.cancel()


def test_sim_plan_compares_two_versions_on_the_same_group(tmp_path: Path) -> None:
    """`suitctl sim plan A --compare B`: the trainer's words for both, side by side."""
    from click.testing import CliRunner

    from suit_controller.cli.main import suitctl

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(SHORT)
    b.write_text(SHORT.replace("lower_back: 0.5", "lower_back: 0.9"))
    out = tmp_path / "out"
    r = CliRunner().invoke(
        suitctl, ["sim", "plan", str(a), "--compare", str(b), "--clients", "4", "--seed", "3",
                  "--out", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "suggestion Raise Lower back by about" in " ".join(r.output.split())
    doc = json.loads((out / "session.json").read_text())
    ids = [s["id"] for s in doc["trainer"]["suggestions"]]
    theirs = [s["id"] for s in doc["compare"]["trainer"]["suggestions"]]
    assert "raise:lower_back" in ids and "raise:lower_back" not in theirs  # more weight: enough
    html = (out / "report.html").read_text()
    assert "Side by side on the same simulated group" in html
    assert html.index("What the simulated clients will need") < html.index("Side by side")
