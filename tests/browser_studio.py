"""A trainer's core day in the studio's pages, in Debian's Chromium (run as a subprocess).

Usage: python tests/browser_studio.py LOGIN_LINK SHOT_DIR -> prints a JSON report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from playwright.sync_api import sync_playwright

TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


def main() -> None:
    link, shots = sys.argv[1], Path(sys.argv[2])
    report: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport=TABLET)
        page.goto(link)
        page.wait_for_selector("h1:has-text('Clients')")
        # add two clients: Ana (screened below) and Ben (never screened)
        page.on("console", lambda m: print("console:", m.text, file=sys.stderr))
        for name in ("Ben", "Ana <b>"):
            if name != "Ben":
                page.click("a[href='#/clients']")
                page.wait_for_selector("h1:text-is('Clients')")
            page.fill("#new-client-name", name)
            page.click("button:has-text('Add client')")
            page.wait_for_selector(f"h1:text-is('{name}')")
        report["escaped"] = (
            page.locator("h1").inner_text() == "Ana <b>" and page.locator("h1 b").count() == 0
        )
        # screening: high blood pressure, cleared by a doctor
        page.check("#yes-hypertension")
        page.check("#clear-hypertension")
        page.click("button:has-text('Save screening')")
        page.wait_for_selector("p.ok:has-text('May train today')")
        report["may_train"] = True
        page.screenshot(path=str(shots / "studio-client.png"))
        # class set-up: both clients; Ben is refused before start
        page.click("a[href='#/class/new']")
        page.wait_for_selector("#workout")
        page.select_option("#workout", "classic_strength")
        ids = page.eval_on_selector_all(
            "input[id^=pick-]", "xs => xs.map(x => [x.id, x.parentElement.textContent])"
        )
        for box, _ in ids:
            page.check(f"#{box}")
        page.click("button:has-text('Check in')")
        page.wait_for_selector(".refusals[role=alert]")
        report["refusals"] = page.inner_text(".refusals")
        page.screenshot(path=str(shots / "studio-set-up.png"), full_page=True)
        for box, label in ids:
            if label.strip() == "Ben":
                page.uncheck(f"#{box}")
        page.click("button:has-text('Check in')")
        page.wait_for_selector("#start:not([disabled])")
        page.click("#start")
        page.wait_for_selector("#class-state:has-text('Running')")
        report["console_href"] = page.get_attribute("#console-link", "href")
        console = browser.new_page(viewport=TABLET)
        console.goto(page.url.split("#")[0].rstrip("/") + str(report["console_href"]))
        report["console_title"] = console.title()
        console.close()
        page.click("#end")
        page.wait_for_selector("#summary-state")
        report["summary_state"] = page.inner_text("#summary-state")
        report["summary_cards"] = page.locator(".summary").count()
        page.screenshot(path=str(shots / "studio-summary.png"), full_page=True)
        page.click(".summary h2 a")
        page.wait_for_selector("#history tr")
        report["history"] = page.eval_on_selector_all(
            "#history tr", "rows => rows.map(r => r.textContent)"
        )
        page.set_viewport_size(PHONE)
        report["phone_fits"] = page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"
        )
        page.screenshot(path=str(shots / "studio-client-phone.png"), full_page=True)
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
