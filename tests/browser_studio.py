"""A trainer's whole day in the studio's pages, in Debian's Chromium (run as a subprocess).

Log in, add clients, screen them, set up a class with two clients (workout,
clients, suits by tapping a client then a suit, check-in questions), start it,
raise a body area on the live console, e-stop with the button and with the
keyboard (Escape; Space in a form field or on a button does not stop), reset,
resume, end, read the summary, find the session in the client's history.

E-stops are judged at the simulated suits' firmware, read through the API's
suit status (`GET /api/v1/suits`: each suit's own state and output), not in
the page. axe-core runs on every page and console state at tablet and phone
size, and the phone's `scrollWidth <= innerWidth` is recorded for each.

Usage: python tests/browser_studio.py BASE_URL NAME PASSWORD SHOT_DIR -> prints a JSON report.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from axe_playwright_python.base import AXE_SCRIPT
from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from playwright.sync_api import BrowserContext, Page, sync_playwright

TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}
WAIT = 20_000  # ms: a hang guard, not a speed check


def axe(page: Page) -> list[str]:
    """Every axe-core violation on the page, of any impact, as 'rule (impact): target'."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    found = page.evaluate("axe.run(document).then(r => r.violations)")
    return [
        f"{v['id']} ({v['impact']}): {', '.join(str(t) for n in v['nodes'] for t in n['target'])}"
        for v in found
    ]


def main() -> None:
    base, name, password, shots = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    report: dict[str, Any] = {"axe": {}, "scroll": {}, "firmware": {}, "seconds": {}}
    began = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context: BrowserContext = browser.new_context(viewport=TABLET)
        page = context.new_page()
        page.on("pageerror", lambda e: report.setdefault("page_errors", []).append(str(e)))

        def every_size(state: str, where: Page = page, shot: str | None = None) -> None:
            """axe-core and the sideways-scroll check at tablet and phone size."""
            report["seconds"][state] = round(time.monotonic() - began, 1)
            if where.evaluate("/\\b(null|undefined|NaN)\\b/.test(document.body.innerText)"):
                report.setdefault("raw_values_shown", []).append(state)  # a script's slip
            for size, viewport in (("tablet", TABLET), ("phone", PHONE)):
                where.set_viewport_size(viewport)
                report["axe"][f"{state}@{size}"] = axe(where)
                report["scroll"][f"{state}@{size}"] = where.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                if shot is not None:
                    suffix = "" if size == "tablet" else "-phone"
                    where.screenshot(path=str(shots / f"{shot}{suffix}.png"), full_page=True)
            where.set_viewport_size(TABLET)

        def suits() -> dict[str, dict[str, Any]]:
            """The suits' own state and output, as the simulated firmware reports them."""
            r = context.request.get(base + "/api/v1/suits")
            assert r.ok, r.text()
            return {s["address"]: s for s in r.json()["suits"]}

        def firmware(moment: str, addresses: list[str], until: str | None = None) -> None:
            """Record the firmware of `addresses` (after waiting until they are in `until`)."""
            deadline = time.monotonic() + WAIT / 1000
            while True:
                seen = suits()
                states = [seen[a]["state"] for a in addresses]
                if until is None or all(s == until for s in states):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            report["firmware"][moment] = {
                a: [seen[a]["state"], seen[a]["output_mA"]] for a in addresses
            }

        # log in through the form, as a trainer
        page.goto(base + "/")
        page.wait_for_selector("#login-name")
        every_size("login")
        page.fill("#login-name", name)
        page.fill("#login-password", password)
        page.click("button:has-text('Log in')")
        page.wait_for_selector("h1:text-is('Clients')")
        report["logged_in"] = True

        # add three clients: Ana (screened, with a cleared condition), Cem (screened), Ben (never)
        for who in ("Ben", "Ana <b>", "Cem"):
            page.goto(base + "/#/clients")
            page.wait_for_selector("h1:text-is('Clients')")
            page.fill("#new-client-name", who)
            page.click("button:has-text('Add client')")
            page.wait_for_selector(f"h1:text-is('{who}')")
            if who == "Ben":
                continue
            if who == "Ana <b>":
                report["escaped"] = (
                    page.locator("h1").inner_text() == "Ana <b>"
                    and page.locator("h1 b").count() == 0
                )
                page.check("#yes-hypertension")
                page.check("#clear-hypertension")
                every_size("screening-form")
            page.click("button:has-text('Save screening')")
            page.wait_for_selector("p.ok:has-text('May train today')")
        report["may_train"] = True
        page.screenshot(path=str(shots / "studio-client.png"))
        page.goto(base + "/#/clients")
        page.wait_for_selector(".card")
        every_size("clients")

        # class set-up: workout, clients, suits by tapping, check-in questions
        page.click("a[href='#/class/new']")
        page.wait_for_selector("#workout")
        page.select_option("#workout", "classic_strength")
        boxes = page.eval_on_selector_all(
            "input[id^=pick-]", "xs => xs.map(x => [x.value, x.parentElement.textContent])"
        )
        ids = {label.strip(): cid for cid, label in boxes}
        for cid in ids.values():
            page.check(f"#pick-{cid}")
        for who, suit in (("Ana <b>", "SIM-03"), ("Cem", "SIM-04")):
            page.click(f"#choose-{ids[who]}")
            report.setdefault("pressed", []).append(
                page.get_attribute(f"#choose-{ids[who]}", "aria-pressed")
            )
            report.setdefault("focus_on_suits", []).append(
                page.evaluate("document.activeElement.classList.contains('suit')")
            )
            page.click(f"#suits button[data-address={suit}]")
        report["assigned"] = {who: page.inner_text(f"#suit-{cid}") for who, cid in ids.items()}
        report["suit_buttons"] = page.eval_on_selector_all(
            "#suits button", "bs => bs.map(b => b.textContent)"
        )
        page.check(f"#ate-{ids['Ana <b>']}")
        page.click("button:has-text('Check in')")
        page.wait_for_selector(".refusals[role=alert]")
        report["refusals"] = page.inner_text(".refusals")
        every_size("set-up-refused", shot="studio-set-up")
        page.uncheck(f"#pick-{ids['Ben']}")
        page.click("button:has-text('Check in')")
        page.wait_for_selector("#start:not([disabled])")
        every_size("class-ready")
        class_url = page.url
        firmware("before-start", ["SIM-01", "SIM-02", "SIM-03", "SIM-04"])

        # start
        page.click("#start")
        page.wait_for_selector("#class-state:has-text('Running')")
        firmware("started", ["SIM-03", "SIM-04"], until="armed")
        every_size("class-running")
        console_href = str(page.get_attribute("#console-link", "href"))
        report["console_href"] = console_href

        # the live console, on the same login
        con = context.new_page()
        con.on("pageerror", lambda e: report.setdefault("page_errors", []).append(str(e)))
        con.goto(base + console_href)

        def state_is(state: str) -> None:
            con.wait_for_function(
                f"document.getElementById('state').dataset.state === '{state}'", timeout=WAIT
            )

        con.wait_for_function("document.querySelectorAll('.card').length === 2", timeout=WAIT)
        state_is("running")
        report["console_names"] = con.eval_on_selector_all(
            ".client-name", "hs => hs.map(h => h.textContent)"
        )
        con.click("button[data-do=skip]")  # past the warm-up (no current) to the suit block
        firmware("delivering", ["SIM-03", "SIM-04"])
        deadline = time.monotonic() + WAIT / 1000
        while time.monotonic() < deadline and not any(
            s[1] > 0 for s in report["firmware"]["delivering"].values()
        ):
            time.sleep(0.2)
            firmware("delivering", ["SIM-03", "SIM-04"])

        # raise a body area: one step of 1 mA on the first client's front thighs
        row = '#client-0 .area[data-channel="quads"]'
        before = con.inner_text(row + " .set")
        con.click(row + " .plus")
        con.wait_for_function(
            f"document.querySelector('{row} .set').textContent !== '{before}'", timeout=WAIT
        )
        report["raised"] = [before, con.inner_text(row + " .set")]
        every_size("console-running", con)

        # the e-stop button
        con.click("#estop")
        state_is("estopped")
        firmware("estop-button", ["SIM-03", "SIM-04"], until="stopped")
        report["banner"] = con.inner_text("#banner-title")
        every_size("console-estopped", con)
        con.click("button[data-do=reset]")
        state_is("paused")
        every_size("console-paused", con)
        con.click("button[data-do=resume]")
        state_is("running")
        firmware("resumed", ["SIM-03", "SIM-04"], until="armed")

        # Space in a form field and on a button: no stop (the field and the button do their own)
        con.focus("input[name=step][value='2']")
        con.keyboard.press("Space")
        report["step_checked"] = con.eval_on_selector(
            "input[name=step][value='2']", "e => e.checked"
        )
        set_before = con.inner_text(row + " .set")
        con.focus(row + " .plus")
        con.keyboard.press("Space")  # presses + (a 2 mA step now), nothing else
        con.wait_for_function(
            f"document.querySelector('{row} .set').textContent !== '{set_before}'",
            timeout=WAIT,
        )
        report["space_on_plus"] = [set_before, con.inner_text(row + " .set")]
        report["state_after_space"] = con.eval_on_selector("#state", "e => e.dataset.state")
        firmware("after-space", ["SIM-03", "SIM-04"])

        # Escape, with the focus in a form field: every suit stops
        con.focus("input[name=step][value='1']")
        con.keyboard.press("Escape")
        state_is("estopped")
        firmware("estop-key", ["SIM-03", "SIM-04"], until="stopped")
        con.click("button[data-do=reset]")
        state_is("paused")
        con.click("button[data-do=resume]")
        state_is("running")
        firmware("resumed-again", ["SIM-03", "SIM-04"], until="armed")
        con.close()

        # end the class on the studio's page, read the summary
        page.goto(class_url)
        page.wait_for_selector("#class-state:has-text('Running')")
        # the class page's own e-stop: Escape (its button says so), judged at the firmware
        report["class_estop_label"] = page.inner_text("#class-estop")
        # first the controller cannot be reached: the page says so and keeps sending it
        page.route("**/commands", lambda route: route.abort())
        page.keyboard.press("Escape")
        page.wait_for_selector("#estop-note:has-text('being sent again')", timeout=WAIT)
        report["estop_unreachable"] = page.inner_text("#estop-note")
        every_size("class-controller-lost")
        page.unroute("**/commands")
        page.wait_for_selector("#estop-note:has-text('every suit is at zero')", timeout=WAIT)
        firmware("estop-class-page", ["SIM-03", "SIM-04"], until="stopped")
        page.wait_for_selector("#class-state:has-text('emergency')")
        every_size("class-estopped")
        page.click("#end")
        page.wait_for_selector("#summary-state")
        firmware("ended", ["SIM-03", "SIM-04"])
        report["summary_state"] = page.inner_text("#summary-state")
        report["summary_cards"] = page.eval_on_selector_all(
            ".summary h2", "hs => hs.map(h => h.textContent)"
        )
        report["summary_text"] = page.inner_text("main")
        every_size("summary", shot="studio-summary")

        # find the session in Ana's history
        page.click(".summary h2 a:text-is('Ana <b>')")
        page.wait_for_selector("#history tr")
        report["history"] = page.eval_on_selector_all(
            "#history tr", "rows => rows.map(r => r.textContent)"
        )
        every_size("client-history")
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(shots / "studio-client-phone.png"), full_page=True)
        page.set_viewport_size(TABLET)
        page.click("a[href='#/workouts']")
        page.wait_for_selector("h1")
        every_size("workouts")
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
