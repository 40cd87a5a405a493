"""Open a page in Debian's Chromium through Playwright, in a process of its own.

Playwright's sync API runs its own asyncio loop, which cannot live beside
trio-asyncio's loop policy in the test process; a subprocess keeps them apart.
Usage: python tests/browser.py URL SCRIPT_JS [SCREENSHOT.png] -> prints JSON.
"""

from __future__ import annotations

import json
import shutil
import sys

from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    url, script = sys.argv[1], sys.argv[2]
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.wait_for_load_state("load")
        result = page.evaluate(script)
        if shot:
            page.screenshot(path=shot)
        browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
