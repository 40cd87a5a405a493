"""Drive the live console in Debian's Chromium, at tablet and phone size at once.

Run as a subprocess by tests/test_console.py (Playwright's asyncio loop stays out of the
test's Trio program). One browser, two pages on the same class: what one device does,
the other must show. At each checkpoint the script prints `{"at": NAME, ...}` and waits
for a line on stdin: the test checks the simulated suits' firmware meanwhile (e-stops
are judged there, not in the page). The last line printed is the report.

Usage: python tests/browser_console.py URL SHOT_DIR [STATES_DIR]
(STATES_DIR: a screenshot of every state at every size, to look at.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from axe_playwright_python.base import AXE_SCRIPT
from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from playwright.sync_api import Page, sync_playwright

XSS = "<img src=x onerror=window.__x=1>"
SIZES = {"tablet": (1024, 768), "phone": (390, 844)}
WAIT = 20_000  # ms: a hang guard, not a speed check


def checkpoint(name: str, **data: Any) -> None:
    print(json.dumps({"at": name, **data}), flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(f"the test stopped at {name}")


def axe(page: Page) -> list[str]:
    """Every axe-core violation on the page, of any impact, as 'rule (impact): target'."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    found = page.evaluate("axe.run(document).then(r => r.violations)")
    return [
        f"{v['id']} ({v['impact']}): {', '.join(str(t) for n in v['nodes'] for t in n['target'])}"
        for v in found
    ]


def state_is(page: Page, state: str) -> None:
    page.wait_for_function(
        f"document.getElementById('state').dataset.state === '{state}'", timeout=WAIT
    )


def main() -> None:
    url, shots = sys.argv[1], Path(sys.argv[2])
    states = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    report: dict[str, Any] = {"axe": {}, "scroll": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pages: dict[str, Page] = {}
        for size, (w, h) in SIZES.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            page.on("pageerror", lambda e: report.setdefault("page_errors", []).append(str(e)))
            page.goto(url)
            pages[size] = page
        tablet, phone = pages["tablet"], pages["phone"]

        def every_state(name: str) -> None:
            for size, page in pages.items():
                if states is not None:
                    page.screenshot(path=str(states / f"{name}-{size}.png"))
                report["axe"][f"{name}@{size}"] = axe(page)
                report["scroll"][f"{name}@{size}"] = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )

        for page in pages.values():
            page.wait_for_function("document.querySelectorAll('.card').length === 3", timeout=WAIT)
            state_is(page, "running")
        report["names"] = tablet.eval_on_selector_all(
            ".client-name", "hs => hs.map(h => h.textContent)"
        )
        report["areas"] = tablet.eval_on_selector_all(
            "#client-0 .area-label", "ls => ls.map(l => l.textContent)"
        )
        report["regions"] = tablet.eval_on_selector_all(
            "#client-0 .region h3", "hs => hs.map(h => h.textContent)"
        )

        # a suit drops (the test cuts its link): the card says lost, the message is in words
        checkpoint("ready")
        phone.wait_for_selector("#client-1[data-link=lost]", timeout=WAIT)
        report["lost_card"] = phone.inner_text("#client-1 .link")
        report["lost_health"] = phone.inner_text("#client-1 .link-verdict")
        tablet.wait_for_selector(".warning[data-kind=link_lost]", timeout=WAIT)
        phone.wait_for_function(
            "document.getElementById('announce').textContent.includes('lost its connection')",
            timeout=WAIT,
        )
        report["announced_lost"] = phone.inner_text("#announce")
        checkpoint("seen-lost")
        tablet.wait_for_selector("#client-1[data-link=connected]", timeout=WAIT)
        report["warnings"] = tablet.eval_on_selector_all(
            ".warning .what", "ws => ws.map(w => w.textContent)"
        )
        report["warning_kinds"] = tablet.eval_on_selector_all(
            ".warning", "ws => ws.map(w => w.dataset.kind)"
        )
        before = tablet.locator(".warning").count()
        tablet.locator(".warning .dismiss").first.click()
        tablet.wait_for_function(f"document.querySelectorAll('.warning').length === {before - 1}")
        report["dismissed"] = [before, tablet.locator(".warning").count()]
        # link health on Ana's card: one quiet line, the figures when opened
        tablet.wait_for_function(
            "document.querySelector('#client-0 .link-figures').textContent.includes('answers in')",
            timeout=WAIT,
        )
        figures = "#client-0 .link-figures"
        report["health"] = {
            "verdict": tablet.inner_text("#client-0 .link-verdict"),
            "shown_closed": tablet.is_visible(figures),
        }
        tablet.click("#client-0 .link-verdict")
        report["health"]["shown_open"] = tablet.is_visible(figures)
        report["health"]["figures"] = tablet.inner_text(figures)
        for size, page in pages.items():
            page.screenshot(path=str(shots / f"console-{size}.png"))
        every_state("running")
        report["buttons_running"] = tablet.eval_on_selector_all(
            ".controls button", "bs => bs.filter(b => !b.disabled).map(b => b.dataset.do)"
        )

        # + on Ana's Thighs (front): one step of 1 mA, checked at her suit by the test
        row = '#client-0 .area[data-channel="quads"]'
        tablet.click(row + " .plus")
        tablet.wait_for_function(
            f"document.querySelector('{row} .set').textContent === '21 mA'", timeout=WAIT
        )
        report["set_after_plus"] = tablet.inner_text(row + " .set")
        checkpoint("plus")

        # pause on the phone: both devices show it, and only Resume (not Reset) is offered
        phone.click("button[data-do=pause]")
        for page in pages.values():
            state_is(page, "paused")
        report["buttons_paused"] = tablet.eval_on_selector_all(
            ".controls button", "bs => bs.filter(b => !b.disabled).map(b => b.dataset.do)"
        )
        every_state("paused")
        tablet.click("button[data-do=resume]")
        state_is(tablet, "running")
        checkpoint("delivering")  # the test waits until the suits deliver again

        # the e-stop button: every device turns into the stopped state
        tablet.click("#estop")
        for page in pages.values():
            state_is(page, "estopped")
            page.wait_for_selector("#banner:not([hidden])", timeout=WAIT)
        report["banner_estopped"] = phone.inner_text("#banner-title")
        report["alert_estopped"] = phone.eval_on_selector("#alert", "e => e.textContent")
        report["buttons_estopped"] = phone.eval_on_selector_all(
            ".controls button", "bs => bs.filter(b => !b.disabled).map(b => b.dataset.do)"
        )
        checkpoint("estop-button")
        every_state("estopped")
        tablet.click("button[data-do=reset]")
        state_is(tablet, "paused")
        tablet.click("button[data-do=resume]")
        state_is(tablet, "running")

        # Space with focus in a form field chooses the step; it does not stop the class
        tablet.focus("input[name=step][value='2']")
        tablet.keyboard.press("Space")
        report["step_checked"] = tablet.eval_on_selector(
            "input[name=step][value='2']", "e => e.checked"
        )
        tablet.click(row + " .plus")  # after the Space: its answer comes after any stop
        tablet.wait_for_function(
            f"document.querySelector('{row} .set').textContent === '23 mA'", timeout=WAIT
        )
        report["set_after_space"] = tablet.inner_text(row + " .set")
        report["state_after_space"] = tablet.eval_on_selector("#state", "e => e.dataset.state")
        checkpoint("space")

        # Escape, with the focus still in the form: stops every suit
        tablet.focus("input[name=step][value='2']")
        tablet.keyboard.press("Escape")
        for page in pages.values():
            state_is(page, "estopped")
        checkpoint("estop-key")
        tablet.click("button[data-do=reset]")
        state_is(tablet, "paused")
        tablet.click("button[data-do=resume]")
        state_is(tablet, "running")
        checkpoint("before-lost")  # the test stops the console server: the controller is lost

        for page in pages.values():
            state_is(page, "offline")
            page.wait_for_selector("#client-0[data-link=unknown]", timeout=WAIT)
        report["lost_cards"] = phone.eval_on_selector_all(
            ".card .link-text", "ls => ls.map(l => l.textContent)"
        )
        report["banner_lost"] = phone.inner_text("#banner-title")
        every_state("lost")
        phone.click("#estop")  # no controller: the page must keep trying, and say so
        phone.wait_for_function(
            "document.getElementById('banner-text').textContent.includes('being sent again')",
            timeout=WAIT,
        )
        report["banner_lost_estop"] = phone.inner_text("#banner-text")
        checkpoint("estop-while-lost")  # the test serves the console again
        for page in pages.values():
            state_is(page, "estopped")
        checkpoint("estop-after-reconnect")
        tablet.select_option("#unit", "%")  # levels as a share of the device's maximum
        report["set_in_percent"] = tablet.inner_text(row + " .set")
        report["xss"] = [page.evaluate("window.__x === undefined") for page in pages.values()]
        report["img_in_page"] = tablet.evaluate("document.querySelectorAll('img').length")
        browser.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
