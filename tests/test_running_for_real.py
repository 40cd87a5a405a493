"""`suitctl serve` as a service: SIGTERM stops every suit first, the systemd unit verifies.

The studio runs as a real subprocess (`suitctl serve --simulated 2`): a class
is set up and started over its HTTP API, its metrics are scraped, then the
program gets SIGTERM, as `systemctl stop` sends it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from suit_controller.studio.api import CSRF_COOKIE, CSRF_HEADER
from suit_controller.studio.store import Store

from .test_web import free_port

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "suitctl-serve.service"
SUITCTL = Path(sys.executable).parent / "suitctl"


def start_serve(
    tmp: Path, umask: int | None = None
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """`suitctl serve --simulated 2` on a free port: the process, its demo login link, its output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "suit_controller", "serve", "--simulated", "2",
         "--port", str(free_port()), "--db", str(tmp / "studio.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        umask=-1 if umask is None else umask,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        lines.append(line)
        if m := re.search(r"log in once as the demo manager: (\S+)", line):
            return proc, m.group(1), lines
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("the studio did not start:\n" + "".join(lines))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_sigterm_stops_every_suit_ends_the_class_and_records_its_duration(
    tmp_path: Path,
) -> None:
    proc, link, lines = start_serve(tmp_path)
    try:
        base = link.split("/login")[0]
        with httpx.Client(base_url=base, timeout=10) as web:
            assert web.get(link).status_code == 303  # the one-time link logs the browser in
            web.headers[CSRF_HEADER] = web.cookies[CSRF_COOKIE]
            token = web.post("/api/v1/tokens", json={"label": "prometheus"}).json()["token"]
            ids = []
            for name in ("Ana", "Ben"):
                r = web.post("/api/v1/clients", json={"name": name})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
                r = web.post(f"/api/v1/clients/{ids[-1]}/screenings", json={"yes": []})
                assert r.status_code == 201, r.text
            r = web.post(
                "/api/v1/classes",
                json={
                    "room": "Room 1",
                    "workout": "classic_strength",
                    "trainers": ["demo-manager"],
                    "clients": [
                        {"client": ids[0], "suit": "SIM-01"},
                        {"client": ids[1], "suit": "SIM-02"},
                    ],
                },
            )
            assert r.status_code == 201, r.text
            class_id = r.json()["id"]
            assert web.post(f"/api/v1/classes/{class_id}/start").status_code == 200
            reader = {"authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 60
            while True:  # until both suits have been sent frames for a while
                s = samples(web.get("/metrics", headers=reader).text)
                sent = [
                    s.get(("suitctl_suit_frames_sent_total", (("room", "Room 1"), ("suit", a))), 0)
                    for a in ("SIM-01", "SIM-02")
                ]
                if min(sent) > 80 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert min(sent) > 80, sent  # 2 s of frames: the duration below is over 1 s
            assert s[("suitctl_classes", (("state", "running"),))] == 1
            health = web.get("/api/v1/health").json()
            assert health["rooms"][0]["state"] == "running"
            assert health["rooms"][0]["suits_linked"] == 2
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)  # a second signal while stopping: taken, not fatal
        rest, _ = proc.communicate(timeout=60)
        ran_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    # every suit's own firmware was told to stop (STOPPED, not a watchdog's zeroing)
    assert "SIM-01: STOPPED, every output 0 mA" in out
    assert "SIM-02: STOPPED, every output 0 mA" in out
    assert out.index("stopping: every class ends") < out.index("SIM-01: STOPPED")
    store = Store(tmp_path / "studio.db", recover=False)
    try:
        record = store.class_record(class_id)
        events = [e["kind"] for e in store.class_events(class_id)]
    finally:
        store.close()
    assert record["status"] == "interrupted"
    # the duration runs up to the signal (it was once recorded as -0.108 s)
    assert 1.0 < record["class_s"] < 120.0 + ran_s
    assert "ended" in events


def test_the_serve_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings[key] = value
    assert settings["Restart"] == "on-failure"
    assert settings["KillSignal"] == "SIGTERM" and settings["KillMode"] == "mixed"
    # a missing manager account is not fixed by restarting: no restart loop for it
    assert settings["RestartPreventExitStatus"] == "1"
    for key, want in (
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
    ):
        assert settings[key] == want, key
    assert "suitctl serve" in settings["ExecStart"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/system-deps.sh installs systemd)")
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/opt/suit-controller/bin/suitctl", str(SUITCTL)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, cwd=tmp_path
    )
    about_unit = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0 and about_unit == [], result.stderr
    # systemd's own exposure score (0 best, 10 worst; a unit with no hardening scores 9.6)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert m is not None, result.stdout + result.stderr
    assert float(m.group(1)) <= 2.0, result.stdout


def test_the_serve_units_command_line_is_one_suitctl_accepts() -> None:
    """ExecStart, with the example environment file's values, parses as `suitctl serve`."""
    import shlex

    import click

    from suit_controller.cli import suitctl

    env = {}
    for line in (ROOT / "deploy" / "systemd" / "serve.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    command = next(
        line.partition("=")[2] for line in UNIT.read_text().splitlines()
        if line.startswith("ExecStart=")
    )  # fmt: skip
    for key, value in env.items():
        command = command.replace("${" + key + "}", value)
    argv = shlex.split(command)
    assert argv[0] == "/opt/suit-controller/bin/suitctl" and argv[1] == "serve"
    serve = suitctl.get_command(click.Context(suitctl), "serve")
    assert serve is not None
    ctx = serve.make_context("serve", argv[2:])
    assert ctx.params["host"] == env["SUITCTL_HOST"]
    assert ctx.params["port"] == int(env["SUITCTL_PORT"])
    assert ctx.params["simulated"] is None  # real suits in a real studio


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_serve_run_by_hand_creates_the_studio_database_0600_whatever_the_umask(
    tmp_path: Path,
) -> None:
    """Run by hand (no systemd UMask=), with a permissive umask: the database, which holds
    clients' health answers, and its WAL files are the owner's alone."""
    proc, _, _ = start_serve(tmp_path, umask=0o002)
    try:
        db = tmp_path / "studio.db"
        files = [db, *(p for p in tmp_path.glob("studio.db-*"))]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
        assert modes[db.name] == 0o600 and all(m == 0o600 for m in modes.values()), modes
    finally:
        proc.terminate()
        proc.wait(timeout=60)
