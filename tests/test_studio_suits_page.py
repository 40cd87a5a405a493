"""The suits page (issue 18) in Chromium: a manager enrolls a suit, gives it a new key, releases it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.suit import SimulatedSuit

from .browser import CHROMIUM
from .test_studio_pages import HERE, start_studio, stop


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
def test_a_manager_enrolls_rotates_and_releases_a_suit_on_the_suits_page(tmp_path: Path) -> None:
    proc, link = start_studio(tmp_path)
    shots = Path(os.environ.get("SUITCTL_SCREENSHOTS", str(tmp_path)))
    code = SimulatedSuit("SIM-01").setup_code  # printed on the suit (the same for its address)
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "browser_suits.py"), link, code, str(shots)],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=HERE,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop(proc)
    assert report["none_first"] is True
    assert "setup code" in str(report["wrong_code"])  # a wrong code: said, nothing enrolled
    assert "SIM-01" in str(report["enrolled_row"]) and "key 1" in str(report["enrolled_row"])
    assert report["rotated"] is True and report["released"] is True
