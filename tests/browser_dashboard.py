"""Drive the trainer's console in Debian's Chromium (run as a subprocess by the tests).

Usage: python tests/browser_dashboard.py URL SCREENSHOT.png  -> prints a JSON report.
"""

from __future__ import annotations

import json
import sys

from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from playwright.sync_api import sync_playwright


def main() -> None:
    url, shot = sys.argv[1], sys.argv[2]
    report: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('.card').length === 2", timeout=20000)
        report["cards"] = page.eval_on_selector_all(".card h2", "hs => hs.map(h => h.textContent)")
        page.wait_for_function("document.getElementById('state').textContent === 'running'")
        quads = '#client-0 [data-channel="quads"]'
        before = float(page.inner_text(quads + " .set"))
        page.click(quads + " .plus")
        page.wait_for_function(
            f"parseFloat(document.querySelector('{quads} .set').textContent) === {before + 1}",
            timeout=10000,
        )
        page.wait_for_selector("#result-0-quads:has-text('✓')", timeout=10000)
        report["set_before"], report["set_after"] = before, before + 1
        # a dropped suit shows on its card
        page.wait_for_selector("#client-1.dropped", timeout=30000)
        report["lost_card_link"] = page.inner_text("#client-1 .link")
        page.screenshot(path=shot)
        page.wait_for_selector("#client-1:not(.dropped)", timeout=30000)
        # the emergency stop button
        page.click("#estop")
        page.wait_for_function(
            "document.getElementById('state').textContent === 'estopped'", timeout=5000
        )
        page.wait_for_function(
            "[...document.querySelectorAll('.suit')].every(e => parseFloat(e.textContent) === 0)",
            timeout=5000,
        )
        report["estop_button"] = "all zero"
        page.click("button[data-do=reset]")
        page.wait_for_function("document.getElementById('state').textContent === 'paused'")
        page.click("button[data-do=resume]")
        page.wait_for_function("document.getElementById('state').textContent === 'running'")
        page.wait_for_function(
            "[...document.querySelectorAll('.suit')].some(e => parseFloat(e.textContent) > 0)",
            timeout=30000,
        )
        # the keyboard shortcut
        page.keyboard.press("Escape")
        page.wait_for_function(
            "document.getElementById('state').textContent === 'estopped'", timeout=5000
        )
        page.wait_for_function(
            "[...document.querySelectorAll('.suit')].every(e => parseFloat(e.textContent) === 0)",
            timeout=5000,
        )
        report["estop_key"] = "all zero"
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
