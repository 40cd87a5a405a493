"""The workout report: built by `sim run` and `sim plan`, rebuilt by `sim report`, and
rendered in a real browser (headless Chromium) with its plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from suit_controller.cli import suitctl

from .simclass_helpers import SHORT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def invoke(*args: str) -> str:
    r = CliRunner().invoke(suitctl, list(args))
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture
def planned(tmp_path: Path) -> Path:
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    out = tmp_path / "plan"
    invoke(
        "sim",
        "plan",
        str(workout),
        "--clients",
        "3",
        "--intensity",
        "110",
        "--first-session",
        "--out",
        str(out),
    )
    return out


def test_sim_plan_writes_the_body_figures_and_the_report(planned: Path) -> None:
    doc = json.loads((planned / "session.json").read_text())
    assert doc["mode"] == "plan" and len(doc["body"]["clients"]) == 3
    quads = doc["body"]["clients"][0]["channels"]["quads"]
    assert quads["peak_force_N"] > 0 and 0 < quads["fatigue_end"] <= 1
    kinds = {w["kind"] for w in doc["body"]["warnings"]}
    assert "first_session_hard" not in kinds  # the first-session cap of 50 mA keeps it light
    html = (planned / "report.html").read_text()
    # strips, force and fatigue per area, then one client's levels each
    assert html.count('<img class="plot"') == 2 + 3
    assert html.count("data:image/svg+xml;base64,") == 2 + 3  # drawn as SVG, no PNG left
    # the words first: what the group needs, then each client by body area
    words = html.index("What the simulated clients will need")
    assert words < html.index("How it feels over time") < html.index("<table>")
    assert "client-1: feels" in html and "Thighs (front): " in html


def test_sim_report_rebuilds_from_session_json(planned: Path) -> None:
    before = (planned / "report.html").read_text()
    (planned / "report.html").unlink()
    invoke("sim", "report", str(planned))
    assert (planned / "report.html").read_text() == before
    bad = planned / "bad"
    bad.mkdir()
    (bad / "session.json").write_text("{not json")
    r = CliRunner().invoke(suitctl, ["sim", "report", str(bad)])
    assert r.exit_code == 1 and "not valid JSON" in r.output


def test_sim_run_writes_the_report_and_clients_ask_for_less(tmp_path: Path) -> None:
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    out = tmp_path / "run"
    invoke(
        "sim",
        "run",
        str(workout),
        "--clients",
        "2",
        "--virtual",
        "--intensity",
        "120",
        "--out",
        str(out),
    )
    doc = json.loads((out / "session.json").read_text())
    assert "body" in doc and (out / "report.html").exists()
    page = (out / "report.html").read_text()
    for title in ("Levels", "Force and fatigue", "Sensation"):
        assert f'<h2>{title}</h2><img class="plot" alt="{title}" src="data:image/svg' in page
    requests = [e for e in doc["events"] if e["kind"] == "client_request"]
    assert requests and "asks for less" in requests[0]["message"]


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
def test_the_report_opens_in_a_browser_with_its_plots(planned: Path) -> None:
    import subprocess
    import sys

    script = """() => ({
        title: document.title,
        images: [...document.querySelectorAll('img.plot')].map(
            i => [i.complete, i.naturalWidth, i.naturalHeight]),
        headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    })"""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "browser.py"),
            (planned / "report.html").resolve().as_uri(),
            script,
            str(planned / "report.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    page = json.loads(out.stdout)
    assert page["title"].startswith("Workout report")
    sizes = page["images"]
    assert len(sizes) == 2 + 3 and all(ok and w > 400 and h > 100 for ok, w, h in sizes)
    assert {"What the simulated clients will need", "Per client and body area", "Warnings",
            "How it feels over time", "Force and fatigue per body area",
            "Levels of one client"} <= set(page["headings"])  # fmt: skip
    assert (planned / "report.png").stat().st_size > 10_000
