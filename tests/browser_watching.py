"""The live console of a studio class, in Debian's Chromium, on a screen that only watches.

Run as a subprocess by tests/test_console_watching.py (Playwright's asyncio loop stays out
of the test's Trio program); checkpoints as in tests/browser_console.py. The test holds the
class's 8 steering connections open, so this page only watches: it must say so, keep every
button off but STOP, and its STOP must stop the class. Then the test takes every watching
place too: the page must say why it shows nothing, and its STOP must still stop the class.

Usage: python tests/browser_watching.py BASE_URL CONSOLE_PATH SESSION_COOKIE
"""

from __future__ import annotations

import json
import sys
from typing import Any

from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from browser_console import SIZES, WAIT, axe, checkpoint, state_is  # type: ignore[import-not-found]
from playwright.sync_api import Page, sync_playwright

#: Every button that acts on the class and is on (a message's Dismiss acts on this screen only).
ENABLED = """() => [...document.querySelectorAll('button:not(.dismiss)')]
  .filter(b => !b.disabled && !b.hidden)
  .map(b => b.id || b.dataset.do || b.getAttribute('aria-label'))"""


def main() -> None:
    base, path, cookie = sys.argv[1], sys.argv[2], sys.argv[3]
    report: dict[str, Any] = {"axe": {}, "scroll": {}}

    def every_size(name: str, page: Page) -> None:
        for size, (w, h) in SIZES.items():
            page.set_viewport_size({"width": w, "height": h})
            report["axe"][f"{name}@{size}"] = axe(page)
            report["scroll"][f"{name}@{size}"] = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context()
        context.add_cookies([{"name": "suitctl_session", "value": cookie, "url": base}])
        page = context.new_page()
        page.on("pageerror", lambda e: report.setdefault("page_errors", []).append(str(e)))
        page.goto(base + path)
        state_is(page, "running")
        page.wait_for_selector("#role:not([hidden])", timeout=WAIT)
        page.wait_for_selector(".card", timeout=WAIT)
        report["role"] = [page.inner_text("#role-title"), page.inner_text("#role-text")]
        report["enabled_watching"] = page.evaluate(ENABLED)
        every_size("watching", page)
        page.click("#estop")
        state_is(page, "estopped")
        checkpoint("watching-estop")  # the test checks the class stopped, then resumes it

        state_is(page, "running")
        page.close()
        checkpoint("closed")  # the test takes every watching place
        page = context.new_page()
        page.on("pageerror", lambda e: report.setdefault("page_errors", []).append(str(e)))
        page.goto(base + path)
        page.wait_for_function(
            "document.getElementById('banner-title').textContent === 'Not shown on this screen'",
            timeout=WAIT,
        )
        report["full"] = [page.inner_text("#banner-title"), page.inner_text("#banner-text")]
        report["full_role_hidden"] = page.eval_on_selector("#role", "e => e.hidden")
        report["full_alert"] = page.eval_on_selector("#alert", "e => e.textContent")
        every_size("full", page)
        page.click("#estop")
        checkpoint("full-estop")  # the test waits for the class to stop
        browser.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
