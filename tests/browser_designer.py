"""The workout designer in Debian's Chromium (run as a subprocess): write, fix, try, save, run.

Usage: python tests/browser_designer.py LOGIN_LINK SHOT_DIR -> prints a JSON report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from browser import ARGS, CHROMIUM  # type: ignore[import-not-found]
from playwright.sync_api import Page, sync_playwright

WIDE = {"width": 1280, "height": 900}

BAD = """\
# Leg day: Tess, for the Monday group
name: Leg day
programs:
  strength:
    frequency_hz: 85
    pulse_width_us: 350
    impulse_s: 4
    pause_s: 4
phases:
  - kind: warmup
    duration: 5m
  - kind: suit
    exercises:
      - name: Squat
        duration: 14m
        program: strength
        channels: {quads: 0.8, glutes: 0.7, neck: 0.3}
      - name: Lunge
        duration: 12m
        program: strength
        channels: {quads: 0.7, hamstrings: 0.6, lower_back: 0.6}
  - kind: stretch
    duration: 5m
"""
GOOD = BAD.replace(", neck: 0.3", "").replace("duration: 12m", "duration: 10m")


def errors_at(page: Page) -> dict[str, str]:
    """The editor's gutter: line number -> its problems, for lines marked as errors."""
    result: dict[str, str] = page.eval_on_selector_all(
        ".gutter .line.error",
        "xs => Object.fromEntries(xs.map(x => [x.textContent.replace('✗ ', ''), x.title]))",
    )
    return result


def run_simulation(page: Page) -> list[dict[str, str]]:
    page.click("#try")
    page.wait_for_selector("#try-doing:has-text('Done in')", timeout=120_000)
    page.wait_for_selector("#suggestions")
    suggestions: list[dict[str, str]] = page.eval_on_selector_all(
        "#suggestions li", "xs => xs.map(x => ({id: x.dataset.id, text: x.textContent}))"
    )
    return suggestions


def main() -> None:
    link, shots = sys.argv[1], Path(sys.argv[2])
    report: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport=WIDE)
        page.on("console", lambda m: print("console:", m.text, file=sys.stderr))
        page.goto(link)
        page.wait_for_selector("h1:has-text('Clients')")
        # a screened client for the class at the end
        page.fill("#new-client-name", "Ana")
        page.click("button:has-text('Add client')")
        page.wait_for_selector("h1:text-is('Ana')")
        page.click("button:has-text('Save screening')")
        page.wait_for_selector("p.ok:has-text('May train today')")

        # the editor: a forbidden area and a too-long suit block, each at its line
        page.click("a[href='#/workouts']")
        page.wait_for_selector("#new-workout")
        page.click("#new-workout")
        page.wait_for_selector("#yaml")
        page.fill("#yaml", BAD)
        page.wait_for_selector(".gutter .line.error")
        page.wait_for_function("() => document.querySelectorAll('.gutter .line.error').length >= 2")
        report["errors"] = errors_at(page)
        report["problem_list"] = page.inner_text("#problems")
        page.screenshot(path=str(shots / "designer-editor.png"), full_page=False)
        page.fill("#yaml", GOOD)
        page.wait_for_selector("#problems p.ok")
        report["fixed"] = page.inner_text("#problems")
        report["suit_block"] = page.inner_text("#suit-block")
        report["map_areas"] = page.locator(".bodymap .area:not(.off)").count()
        # tapping an area of one exercise on the body map writes its weight into the YAML
        page.select_option("#map-exercise", "0")
        page.click(".bodymap rect[data-channel='calves']")
        page.wait_for_function(
            "() => document.querySelector('#yaml').value.includes('calves: 0.3')"
        )
        report["tapped"] = page.input_value("#yaml")
        page.fill("#yaml", GOOD)
        page.wait_for_selector("#problems p.ok")

        # try it on 8 simulated clients, read a suggestion, apply it: it goes away
        page.fill("#try-clients", "8")
        first = run_simulation(page)
        report["suggestions"] = first
        report["strips"] = page.locator(".strip").count()
        report["cr10_label"] = page.locator(".strip .limit-label").first.text_content()
        page.screenshot(path=str(shots / "designer-report.png"), full_page=True)
        raise_one = next((s for s in first if s["id"] == "raise:lower_back"), None)
        report["applied"] = raise_one
        if raise_one is not None:
            page.click("#keep")  # this run, to compare with the next one side by side
            # the earlier "Done in" wiped first: the run can be over before a poll shows
            # "simulating" (about 1 s for 8 clients since the body model runs in C)
            page.eval_on_selector("#try-doing", "x => { x.textContent = ''; }")
            page.click(f"#suggestions li[data-id='{raise_one['id']}'] button.apply")
            page.wait_for_selector("#try-doing:has-text('Done in')", timeout=120_000)
            report["after"] = page.eval_on_selector_all(
                "#suggestions li", "xs => xs.map(x => x.dataset.id)"
            )
            report["compare"] = page.inner_text("#compare")

        # the same workout tried on the studio's own client, picked from the records
        report["ours_hidden"] = page.is_hidden("#try-ours")  # until our clients are chosen
        page.select_option("#try-who", "studio")
        report["seeded_hidden"] = page.is_hidden("#try-clients")
        page.wait_for_selector("#try-ours label:has-text('Ana')")
        page.check("#try-ours label:has-text('Ana') input")
        page.click("#try")
        page.wait_for_selector("#try-people", timeout=120_000)
        page.wait_for_selector("#try-doing:has-text('Done in')", timeout=120_000)
        report["ours_people"] = page.inner_text("#try-people")
        report["ours_strips"] = page.eval_on_selector_all(
            ".strip span", "xs => xs.map(x => x.textContent)"
        )
        report["ours_words"] = page.inner_text(".clients-words")

        # save; a class started from the studio runs exactly the saved version
        page.click("#save")
        page.wait_for_selector("#save-status[data-hash]")
        saved = page.get_attribute("#save-status", "data-hash")
        report["saved_hash"] = saved
        page.click("a[href='#/class/new']")
        page.wait_for_selector("#workout")
        page.select_option("#workout", label="Leg day")
        page.check("input[id^=pick-]")
        page.click("button:has-text('Check in')")
        page.wait_for_selector("#start:not([disabled])")
        page.click("#start")
        page.wait_for_selector("#class-state:has-text('Running')")
        class_id = page.url.split("#/class/")[1]
        page.click("#end")
        page.wait_for_selector("#summary-state")
        record = page.request.get(page.url.split("#")[0] + f"api/v1/reports/{class_id}").json()
        report["class_hash"] = record["class"]["workout_hash"]
        report["class_workout"] = record["class"]["workout"]
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
