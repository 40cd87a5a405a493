"""`suitctl serve --simulated 4` as a trainer uses it: its pages in Debian's Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .test_web import free_port, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HERE = Path(__file__).parent


def start_studio(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "suit_controller", "serve", "--simulated", "4",
         "--port", str(port), "--db", str(tmp / "studio.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if m := re.search(r"log in once as the demo manager: (\S+)", line):
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("the studio did not start:\n" + "".join(lines))


def test_serve_prints_a_one_time_login_link_that_works_once(tmp_path: Path) -> None:
    proc, link = start_studio(tmp_path)
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(link, timeout=10) as r:
            assert r.status == 200 and r.url.endswith("/")
        with opener.open(link.split("/login")[0] + "/api/v1/me", timeout=10) as r:
            assert json.load(r)["name"] == "demo-manager"
        with urllib.request.urlopen(link, timeout=10) as r:  # spent
            assert "link=spent" in r.url
    finally:
        stop(proc)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
def test_a_trainers_whole_day_in_the_studio_pages(tmp_path: Path) -> None:
    """Issue 13's acceptance: log in to end of class, e-stops judged at the suits' firmware."""
    proc, link = start_studio(tmp_path)
    shots = Path(os.environ.get("SUITCTL_SCREENSHOTS", str(tmp_path))).resolve()
    base = link.split("/login")[0]
    try:
        secret = tmp_path / "tess.txt"
        secret.write_text("trainer-pass\n")
        added = subprocess.run(
            [sys.executable, "-m", "suit_controller", "users", "add", "--role", "trainer",
             "Tess", "--password-file", str(secret), "--db", str(tmp_path / "studio.db")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        out = subprocess.run(
            [sys.executable, str(HERE / "browser_studio.py"), base, "Tess", "trainer-pass",
             str(shots)],
            capture_output=True, text=True, timeout=300, cwd=HERE,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop(proc)
    print("seconds into the day:", report["seconds"])
    assert report.get("page_errors") is None, report["page_errors"]
    assert report.get("raw_values_shown") is None, report["raw_values_shown"]
    assert report["logged_in"] is True
    assert report["escaped"] is True, report  # a name with markup stays text
    assert report["may_train"] is True
    # suits by tapping a client, then a suit; a taken suit swaps
    assert report["pressed"] == ["true", "true"]
    assert report["focus_on_suits"] == [True, True]  # the suits come to hand
    assert report["assigned"]["Ana <b>"] == "SIM-03" and report["assigned"]["Cem"] == "SIM-04"
    assert len(set(report["assigned"].values())) == 3
    assert any(b.startswith("SIM-03 · battery") and b.endswith("Ana <b>")
               for b in report["suit_buttons"])  # fmt: skip
    assert "Ben has no contraindication screening on file" in report["refusals"]
    # the firmware: only the class's suits were armed; e-stops latched STOP_ALL at zero output
    fw = report["firmware"]
    assert fw["before-start"] == {  # checked in: the class's suits connected, at zero
        "SIM-01": ["idle", 0.0], "SIM-02": ["idle", 0.0],
        "SIM-03": ["armed", 0.0], "SIM-04": ["armed", 0.0],
    }  # fmt: skip
    assert {s[0] for s in fw["started"].values()} == {"armed"}
    assert any(s[1] > 0 for s in fw["delivering"].values()), fw  # current flowed before
    assert "Escape" in report["class_estop_label"]
    assert "Cannot reach the controller" in report["estop_unreachable"]
    for moment in ("estop-button", "estop-key", "estop-class-page"):
        assert fw[moment] == {"SIM-03": ["stopped", 0.0], "SIM-04": ["stopped", 0.0]}, fw
    for moment in ("resumed", "after-space", "resumed-again"):
        assert {s[0] for s in fw[moment].values()} == {"armed"}, (moment, fw)
    assert {s[1] for s in fw["ended"].values()} == {0.0}
    assert report["console_names"] == ["Ana <b>", "Cem"]
    assert [int(x.split()[0]) for x in report["raised"]] == [10, 11]
    assert "stop" in report["banner"].lower()
    assert report["step_checked"] is True
    assert [int(x.split()[0]) for x in report["space_on_plus"]] == [11, 13]
    assert report["state_after_space"] == "running"
    # the summary and the history
    assert report["summary_state"].startswith("Ended during an emergency stop")
    assert report["summary_cards"] == ["Ana <b>", "Cem"]
    assert "Peak per body area" in report["summary_text"]
    assert "null" not in report["summary_text"] and "undefined" not in report["summary_text"]
    assert "Thighs (front): " in report["summary_text"]
    (row,) = report["history"]
    assert "Classic strength (simulated)" in row and "Ended during an emergency stop" in row
    # axe-core on every page and console state, at tablet and phone size; no sideways scroll
    states = {k.split("@")[0] for k in report["axe"]}
    assert states >= {"login", "screening-form", "clients", "set-up-refused", "class-ready",
                      "class-running", "class-controller-lost", "class-estopped",
                      "console-running", "console-estopped", "console-paused",
                      "summary", "client-history", "workouts"}  # fmt: skip
    assert {k: v for k, v in report["axe"].items() if v} == {}
    assert {k: v for k, v in report["scroll"].items() if v[0] > v[1]} == {}


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
def test_the_workout_designer_from_first_line_to_a_class(tmp_path: Path) -> None:
    """Write a workout, see each problem at its line, fix, try on 8 bodies, save, run a class."""
    proc, link = start_studio(tmp_path)
    shots = Path(os.environ.get("SUITCTL_SCREENSHOTS", str(tmp_path))).resolve()
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "browser_designer.py"), link, str(shots)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=HERE,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop(proc)
    errors = report["errors"]
    assert "forbidden electrode location" in errors["17"], errors  # neck, at its line
    assert "at most 25m" in errors["12"], errors  # the suit block, at its line
    assert "line 17" in report["problem_list"] and "line 12" in report["problem_list"]
    assert "No problems" in report["fixed"]
    assert "24.0 min of suit block: within 20–25 min" in report["suit_block"]
    assert report["map_areas"] > 0
    tapped = report["tapped"]
    assert "channels: {quads: 0.8, glutes: 0.7, calves: 0.3}" in tapped
    assert tapped.startswith("# Leg day: Tess, for the Monday group\nname: Leg day\n")
    assert report["strips"] == 8 and "CR10 7" in report["cr10_label"]
    assert any("Raise Lower back by about" in s["text"] for s in report["suggestions"]), report
    applied = report["applied"]
    assert applied is not None and applied["id"] not in report["after"]
    kept, now = report["compare"].split("Now: ")
    assert "Raise Lower back" in kept and "Raise Lower back" not in now  # side by side
    # tried on the studio's own client: named, at her first session
    assert report["ours_hidden"] and report["seeded_hidden"]  # one choice shown at a time
    assert "Tried on Ana" in report["ours_people"], report["ours_people"]
    assert "Ana: first session, no set intensities on record yet" in report["ours_people"]
    assert report["ours_strips"] == ["Ana"] and report["ours_words"].startswith("Ana: feels")
    assert report["class_workout"] == "Leg day"
    assert report["class_hash"] == report["saved_hash"] and len(report["saved_hash"]) == 64
