"""The suits page as a manager uses it, in Debian's Chromium (run as a subprocess).

Usage: python tests/browser_suits.py LOGIN_LINK SETUP_CODE SHOT_DIR -> prints a JSON report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from playwright.sync_api import sync_playwright


def main() -> None:
    link, code, shots = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    report: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.on("console", lambda m: print("console:", m.text, file=sys.stderr))
        page.on("dialog", lambda d: d.accept())
        page.goto(link)
        page.wait_for_selector("h1:has-text('Clients')")
        page.click("a[href='#/suits']")
        page.wait_for_selector("#suits-none")
        report["none_first"] = True
        page.fill("#suit-address", "SIM-01")
        page.fill("#suit-setup-code", "000 000" if code != "000000" else "111 111")
        page.click("button:has-text('Enroll')")
        page.wait_for_selector(".refusals[role=alert]")
        report["wrong_code"] = page.inner_text(".refusals")
        page.fill("#suit-setup-code", code)
        page.click("button:has-text('Enroll')")
        page.wait_for_selector("#suits-enrolled td:text-is('SIM-01')")
        report["enrolled_row"] = page.inner_text("#suits-enrolled tbody tr")
        page.screenshot(path=str(shots / "studio-suits.png"), full_page=True)
        page.click("button:has-text('New key')")
        page.wait_for_selector("#suits-enrolled td:text-is('key 2')")
        report["rotated"] = True
        page.click("button:has-text('Release')")
        page.wait_for_selector("#suits-none")
        report["released"] = True
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
