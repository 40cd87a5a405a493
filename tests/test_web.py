"""The trainer's console served by `sim run --web`: the access token on the LAN.

The page itself is driven in Chromium by tests/test_console.py."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .simclass_helpers import SHORT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HERE = Path(__file__).parent
LONG = SHORT.replace("duration: 40s", "duration: 3m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_class(tmp: Path, web: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    workout = tmp / "long.yaml"
    workout.write_text(LONG)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "suit_controller",
            "sim",
            "run",
            str(workout),
            "--clients",
            "2",
            "--speed",
            "2",
            "--intensity",
            "20",
            "--web",
            web,
            "--out",
            str(tmp / "out"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if m := re.search(r"trainer's console: (\S+)", line):
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("the console did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_bound_to_the_lan_the_console_needs_its_token(tmp_path: Path) -> None:
    port = free_port()
    proc, url = start_class(tmp_path, f"0.0.0.0:{port}")
    try:
        token = url.split("token=")[1]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert info.value.code == 403
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?token=wrong", timeout=10)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10) as r:
            assert r.status == 200 and b"Emergency stop" in r.read()
    finally:
        stop(proc)
